"""Row-aligned training keeps its bytes: the same seed gives the files main's code gave.

The digests were recorded with main's code (commit a34fab3, before own-latents support) on the CPU
with one thread: a change to sampling or the trainer that moves one bit of a row-aligned run fails here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from workspace_fixtures import linear_pair, one_thread  # noqa: F401

from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.run import make_config, train_workspace
from global_workspace.workspace.settings import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

RECORDED = {
    "full": {"78cc04363d7b028478e01f05784c23ddbffe9c39d59da6e4d7dd15b5974bff00"},
    "fusion-gated": {
        "0784745cba63bbdab0eadd7d54b039d4319113f2026a8e658bc0e3eb1053786d",
        "3b388d59b36480afc91736315ad921b0743f5d756c0fffbcf7ff74c550e0015c",
    },
}
"""Digests per run. The gated fusion's bits also depend on the CPU's vector kernels: the same code
gives the second digest on an AMD EPYC with AVX2, so each kind of CPU main's code ran on has its own."""


def _run_digest(run: Path) -> str:
    """Every file of a run but those naming paths or timings (config.json, summary.json)."""
    digest = hashlib.sha256()
    for file in sorted(run.rglob("*")):
        if file.is_file() and file.name not in ("config.json", "summary.json"):
            digest.update(file.relative_to(run).as_posix().encode() + file.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_row_aligned_run_has_mains_bytes(tmp_path: Path, name: str) -> None:
    data = linear_pair(tmp_path / "data", n=300)
    members = [MemberSpec.from_preset(name, seed=s, paired=40) for s in (0, 1)]
    train = TrainConfig(steps=6, batch_size=32, eval_every=3, log_every=3)
    config = make_config(data, ["a", "b"], members, train, width=8, depth=2)
    train_workspace(config, tmp_path / name, "cpu", progress=False, tensorboard=False)
    assert _run_digest(tmp_path / name) in RECORDED[name]
