"""Atomic outputs: nothing half-written, nothing overwritten without --force, readable by others."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from global_workspace.errors import UserError
from global_workspace.fileio import atomic_directory, atomic_write_json, read_json


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
