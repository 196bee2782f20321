"""The generator's files: format, determinism, validation, and `gw data` on good and bad input."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_COUNTS, TINY_SEED, folder_of_other_files, one_line_error
from workspace_fixtures import linear_pair

from global_workspace.cli import main
from global_workspace.data import simple_shapes
from global_workspace.data.captions import parse_caption
from global_workspace.data.format import load_dataset
from global_workspace.data.simple_shapes import generate_simple_shapes, render_labels
from global_workspace.errors import UserError
from global_workspace.fileio import allocated_memmap


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _gw(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_tiny_dataset_follows_the_format(tiny_shapes: Path) -> None:
    data = load_dataset(tiny_shapes, expect_name="simple-shapes")
    info = json.loads((tiny_shapes / "dataset.json").read_text())
    assert info["format_version"] == 1 and info["seed"] == TINY_SEED and info["image_size"] == 32
    assert info["splits"] == TINY_COUNTS
    assert info["label_columns"] == ["class", "x", "y", "size", "rotation", "r", "g", "b"]
    assert info["generator"]["counts"] == TINY_COUNTS
    for name, count in TINY_COUNTS.items():
        split = data.split(name)
        assert split.images.shape == (count, 32, 32, 3) and split.images.dtype == np.uint8
        assert isinstance(np.load(tiny_shapes / name / "images.npy", mmap_mode="r"), np.memmap)
        labels = split.labels
        assert labels.shape == (count, 8) and labels.dtype == np.float32
        assert set(np.unique(labels[:, 0])) <= {0, 1, 2}
        assert labels[:, 1:4].min() >= 7 and labels[:, 1:3].max() <= 24 and labels[:, 3].max() <= 14
        assert np.all(labels[:, 1:4] == np.round(labels[:, 1:4]))
        assert labels[:, 4].min() >= 0 and labels[:, 4].max() < 2 * math.pi
        assert labels[:, 5:8].min() >= 0 and labels[:, 5:8].max() <= 255
        # HLS lightness ≥ 46 makes the brightest channel at least 46: visible on black
        assert labels[:, 5:8].max(axis=1).min() >= 46
        np.testing.assert_array_equal(split.images, render_labels(labels))
        for caption in split.captions:
            parse_caption(caption)
    # splits are different draws
    assert not np.array_equal(data.split("val").labels, data.split("test").labels)


def test_sampling_covers_the_reference_ranges() -> None:
    labels = simple_shapes.sample_labels(np.random.default_rng(0), 20_000)
    assert sorted(np.unique(labels[:, 0])) == [0, 1, 2]
    assert sorted(np.unique(labels[:, 1])) == list(range(7, 25))
    assert sorted(np.unique(labels[:, 3])) == list(range(7, 15))
    assert np.histogram(labels[:, 4], bins=8, range=(0, 2 * math.pi))[0].min() > 2200


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simple_shapes, "SHARD", 100)  # several shards per split
    counts = {"train": 450, "val": 120, "test": 30}
    one = generate_simple_shapes(tmp_path / "one", counts, seed=3, workers=1).path
    two = generate_simple_shapes(tmp_path / "two", counts, seed=3, workers=2).path
    three = generate_simple_shapes(tmp_path / "three", counts, seed=3, workers=3).path
    assert _files(one) == _files(two) == _files(three)
    other = generate_simple_shapes(tmp_path / "other", counts, seed=4).path
    assert _files(one)["train/images.npy"] != _files(other)["train/images.npy"]


def test_other_image_sizes_scale_the_scene(tmp_path: Path) -> None:
    counts = {"train": 8, "val": 8, "test": 8}
    small = load_dataset(generate_simple_shapes(tmp_path / "s", counts, seed=1).path).split("val")
    large = load_dataset(generate_simple_shapes(tmp_path / "l", counts, seed=1, image_size=64).path).split(
        "val"
    )
    np.testing.assert_array_equal(small.labels, large.labels)
    assert small.captions == large.captions
    assert large.images.shape == (8, 64, 64, 3)
    # the 64-pixel image averaged over 2×2 blocks is close to the 32-pixel one
    pooled = large.images.astype(np.float64).reshape(8, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    assert np.abs(pooled - small.images).mean() < 2.0


def _corrupt(tmp_path: Path, source: Path, how: str) -> Path:
    folder = tmp_path / how
    shutil.copytree(source, folder)
    if how == "truncated-images":
        data = (folder / "val" / "images.npy").read_bytes()
        (folder / "val" / "images.npy").write_bytes(data[: len(data) // 2])
    elif how == "missing-labels":
        (folder / "test" / "labels.npy").unlink()
    elif how == "wrong-label-shape":
        np.save(folder / "val" / "labels.npy", np.zeros((64, 7), np.float32))
    elif how == "wrong-image-dtype":
        np.save(folder / "val" / "images.npy", np.zeros((64, 32, 32, 3), np.float32))
    elif how == "short-captions":
        lines = (folder / "train" / "captions.txt").read_text().splitlines()
        (folder / "train" / "captions.txt").write_text("\n".join(lines[:-1]) + "\n")
    elif how == "wrong-version":
        info = json.loads((folder / "dataset.json").read_text())
        info["format_version"] = 99
        (folder / "dataset.json").write_text(json.dumps(info))
    elif how == "wrong-count":
        info = json.loads((folder / "dataset.json").read_text())
        info["splits"]["val"] = 65
        (folder / "dataset.json").write_text(json.dumps(info))
    elif how == "broken-json":
        (folder / "dataset.json").write_text("{ not json")
    return folder


@pytest.mark.parametrize(
    "how",
    [
        "truncated-images",
        "missing-labels",
        "wrong-label-shape",
        "wrong-image-dtype",
        "short-captions",
        "wrong-version",
        "wrong-count",
        "broken-json",
    ],
)
def test_loader_refuses_a_damaged_dataset(
    tiny_shapes: Path, tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _corrupt(tmp_path, tiny_shapes, how)
    with pytest.raises(UserError):
        load_dataset(folder)
    picture = tmp_path / "grid.png"
    assert _gw("data", "show", str(folder), "--out", str(picture)) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not picture.exists()


def test_cli_generates_and_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    code = _gw(
        "data", "simple-shapes", str(out), "--train", "20", "--val", "10", "--test", "10", "--seed", "5"
    )
    assert code == 0
    assert load_dataset(out).info.splits == {"train": 20, "val": 10, "test": 10}
    assert json.loads((out / "dataset.json").read_text())["generator"]["seed"] == 5
    picture = tmp_path / "grid.png"
    assert _gw("data", "show", str(out), "--n", "6", "--out", str(picture)) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _gw("data", "show", str(out), "--out", str(picture)) == 2  # exists, no --force
    assert _gw("data", "show", str(out), "--out", str(picture), "--force", "--split", "test") == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train", "0"], "--train must be a positive"),
        (["--val", "-5"], "--val must be a positive"),
        (["--image-size", "3"], "--image-size"),
        (["--image-size", "5000"], "--image-size"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_cli_refuses_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "ds"
    assert _gw("data", "simple-shapes", str(out), "--train", "10", "--val", "10", "--test", "10", *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_keeps_an_existing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    assert _gw("data", "simple-shapes", str(out), "--train", "10", "--val", "10", "--test", "10") == 0
    before = _files(out)
    assert _gw("data", "simple-shapes", str(out), "--train", "12", "--val", "10", "--test", "10") == 2
    assert "already exists" in capsys.readouterr().err
    assert _files(out) == before
    assert _gw("data", "simple-shapes", str(out), "--train", "12", "--test", "0", "--force") == 2
    assert _files(out) == before
    assert (
        _gw("data", "simple-shapes", str(out), "--train", "12", "--val", "10", "--test", "10", "--force") == 0
    )
    assert load_dataset(out).info.splits["train"] == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_force_replaces_a_dataset_never_a_folder_of_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = folder_of_other_files(tmp_path / "mine")
    sizes = ["--train", "10", "--val", "10", "--test", "10"]
    assert _gw("data", "simple-shapes", str(out), *sizes, "--force") == 2
    assert "not a dataset" in one_line_error(capsys)
    assert _files(out) == {"thesis.tex": b"keep"}


def test_no_dataset_run_or_experiment_is_written_inside_a_dataset(
    tiny_shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A later `gw data … --force` on the outer dataset deleted whatever had been written inside it."""
    data = tmp_path / "data"
    shutil.copytree(tiny_shapes, data)
    before = _files(data)
    latents = linear_pair(tmp_path / "latents", n=32)
    train = ["--domains", "a,b", "--paired", "8", "--steps", "2", "--device", "cpu", "--quiet"]
    commands = {
        "dataset": [
            "data",
            "simple-shapes",
            str(data / "sub"),
            "--train",
            "10",
            "--val",
            "10",
            "--test",
            "10",
        ],
        "run folder": ["train", str(latents), *train, "--out", str(data / "sub")],
        "experiment folder": [
            *["experiment", "semi-supervised", str(latents), *train[:4], "--presets", "tr", "--seeds", "1"],
            *["--steps", "2", "--out", str(data / "sub")],
        ],
    }
    for what, command in commands.items():
        assert _gw(*command) == 2
        assert f"{what} {data / 'sub'} lies inside the dataset {data}" in one_line_error(capsys)
        assert _files(data) == before


