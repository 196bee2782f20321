"""The Factory generator and `gw data factory`: format, determinism, bad inputs."""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from global_workspace.cli import main
from global_workspace.data.colors import nearest_color
from global_workspace.data.factory import generate
from global_workspace.data.factory.captions import describe, parse_factory_caption
from global_workspace.data.format import load_dataset
from global_workspace.errors import UserError

COUNTS = {"train": 150, "val": 40, "test": 30}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("factory") / "ds"
    generate.generate_factory(out, COUNTS, seed=3)
    return out


def test_format_and_labels(factory: Path) -> None:
    dataset = load_dataset(factory, expect_name="factory")
    info = dataset.info
    assert info.label_columns == ["x", "y", "rotation", "r", "g", "b"]
    assert info.image_size == 64 and info.splits == COUNTS and info.seed == 3
    assert info.generator["generator_version"] == generate.GENERATOR_VERSION
    for name, n in COUNTS.items():
        split = dataset.split(name)
        assert split.images.shape == (n, 64, 64, 3) and split.images.dtype == np.uint8
        labels = split.labels
        assert np.all((labels[:, :2] >= -2) & (labels[:, :2] <= 2))
        assert np.all((labels[:, 2] >= 0) & (labels[:, 2] < 2 * math.pi))
        assert np.all(labels[:, 3:] == np.round(labels[:, 3:])) and labels[:, 3:].max() <= 255
        # images are what the labels say, captions read back to the labels
        np.testing.assert_array_equal(split.images, generate.render_labels(labels))
        assert [parse_factory_caption(c) for c in split.captions] == describe(labels)


def test_colours_are_visible_hls_samples() -> None:
    labels = generate.sample_labels(np.random.default_rng(0), 4000)
    rgb = labels[:, 3:].astype(np.int64)
    lightness = (rgb.max(axis=1) + rgb.min(axis=1)) / 2  # HLS lightness on 0–255
    assert lightness.min() >= 45
    assert len(set(nearest_color(rgb).tolist())) > 60  # a wide range of named colours


def test_same_bytes_whatever_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate, "SHARD", 64)  # several shards per split; set in the parent only
    counts = {"train": 150, "val": 20}
    one = generate.generate_factory(tmp_path / "one", counts, seed=11, workers=1).path
    two = generate.generate_factory(tmp_path / "two", counts, seed=11, workers=2).path
    assert _digest(one) == _digest(two)
    other = generate.generate_factory(tmp_path / "other", counts, seed=12).path
    assert _digest(one)["train/images.npy"] != _digest(other)["train/images.npy"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"counts": {"train": 0}},
        {"counts": {"train": -5}},
        {"counts": {"train": 4, "holdout": 2}},
        {"counts": {"train": 4}, "image_size": 8},
        {"counts": {"train": 4}, "image_size": 4096},
        {"counts": {"train": 4}, "workers": 0},
    ],
)
def test_bad_arguments_are_user_errors(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(UserError):
        generate.generate_factory(tmp_path / "out", seed=0, **kwargs)
    assert not (tmp_path / "out").exists()


def test_existing_output_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    generate.generate_factory(out, {"train": 4}, seed=0)
    before = _digest(out)
    with pytest.raises(UserError, match="--force"):
        generate.generate_factory(out, {"train": 5}, seed=1)
    assert _digest(out) == before
    generate.generate_factory(out, {"train": 5}, seed=1, force=True)
    assert load_dataset(out).info.splits == {"train": 5}


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["data", "factory", str(out), "--train", "8", "--val", "4", "--test", "4", "--workers", "1"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--image-size", "32"])
    assert exit_info.value.code in (0, None)
    assert load_dataset(out, expect_name="factory").info.image_size == 32
    with pytest.raises(SystemExit) as exit_info:
        main(args)  # exists, no --force
    assert exit_info.value.code == 2
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "factory", str(tmp_path / "bad"), "--train", "0"])
    assert exit_info.value.code == 2


def test_loader_refuses_a_damaged_factory_dataset(factory: Path, tmp_path: Path) -> None:
    """The shared loader's checks hold for Factory: a truncated caption file is refused."""
    copy = tmp_path / "copy"
    shutil.copytree(factory, copy)
    lines = (copy / "val" / "captions.txt").read_text(encoding="utf-8").splitlines()
    (copy / "val" / "captions.txt").write_text("\n".join(lines[:-3]) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="truncated"):
        load_dataset(copy, expect_name="factory")
    with pytest.raises(UserError, match="expected 'simple-shapes'"):
        load_dataset(factory, expect_name="simple-shapes")
