"""`--points-from`: a longer run trains only the grid points that shorter tuning runs chose on validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import one_line_error
from test_experiment_semi_supervised import exp_data, options, read_csv  # noqa: F401
from workspace_fixtures import one_thread, optimisers  # noqa: F401

from global_workspace.cli import main
from global_workspace.experiments.runner import run_semi_supervised

pytestmark = pytest.mark.usefixtures("one_thread")

VAL = "val_min/translation/mean/latent_mse"
TINY = dict(presets="tr,full", seeds=1, eval_every=10)


@pytest.fixture(scope="module")
def tuning_runs(exp_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:  # noqa: F811
    """Three short tuning runs: a grid of weight decays and cycle weights, a second grid that shares
    one of its points (so the same point is a candidate twice, once per run), and a run without a
    grid (its members' point is its lr and weight decay)."""
    root = tmp_path_factory.mktemp("tuning")
    runs = root / "first", root / "second", root / "plain"
    run_semi_supervised(options(exp_data, runs[0], **TINY, steps=20, grid_wd="0,1", grid="cy=0.1,1"))
    run_semi_supervised(options(exp_data, runs[1], **TINY, steps=10, grid_wd="1,0.01"))
    run_semi_supervised(options(exp_data, runs[2], **TINY, steps=40, lr=1e-2))
    return runs


def _chosen_over(*experiments: Path) -> dict[tuple[str, int], tuple[float, float, str]]:
    """(preset, N) -> (weight decay, lr, cycle weight) of the lowest validation minimum over every
    member of `experiments` (one seed each, so the mean over seeds is the member's own)."""
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for exp in experiments:
        config = json.loads((exp / "experiment.json").read_text())["config"]
        for r in read_csv(exp / "results.csv"):
            cycle = config["coefficients"][r["preset"]].get("cycle")  # a plain run's rows name no point
            plain = {"weight_decay": config["train"]["weight_decay"], "lr": config["train"]["lr"]}
            r = {**plain, "coefficient/cycle": "" if cycle is None else repr(cycle), **r}
            key = (r["preset"], int(r["paired"]))
            if key not in best or float(r[VAL]) < float(best[key][VAL]):
                best[key] = r
    return {k: (float(r["weight_decay"]), float(r["lr"]), r["coefficient/cycle"]) for k, r in best.items()}


def test_a_longer_run_trains_only_the_points_the_tuning_runs_chose(
    exp_data: Path,  # noqa: F811
    tuning_runs: tuple[Path, ...],
    tmp_path: Path,
    optimisers: list[tuple[float, float]],  # noqa: F811
) -> None:
    long = tmp_path / "long"
    sources = ",".join(str(p) for p in tuning_runs)
    outcome = run_semi_supervised(options(exp_data, long, **TINY, steps=30, points_from=sources))
    assert outcome is not None

    expected = _chosen_over(*tuning_runs)
    rows = read_csv(long / "results.csv")
    assert len(rows) == len(expected) == 2 * 2  # one point per (preset, N), one seed
    got = {
        (r["preset"], int(r["paired"])): (float(r["weight_decay"]), float(r["lr"]), r["coefficient/cycle"])
        for r in rows
    }
    assert got == expected
    assert {(lr, wd) for wd, lr, _ in expected.values()} == set(optimisers)

    stored = json.loads((long / "experiment.json").read_text())
    assert stored["config"]["points_from"] == [str(p.resolve()) for p in tuning_runs]
    assert "grid" not in stored["config"] and "points_from" not in stored["identity"]
    counts = {r["paired"] for r in rows}
    assert {k: set(v) for k, v in stored["identity"]["points"].items()} == {"tr": counts, "full": counts}
    selection = json.loads((long / "selection.json").read_text())
    assert all(len(s["points"]) == 1 for s in selection["selected"])
    assert "among the members of the earlier experiments" in (long / "report.html").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid-wd", "0.1"], "would choose again; drop one of them"),
        (["--paired", "8,16"], "no finished member trained tr with 16 pairs"),
        (["--width", "16"], "give the sizes it used"),
    ],
)
def test_points_from_refuses_what_it_cannot_carry(
    exp_data: Path,  # noqa: F811
    tuning_runs: tuple[Path, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    args = ["experiment", "semi-supervised", str(exp_data), "--domains", "attr,x", "--presets", "tr,full",
            "--paired", "8,ALL", "--seeds", "1", "--steps", "10", "--device", "cpu", "--quiet",
            "--points-from", str(tuning_runs[0]), *extra, "--out", str(tmp_path / "exp")]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "exp").exists()


def test_points_from_names_experiment_folders(
    exp_data: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(SystemExit):
        main(["experiment", "semi-supervised", str(exp_data), "--domains", "attr,x", "--paired", "8",
              "--points-from", str(tmp_path / "notes"), "--out", str(tmp_path / "exp")])  # fmt: skip
    assert "is not an experiment folder" in one_line_error(capsys)


def test_points_from_never_writes_into_or_around_a_source(
    exp_data: Path,  # noqa: F811
    tuning_runs: tuple[Path, ...],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its --force would delete the experiment it reads."""
    source = tuning_runs[0]
    before = sorted(p.name for p in source.iterdir())
    overlaps = [(source, "is the"), (source / "longer", "lies inside the"), (source.parent, "holds the")]
    for out, message in overlaps:
        with pytest.raises(SystemExit):
            main(["experiment", "semi-supervised", str(exp_data), "--domains", "attr,x", "--paired", "8",
                  "--points-from", str(source), "--out", str(out), "--force"])  # fmt: skip
        assert f"{message} --points-from experiment" in one_line_error(capsys)
    assert sorted(p.name for p in source.iterdir()) == before