def test_show_may_put_its_picture_beside_the_dataset_files(tiny_shapes: Path, tmp_path: Path) -> None:
    """A new .png file inside the dataset replaces nothing the dataset is made of."""
    data = tmp_path / "data"
    shutil.copytree(tiny_shapes, data)
    before = _files(data)
    assert _gw("data", "show", str(data), "--out", str(data / "grid.png"), "--n", "4") == 0
    after = _files(data)
    assert after.pop("grid.png") and after == before


def test_a_failure_while_writing_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ds"
    generate_simple_shapes(out, {"train": 10, "val": 10, "test": 10}, seed=0)
    before = _files(out)

    def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(simple_shapes, "make_captions", broken)
    with pytest.raises(RuntimeError):
        generate_simple_shapes(out, {"train": 20, "val": 10, "test": 10}, seed=0, force=True)
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_cli_refuses_an_unwritable_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert _gw("data", "simple-shapes", str(locked / "ds"), "--train", "10") == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_cli_refuses_an_output_inside_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Works for root too: a path whose parent is a regular file cannot be created."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _gw("data", "simple-shapes", str(blocker / "ds"), "--train", "10") == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert blocker.read_text() == "x"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_cli_refuses_an_output_the_system_will_not_create(capsys: pytest.CaptureFixture[str]) -> None:
    """/proc passes root's os.access check but refuses new folders: one line, not a traceback."""
    assert _gw("data", "simple-shapes", "/proc/gw-ds", "--train", "10") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("gw: error:") and "/proc/gw-ds" in err


