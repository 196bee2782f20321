"""MiniLM caption embeddings: fidelity of both modes to sentence-transformers, the model folder, the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from global_workspace.data.captions import make_captions
from global_workspace.data.simple_shapes import sample_labels
from global_workspace.domains import minilm
from global_workspace.domains.minilm import (
    EMBED_DIM,
    MINILM_ENV,
    MODE_ENV,
    EmbeddingCache,
    SentenceEmbedder,
    embedding_mode,
    minilm_folder,
)
from global_workspace.errors import UserError


@pytest.fixture(scope="module")
def captions() -> list[str]:
    rng = np.random.default_rng(3)
    return make_captions(sample_labels(rng, 48), rng)


@pytest.fixture(scope="module")
def embedders() -> dict[str, SentenceEmbedder]:
    return {mode: SentenceEmbedder("cpu", mode=mode, threads=1) for mode in ("exact", "int8")}


@pytest.fixture(scope="module")
def reference(embedders: dict[str, SentenceEmbedder], captions: list[str]) -> np.ndarray:
    """What plain sentence-transformers computes in float32, one caption per batch."""
    model = embedders["exact"].model
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: a second thread only adds contention
    try:
        return np.concatenate([model.encode([c], convert_to_numpy=True) for c in captions])
    finally:
        torch.set_num_threads(before)


def test_exact_mode_is_sentence_transformers(
    embedders: dict[str, SentenceEmbedder], captions: list[str], reference: np.ndarray
) -> None:
    emb = embedders["exact"].embed(captions, batch_size=16)
    assert emb.shape == (len(captions), EMBED_DIM) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, reference, atol=1e-5)


def test_int8_mode_stays_within_cosine_099_of_exact(
    embedders: dict[str, SentenceEmbedder], captions: list[str], reference: np.ndarray
) -> None:
    emb = embedders["int8"].embed(captions, batch_size=16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    cosine = (emb * reference).sum(1)
    assert cosine.min() >= 0.99 and cosine.mean() >= 0.995


def test_int8_mode_is_deterministic_and_nearly_independent_of_batching(
    embedders: dict[str, SentenceEmbedder], captions: list[str]
) -> None:
    embedder = embedders["int8"]
    threads = torch.get_num_threads()
    whole = embedder.embed(captions)
    np.testing.assert_array_equal(embedder.embed(captions), whole)
    assert torch.get_num_threads() == threads
    # the padding a batch adds moves float sums by rounding, which can flip an int8 step
    alone = np.concatenate([embedder.embed([c]) for c in captions[:6]])
    assert (alone * whole[:6]).sum(1).min() >= 0.999
    assert embedder.embed([]).shape == (0, EMBED_DIM)


def test_mode_comes_from_the_machine_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(minilm, "fast_int8_matmul", lambda: True)
    assert embedding_mode() == "int8"
    monkeypatch.setattr(minilm, "fast_int8_matmul", lambda: False)
    assert embedding_mode() == "exact"  # without VNNI torch's int8 matmul is a slow loop
    monkeypatch.setattr(minilm, "fast_int8_matmul", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert embedding_mode() == "exact"
    monkeypatch.setenv(MODE_ENV, "int8")
    assert embedding_mode() == "int8"
    monkeypatch.setenv(MODE_ENV, "int4")
    with pytest.raises(UserError, match=MODE_ENV):
        embedding_mode()
    with pytest.raises(UserError, match="CPU only"):
        SentenceEmbedder("cuda", mode="int8")


def test_minilm_folder_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MINILM_ENV, raising=False)
    folder = minilm_folder()
    assert (folder / "modules.json").is_file()
    monkeypatch.setenv(MINILM_ENV, str(tmp_path))
    with pytest.raises(UserError, match=MINILM_ENV):
        minilm_folder()
    monkeypatch.setenv(MINILM_ENV, str(folder))
    assert minilm_folder() == folder


def test_embedding_cache_keeps_modes_apart(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "exact")
    captions = ["a red egg.", "a blue kite."]
    assert cache.get(captions) is None
    emb = np.arange(2 * 384, dtype=np.float32).reshape(2, 384)
    cache.put(captions, emb)
    np.testing.assert_array_equal(cache.get(captions), emb)
    assert cache.get(captions[:1]) is None
    assert EmbeddingCache(tmp_path, "int8").get(captions) is None
    cache.file(captions).write_bytes(b"damaged")
    assert cache.get(captions) is None


def test_embedding_cache_keeps_model_folders_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Switching $GW_MINILM_PATH to other weights of the same size must not read the first model's entries."""
    folders = {}
    for name, weights in (("a", b"aaaa"), ("b", b"bbbb"), ("copy_of_a", b"aaaa")):
        folder = folders[name] = tmp_path / name
        folder.mkdir()
        (folder / "modules.json").write_text("[]")
        (folder / "model.safetensors").write_bytes(weights)
    captions = ["a red egg.", "a blue kite."]
    emb = np.ones((2, EMBED_DIM), dtype=np.float32)
    monkeypatch.setenv(MINILM_ENV, str(folders["a"]))
    EmbeddingCache(tmp_path / "cache", "exact").put(captions, emb)
    monkeypatch.setenv(MINILM_ENV, str(folders["b"]))
    assert EmbeddingCache(tmp_path / "cache", "exact").get(captions) is None
    monkeypatch.setenv(MINILM_ENV, str(folders["copy_of_a"]))
    np.testing.assert_array_equal(EmbeddingCache(tmp_path / "cache", "exact").get(captions), emb)
