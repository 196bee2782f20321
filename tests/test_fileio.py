"""Atomic outputs: nothing half-written, nothing overwritten without --force, readable by others."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import folder_of_other_files

from global_workspace.errors import UserError
from global_workspace.fileio import (
    atomic_directory,
    atomic_save_npy,
    atomic_write_json,
    read_json,
    refuse_overlap,
)


def test_existing_output_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UserError, match="--force"), atomic_directory(out, force=False):
        pass


def test_failure_keeps_the_old_folder_and_leaves_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(out, force=True) as tmp:
        (tmp / "half.txt").write_text("new")
        raise RuntimeError("interrupted")
    assert (out / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_success_replaces_and_outputs_are_world_readable(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_directory(out, force=False) as tmp:
        atomic_write_json(tmp / "a.json", {"x": 1})
    assert read_json(out / "a.json", "test file") == {"x": 1}
    assert os.stat(out).st_mode & stat.S_IROTH
    assert os.stat(out / "a.json").st_mode & stat.S_IROTH


def test_corrupted_json_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="corrupted"):
        read_json(bad, "config")


def test_a_full_disk_is_one_line_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent check cannot see a disk fill up; the write's own failure must still read as one line."""

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", full)
    target = tmp_path / "latents.npy"
    with pytest.raises(UserError, match=re.escape(f"cannot write {target}: No space left on device")):
        atomic_save_npy(target, np.zeros(3))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_refused_temporary_file_is_a_user_error() -> None:
    with pytest.raises(UserError, match=re.escape("cannot write /proc/gw.json")):
        atomic_write_json(Path("/proc/gw.json"), {})


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("data", "is the dataset"),
        ("data/domains/v", "lies inside the dataset"),
        (".", "holds the dataset"),
        ("link", "is the dataset"),  # a link to the input is the input
    ],
)
def test_an_output_overlapping_an_input_is_refused(tmp_path: Path, out: str, words: str) -> None:
    (tmp_path / "data" / "domains" / "v").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data")
    with pytest.raises(UserError, match=words):
        refuse_overlap(tmp_path / out, {"run": None, "dataset": tmp_path / "data"}, "experiment folder")


def test_siblings_and_names_sharing_a_prefix_do_not_overlap(tmp_path: Path) -> None:
    refuse_overlap(tmp_path / "data2", {"dataset": tmp_path / "data"})
    refuse_overlap(tmp_path / "runs" / "a", {"run": tmp_path / "runs" / "b", "dataset": None})


def test_force_replaces_only_a_folder_this_tool_wrote(tmp_path: Path) -> None:
    """Empty, or holding the marker: replaced. Anything else, a plain file included: refused."""
    empty, ours, file = (tmp_path / n for n in ("empty", "ours", "file"))
    empty.mkdir()
    ours.mkdir()
    (ours / "dataset.json").write_text("{}")
    theirs = folder_of_other_files(tmp_path / "theirs")
    file.write_text("keep")
    for out in (empty, ours):
        with atomic_directory(out, force=True, what="dataset", marker="dataset.json") as tmp:
            (tmp / "new.txt").write_text("new")
        assert [p.name for p in out.iterdir()] == ["new.txt"]
    for out in (theirs, file):
        with (
            pytest.raises(UserError, match=r"is not a dataset \(it has no dataset.json\).*move"),
            atomic_directory(out, force=True, what="dataset", marker="dataset.json"),
        ):
            pass
    assert (theirs / "thesis.tex").read_text() == "keep" and file.read_text() == "keep"