def test_a_full_disk_is_one_line_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The memory-mapped arrays are reserved on disk before any page is written, so a full disk is
    an error there (here simulated), not a SIGBUS mid-write."""

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    out = tmp_path / "ds"
    assert _gw("data", "simple-shapes", str(out), "--train", "10", "--workers", "1") == 2
    err = one_line_error(capsys)
    assert f"cannot write {out}: No space left on device on the disk holding {tmp_path}" in err
    assert list(tmp_path.iterdir()) == []


def test_the_arrays_are_reserved_on_disk_before_they_are_written(tmp_path: Path) -> None:
    array = allocated_memmap(tmp_path / "images.npy", np.uint8, (64, 32, 32, 3))
    size = (tmp_path / "images.npy").stat().st_size
    assert (tmp_path / "images.npy").stat().st_blocks * 512 >= size  # not a sparse file
    assert not array.any()


def _dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_a_killed_run_s_temporary_folder_is_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    dead = _dead_pid()
    stale = tmp_path / f".ds.tmp-{dead}-abcd1234"
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "images.npy").write_bytes(b"\0" * 1000)
    live = tmp_path / f".ds.tmp-{os.getpid()}-abcd1234"  # a writer still running: kept
    other = tmp_path / f".other.tmp-{dead}-abcd1234"  # another output's: kept
    live.mkdir()
    other.mkdir()
    assert _gw("data", "simple-shapes", str(out), "--train", "10", "--workers", "1") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "ds"])
