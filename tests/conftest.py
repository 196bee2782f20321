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
