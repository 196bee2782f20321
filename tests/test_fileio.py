"""Atomic outputs: nothing half-written, nothing overwritten without --force, readable by others."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

from global_workspace.errors import UserError
from global_workspace.fileio import (
    atomic_directory,
    atomic_save_npy,
    atomic_write_json,
    read_json,
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
