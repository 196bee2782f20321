"""The worked example of own data (examples/own_data.py) at a small scale: disjoint collections
with true pairs, trained and scored beside the row-aligned run."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import run_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_data.py"
TRAIN = ["--steps", "4", "--batch-size", "16", "--width", "8", "--depth", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("own_data_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def gw(args: Sequence[object]) -> None:
    assert run_cli([str(a) for a in args]) == 0


def original_rows(own: Path, aligned: Path, domain: str) -> np.ndarray:
    """Where each of the own collection's train latents sits in the row-aligned dataset."""
    where = {
        row.tobytes(): i
        for i, row in enumerate(np.load(aligned / "domains" / domain / "latents" / "train.npy"))
    }
    return np.array(
        [where[row.tobytes()] for row in np.load(own / "domains" / domain / "latents" / "train.npy")]
    )


def test_the_example_splits_trains_and_compares(
    example: ModuleType, pretrained: Path, tmp_path: Path
) -> None:
    own = tmp_path / "own"
    example.own_collections(pretrained, own, collection=80, pairs=20)
    info = json.loads((own / "latents.json").read_text())
    assert info["splits"]["train"] == {"rows": {"v": 80, "t": 80, "attr": 80}, "pairs": 40}
    assert info["splits"]["test"]["pairs"] == 64  # test stays whole and row-aligned
    assert json.loads((own / "domains" / "attr" / "config.json").read_text())["loss"] == {"categorical": 3}
    seen = {d: original_rows(own, pretrained, d) for d in ("v", "t", "attr")}
    pairs = np.load(own / "pairs" / "train.npy")
    assert [tuple(r >= 0 for r in row) for row in pairs[[0, -1]]] == [
        (True, True, False),
        (True, False, True),
    ]
    for row in pairs:  # a true pair: the same underlying example in both domains
        assert len({int(seen[d][i]) for d, i in zip(seen, row, strict=True) if i >= 0}) == 1
    paired = {int(seen["v"][i]) for i in pairs[:, 0]}
    alone = [set(x.tolist()) - paired for x in seen.values()]
    assert [len(a) for a in alone] == [40, 60, 60]
    assert not (alone[0] & alone[1]) and not (alone[0] & alone[2]) and not (alone[1] & alone[2])

    example.train_and_score(gw, own, tmp_path / "run-own", 40, 2, TRAIN)
    example.train_and_score(gw, pretrained, tmp_path / "run-aligned", 20, 2, TRAIN)
    for run in ("run-own", "run-aligned"):
        mse = example.translation_mse(tmp_path / run)
        assert set(mse) == set(example.DIRECTIONS) and np.isfinite(list(mse.values())).all()
    table = example.table(tmp_path / "run-own", tmp_path / "run-aligned").splitlines()
    assert len(table) == 6 and table[2].startswith("| v → t | ") and "nan" not in " ".join(table)
