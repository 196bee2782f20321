"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from global_workspace.data.simple_shapes import generate_simple_shapes

TINY_COUNTS = {"train": 256, "val": 64, "test": 64}
TINY_SEED = 7


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a small Simple Shapes dataset (train 256, val 64, test 64, seed 7), made once per session.

    Shared by many tests: read it, never modify it.
    """
    out = tmp_path_factory.mktemp("tiny") / "shapes"
    generate_simple_shapes(out, TINY_COUNTS, seed=TINY_SEED)
    return out


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` with its bytes: equal before and after means nothing was touched."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """What a refused command wrote to stderr, checked to be one line `gw: error: …` (no traceback)."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("gw: error:") and "\n" not in err, err
    return err


def folder_of_other_files(path: Path) -> Path:
    """A folder `gw` did not write, which no --force may delete."""
    path.mkdir()
    (path / "thesis.tex").write_text("keep")
    return path
