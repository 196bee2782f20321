"""`gw experiment reread`: a finished experiment's files written again from its chunks, training nothing."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import folder_of_other_files, run_cli
from test_experiment_semi_supervised import ARGS, exp_data  # noqa: F401  (the module's fixture, reused)
from workspace_fixtures import gw_error, one_thread  # noqa: F401

from global_workspace.experiments.downstream import DownstreamSettings
from global_workspace.experiments.grid import Grid
from global_workspace.experiments.semi_supervised.config import SELECT_LAST, ExperimentConfig
from global_workspace.locking import exclusive_output
from global_workspace.workspace import build
from global_workspace.workspace.settings import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

MEMBERS = (2 + 2) * 2  # (tr's 2 learning rates + full's 2) × 2 pair counts
DERIVED = ("results.csv", "selection.json", "efficiency.json", "baselines.json", "report.html")


@pytest.fixture(scope="module")
def finished(exp_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """A finished tiny experiment with a grid (so that it has a selection.json). Copy it to change it."""
    exp = tmp_path_factory.mktemp("reread") / "exp"
    code = run_cli(["experiment", "semi-supervised", str(exp_data), *ARGS, "--presets", "tr,full",
                    "--seeds", "1", "--steps", "10", "--eval-every", "5", "--grid-lr", "1e-3,1e-2",
                    "--out", str(exp)])  # fmt: skip
    assert code == 0
    return exp


def copy_of(finished: Path, tmp_path: Path) -> Path:
    exp = tmp_path / "exp"
    shutil.copytree(finished, exp)
    return exp


def without_wall_time(report: Path) -> str:
    """The report but for the one line that differs between runs: how long the run that wrote it took."""
    return re.sub(r"Wall time of this run: \d+ s", "", report.read_text())


def test_reread_writes_the_files_a_run_wrote_and_trains_nothing(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = copy_of(finished, tmp_path)
    for name in DERIVED:
        (exp / name).unlink()
    shutil.rmtree(exp / "figures")

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("reread trained a workspace")

    monkeypatch.setattr(build, "Trainer", no_training)
    assert run_cli(["experiment", "reread", str(exp)]) == 0
    assert f"reread {MEMBERS} members of {exp}: wrote results.csv, selection.json" in capsys.readouterr().out
    for name in ("results.csv", "selection.json", "efficiency.json", "baselines.json"):
        assert (exp / name).read_bytes() == (finished / name).read_bytes(), name
    assert without_wall_time(exp / "report.html") == without_wall_time(finished / "report.html")
    assert sorted(p.name for p in (exp / "figures").iterdir()) == sorted(
        p.name for p in (finished / "figures").iterdir()
    )


def test_reread_finds_a_dataset_that_moved(
    finished: Path,
    exp_data: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    exp = copy_of(finished, tmp_path)
    moved = tmp_path / "moved"
    shutil.copytree(exp_data, moved)
    assert run_cli(["experiment", "reread", str(exp), "--data", str(moved)]) == 0
    assert (exp / "efficiency.json").read_bytes() == (finished / "efficiency.json").read_bytes()


def test_an_unfinished_experiment_is_refused(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = copy_of(finished, tmp_path)
    shutil.rmtree(next((exp / "chunks").iterdir()))
    (exp / "efficiency.json").unlink()
    err = gw_error(capsys, "experiment", "reread", exp)
    assert f"of {MEMBERS} members not trained yet" in err and "rerun the command that made it" in err
    assert not (exp / "efficiency.json").exists()


def test_a_folder_that_is_no_experiment_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = folder_of_other_files(tmp_path / "other")
    assert "is not an experiment folder" in gw_error(capsys, "experiment", "reread", other)
    assert "is not an experiment folder" in gw_error(capsys, "experiment", "reread", tmp_path / "absent")
    assert sorted(p.name for p in other.iterdir()) == ["thesis.tex"]


def test_missing_or_other_latents_and_a_running_writer_are_refused(
    finished: Path,
    exp_data: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exp = copy_of(finished, tmp_path)
    err = gw_error(capsys, "experiment", "reread", exp, "--data", tmp_path / "gone")
    assert "holds no train latents of attr, x" in err and "--data" in err
    other = tmp_path / "other"
    shutil.copytree(exp_data, other)
    x = other / "domains/x/latents/train.npy"
    np.save(x, -np.load(x))
    assert "other latents" in gw_error(capsys, "experiment", "reread", exp, "--data", other)
    with exclusive_output(exp):
        assert "being written by another gw process" in gw_error(capsys, "experiment", "reread", exp)


def test_settings_read_back_as_they_were_stored() -> None:
    grid = Grid(
        coefficients={"cycle": [0.1, 1.0]},
        lr=[1e-3, 3e-3],
        weight_decay=[0.0],
        width=[32, 64],
        domain_depth=[{"a": 2}, {"a": 4, "b": 3}],
    )
    plain = ExperimentConfig(data="d", domains=["a", "b"], presets=["tr"], paired=[8], seeds=[0])
    tuned = ExperimentConfig(
        data="d", domains=["a", "b"], presets=["tr", "full"], paired=[8, 64], seeds=[0, 1],
        train=TrainConfig(steps=7, betas=(0.8, 0.9)), domain_width={"a": 16}, select_on=SELECT_LAST,
        downstream=DownstreamSettings(labelled=50), coefficients={"tr": {"translation": 2.0}},
        families={"tr": "workspace"}, data_fingerprint="abc", grid=grid, paper_levels=[0.5, 0.8],
    )  # fmt: skip
    for config in (plain, tuned):
        assert ExperimentConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    # Made before `select_on` replaced the boolean `select_on_val`.
    old = {k: v for k, v in plain.to_json().items() if k != "select_on"} | {"select_on_val": False}
    assert ExperimentConfig.from_json(old).select_on == SELECT_LAST


def test_damaged_settings_are_refused(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = copy_of(finished, tmp_path)
    meta = exp / "experiment.json"
    stored = json.loads(meta.read_text())
    stored["config"]["width"] = 0
    meta.write_text(json.dumps(stored))
    assert "sizes must be at least 1: width 0" in gw_error(capsys, "experiment", "reread", exp)
    del stored["config"]["train"]
    meta.write_text(json.dumps(stored))
    assert "does not hold an experiment's settings" in gw_error(capsys, "experiment", "reread", exp)
    meta.write_text(json.dumps(stored)[:40])
    err = gw_error(capsys, "experiment", "reread", exp)
    assert "is corrupted" in err and "UserError(" not in err


@pytest.mark.parametrize("cut", ["mid-line", "at a line's end"])
def test_a_chunk_validation_file_cut_short_is_refused(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], cut: str
) -> None:
    """Mid-line it used to be a traceback; at a line's end, curves silently lost their last checks."""
    exp = copy_of(finished, tmp_path)
    curves = next((exp / "chunks").glob("*/validation.csv"))
    text = curves.read_text()
    lines = text.splitlines(keepends=True)
    curves.write_text(text[: len(text) - len(lines[-1]) // 2] if cut == "mid-line" else "".join(lines[:2]))
    results = (exp / "results.csv").read_bytes()
    err = gw_error(capsys, "experiment", "reread", exp)
    assert str(curves) in err and f"delete {curves.parent}" in err
    assert (exp / "results.csv").read_bytes() == results


def test_a_chunk_validation_file_deleted_is_refused(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to read as a chunk from before curves were kept: half the curves left out silently."""
    exp = copy_of(finished, tmp_path)
    assert len(list((exp / "chunks").glob("*/validation.csv"))) > 1
    curves = next((exp / "chunks").glob("*/validation.csv"))
    curves.unlink()
    err = gw_error(capsys, "experiment", "reread", exp)
    assert f"{curves.parent} has no validation.csv" in err and f"delete {curves.parent}" in err


def test_a_chunk_whose_weights_are_cut_short_is_refused(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reread and combine read no weights, so a damaged file went unnoticed until a member was loaded."""
    exp = copy_of(finished, tmp_path)
    weights = next((exp / "chunks").glob("*/model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-100])
    results = (exp / "results.csv").read_bytes()
    err = gw_error(capsys, "experiment", "reread", exp)
    assert str(weights) in err and f"delete {weights.parent}" in err
    assert (exp / "results.csv").read_bytes() == results
    err = gw_error(capsys, "experiment", "combine", exp, "--out", tmp_path / "combined")
    assert str(weights) in err
    assert not (tmp_path / "combined").exists()
