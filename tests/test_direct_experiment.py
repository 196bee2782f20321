"""A tiny `gw experiment semi-supervised` with the no-workspace presets: results, ablations, report."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from test_experiment_semi_supervised import exp_data  # noqa: F401  (the module's fixture, reused)
from workspace_fixtures import one_thread  # noqa: F401

from global_workspace.cli import main
from global_workspace.experiments.semi_supervised.config import ExperimentConfig
from global_workspace.experiments.semi_supervised.parsing import parse_presets
from global_workspace.experiments.semi_supervised.planning import plan_chunks

PRESETS = "full,direct-tr,direct-tr+cy"
ARGS = ["--domains", "attr,x", "--paired", "8,ALL", "--presets", PRESETS, "--seeds", "1",
        "--steps", "20", "--batch-size", "32", "--eval-every", "10", "--labelled", "100", "--device", "cpu",
        "--quiet"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def test_tiny_experiment_with_direct_presets(exp_data: Path, tmp_path: Path) -> None:  # noqa: F811
    exp = tmp_path / "exp"
    with pytest.raises(SystemExit) as done:
        main(["experiment", "semi-supervised", str(exp_data), *ARGS, "--out", str(exp)])
    assert done.value.code in (0, None)
    with open(exp / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 2
    for r in rows:
        direct = r["preset"].startswith("direct-")
        for name in (
            "translation/attr_to_x/latent_mse",
            "translation/x_to_attr/latent_mse",
            "translation/x_to_attr/shape_accuracy",  # attribute-level coherence through attr's readout
            "cycle/attr_through_x/latent_mse",
        ):
            assert math.isfinite(float(r[name])), (r["member"], name)
        for name in ("retrieval/x_to_attr/top1", "demi_cycle/attr/latent_mse", "probe/attr/shape_accuracy"):
            # Not applicable without a shared space: an empty cell, never a number or nan.
            if direct:
                assert r[name] == "", (r["member"], name)
            else:
                assert math.isfinite(float(r[name])), (r["member"], name)
    eff = json.loads((exp / "efficiency.json").read_text())
    ablations = eff["ablations"]
    assert set(ablations) == {"full_vs_direct-tr+cy"}  # tr and tr+cy were not run
    comp = ablations["full_vs_direct-tr+cy"]["metrics"]["translation/sum/latent_mse"]
    assert set(comp) == {"full_vs_direct-tr+cy"}
    html = (exp / "report.html").read_text()
    assert "Ablations: no shared workspace" in html and "full_vs_direct-tr+cy" in html


def test_presets_list_and_chunks_keep_families_apart() -> None:
    names = [p.name for p in parse_presets("all,direct-tr,direct-tr+cy", {})]
    assert names == ["tr", "tr+cont", "tr+cy", "tr+dcy", "cont", "full", "direct-tr", "direct-tr+cy"]
    config = ExperimentConfig(
        data="", domains=["a", "b"], presets=names, paired=[8, 16], seeds=[0], mix_presets=True
    )
    chunks = plan_chunks(config.members(), config)
    assert len(chunks) == 2  # mixing presets on a GPU still gives one ensemble per model family
    assert [{m.family for m in c} for c in chunks] == [{"workspace"}, {"direct"}]
