"""`gw data import-reference`: the authors' layout (docs/design.md §10) into ours, and refusals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error, tree_bytes
from PIL import Image

from global_workspace.cli import main
from global_workspace.data.captions import parse_caption
from global_workspace.data.format import load_dataset
from global_workspace.data.import_reference import import_reference
from global_workspace.data.simple_shapes import render_labels, sample_labels
from global_workspace.errors import UserError

COUNTS = {"train": 6, "val": 3, "test": 3}


def _fake_reference(folder: Path) -> dict[str, np.ndarray]:
    """A tiny dataset in the authors' layout: RGBA PNGs, (N, 12) labels, string captions."""
    rng = np.random.default_rng(0)
    labels = {}
    for i, (split, n) in enumerate(COUNTS.items()):
        ours = sample_labels(np.random.default_rng(i), n)
        ours[:, 4] -= math.pi  # their θ may lie outside [0, 2π)
        theirs = np.concatenate([ours, rng.uniform(0, 255, (n, 4)).astype(np.float32)], axis=1)
        (folder / split).mkdir(parents=True)
        for k, image in enumerate(render_labels(ours)):
            rgba = np.concatenate([image, np.full((32, 32, 1), 255, np.uint8)], axis=2)
            Image.fromarray(rgba, mode="RGBA").save(folder / split / f"{k}.png")
        np.save(folder / f"{split}_labels.npy", theirs)
        np.save(folder / f"{split}_captions.npy", np.array([f"A shape number {k}." for k in range(n)]))
        labels[split] = ours
    return labels


def test_import_converts_the_layout(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    labels = _fake_reference(ref)
    assert main_code("data", "import-reference", str(ref), str(tmp_path / "ours")) == 0
    data = load_dataset(tmp_path / "ours", expect_name="simple-shapes")
    assert data.info.splits == COUNTS
    for split in COUNTS:
        s = data.split(split)
        expected = labels[split].copy()
        expected[:, 4] = np.mod(expected[:, 4], 2 * math.pi)
        np.testing.assert_allclose(s.labels, expected, atol=1e-5)
        assert s.labels[:, 4].min() >= 0 and s.labels[:, 4].max() < 2 * math.pi
        np.testing.assert_array_equal(s.images, render_labels(labels[split]))
        assert s.captions == [f"A shape number {k}." for k in range(COUNTS[split])]
    ours = import_reference(ref, tmp_path / "ours2", our_captions=True, seed=1)
    for caption in ours.split("val").captions:
        parse_caption(caption)


@pytest.mark.parametrize("out", ["ref", "."])
def test_import_never_replaces_the_reference_it_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    _fake_reference(tmp_path / "ref")
    before = tree_bytes(tmp_path)
    assert main_code("data", "import-reference", str(tmp_path / "ref"), str(tmp_path / out), "--force") == 2
    assert "that this command reads" in one_line_error(capsys)
    assert tree_bytes(tmp_path) == before


def main_code(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.mark.parametrize(
    "damage",
    [
        "missing-png",
        "broken-png",
        "translucent",
        "wrong-size",
        "labels-columns",
        "captions-count",
        "bad-class",
        "no-splits",
        "train-only",
        "empty-split",
        "complex-labels",
        "position-outside",
        "size-beyond-image",
        "one-pixel-images",
        "numeric-captions",
    ],
)
def test_import_refuses_corrupted_input(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = tmp_path / "ref"
    _fake_reference(ref)
    if damage == "missing-png":
        (ref / "val" / "2.png").unlink()
    elif damage == "broken-png":
        (ref / "train" / "3.png").write_bytes(b"\x89PNG not really")
    elif damage == "translucent":
        Image.fromarray(np.zeros((32, 32, 4), np.uint8), mode="RGBA").save(ref / "test" / "1.png")
    elif damage == "wrong-size":
        Image.fromarray(np.zeros((16, 16, 4), np.uint8) + 255, mode="RGBA").save(ref / "val" / "0.png")
    elif damage == "labels-columns":
        np.save(ref / "val_labels.npy", np.zeros((3, 8), np.float32))
    elif damage == "captions-count":
        np.save(ref / "test_captions.npy", np.array(["one", "two"]))
    elif damage == "bad-class":
        labels = np.load(ref / "train_labels.npy")
        labels[0, 0] = 5
        np.save(ref / "train_labels.npy", labels)
    elif damage == "no-splits":
        for split in COUNTS:
            (ref / f"{split}_labels.npy").unlink()
    elif damage == "train-only":
        (ref / "val_labels.npy").unlink()
        (ref / "test_labels.npy").unlink()
    elif damage == "empty-split":
        np.save(ref / "val_labels.npy", np.zeros((0, 12), np.float32))
        np.save(ref / "val_captions.npy", np.array([], dtype=str))
    elif damage == "complex-labels":
        np.save(ref / "test_labels.npy", np.load(ref / "test_labels.npy").astype(np.complex64) + 1j)
    elif damage in ("position-outside", "size-beyond-image"):
        labels = np.load(ref / "test_labels.npy")
        labels[1, 1 if damage == "position-outside" else 3] = 1e9
        np.save(ref / "test_labels.npy", labels)
    elif damage == "one-pixel-images":
        for split, n in COUNTS.items():
            for k in range(n):
                Image.fromarray(np.full((1, 1, 4), 255, np.uint8), mode="RGBA").save(ref / split / f"{k}.png")
    elif damage == "numeric-captions":
        np.save(ref / "val_captions.npy", np.arange(3.0))
    out = tmp_path / "ours"
    with pytest.raises(UserError):
        import_reference(ref, out)
    assert not out.exists()
    assert main_code("data", "import-reference", str(ref), str(out)) == 2
    err = capsys.readouterr().err  # may hold a progress bar before the error
    assert err.count("gw: error:") == 1 and err.strip().splitlines()[-1].startswith("gw: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref"]


def test_import_refuses_pickled_captions_unless_allowed(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    _fake_reference(ref)
    np.save(ref / "val_captions.npy", np.array(["a", "b", "c"], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="allow-pickle"):
        import_reference(ref, tmp_path / "ours")
    assert import_reference(ref, tmp_path / "ours", allow_pickle=True).split("val").captions == [
        "a",
        "b",
        "c",
    ]


def test_import_refuses_captions_that_are_not_utf8(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    _fake_reference(ref)
    np.save(ref / "val_captions.npy", np.array([b"\xff\xfe bad"] * COUNTS["val"]))
    with pytest.raises(UserError, match=r"not UTF-8 text.*--our-captions"):
        import_reference(ref, tmp_path / "ours")
    import_reference(ref, tmp_path / "ours", our_captions=True)  # theirs are never read then


def test_our_captions_need_no_caption_files(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    _fake_reference(ref)
    for split in COUNTS:
        (ref / f"{split}_captions.npy").unlink()
    with pytest.raises(UserError, match=r"captions\.npy"):
        import_reference(ref, tmp_path / "theirs")
    ours = import_reference(ref, tmp_path / "ours", our_captions=True)
    assert [len(ours.split(s).captions) for s in COUNTS] == list(COUNTS.values())
