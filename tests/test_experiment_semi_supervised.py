"""`gw experiment semi-supervised` end to end on a tiny dataset: results, resume, bad input, sharding."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_line_error, tree_bytes
from workspace_fixtures import one_thread, optimisers, write_domain  # noqa: F401

from global_workspace.cli import main
from global_workspace.domains.pretrain import PretrainConfig, pretrain
from global_workspace.errors import UserError
from global_workspace.experiments.runner import SemiSupervisedOptions, run_semi_supervised
from global_workspace.experiments.semi_supervised import run
from global_workspace.experiments.semi_supervised.config import KEPT_STEP, TRAINED_STEPS, ExperimentConfig
from global_workspace.experiments.semi_supervised.parsing import parse_select_on
from global_workspace.experiments.semi_supervised.planning import assign_chunks, plan_chunks
from global_workspace.experiments.semi_supervised.run import train_chunk
from global_workspace.workspace import build

pytestmark = pytest.mark.usefixtures("one_thread")

ARGS = ["--domains", "attr,x", "--paired", "8,ALL", "--presets", "tr,full,cont", "--seeds", "2",
        "--steps", "40", "--batch-size", "32", "--eval-every", "20", "--labelled", "100", "--device", "cpu",
        "--quiet"]  # fmt: skip
MEMBERS = 3 * 2 * 2


@pytest.fixture(scope="module")
def exp_data(tiny_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset with the `attr` domain and `x`, a fixed nonlinear map of it (no training)."""
    data = tmp_path_factory.mktemp("exp") / "data"
    shutil.copytree(tiny_shapes, data)
    pretrain(data, PretrainConfig(domains=("attr",), progress=False))
    rng = np.random.default_rng(0)
    attr_dim = json.loads((data / "domains/attr/config.json").read_text())["latent_dim"]
    proj = rng.normal(size=(attr_dim, 9)) / math.sqrt(attr_dim)
    attr = {
        split: np.load(data / "domains/attr/latents" / f"{split}.npy") for split in ("train", "val", "test")
    }
    write_domain(data, "x", {split: np.tanh(a @ proj) for split, a in attr.items()})
    return data


def run_cli(*args: str) -> None:
    main(list(args))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_tiny_experiment_end_to_end(exp_data: Path, tmp_path: Path) -> None:
    from test_report import assert_renders

    exp = tmp_path / "exp"
    with pytest.raises(SystemExit) as done:
        run_cli("experiment", "semi-supervised", str(exp_data), *ARGS, "--out", str(exp))
    assert done.value.code in (0, None)
    rows = read_csv(exp / "results.csv")
    assert len(rows) == MEMBERS
    assert len({(r["preset"], r["paired"], r["seed"]) for r in rows}) == MEMBERS
    assert {r["paired"] for r in rows} == {"8", "256"}  # ALL = the train split
    metrics = [k for k in rows[0] if k not in ("member", "preset", "paired", "seed")]
    for name in (
        "translation/attr_to_x/latent_mse",
        "cycle/attr_through_x/latent_mse",
        "retrieval/x_to_attr/top1",
        "probe/attr/shape_accuracy",
        "zero_shot/x_to_attr/shape_accuracy",
        "odd_one_out/attr_to_x/accuracy",
    ):
        assert name in metrics, name
    for r in rows:
        for m in metrics:
            if not m.startswith("val_min/"):
                assert math.isfinite(float(r[m])), (r["member"], m)
    # The best validation loss of each direction, for members that learn to translate (`cont` never
    # trains its decoders, so it has none).
    for r in rows:
        for m in ("val_min/translation/attr_to_x/latent_mse", "val_min/translation/mean/latent_mse"):
            assert (r[m] == "") == (r["preset"] == "cont"), (r["member"], m)
    # Every validation check of every member that selects on it (not `cont`), with the sum.
    curves = read_csv(exp / "validation.csv")
    assert {(r["member"], r["step"]) for r in curves} == {
        (r["member"], step) for r in rows if r["preset"] != "cont" for step in ("20.0", "40.0")
    }
    for r in curves:
        parts = float(r["translation/attr_to_x/latent_mse"]) + float(r["translation/x_to_attr/latent_mse"])
        assert float(r["translation/sum/latent_mse"]) == pytest.approx(parts)
    best = {
        r["member"]: float(r["val_min/translation/attr_to_x/latent_mse"])
        for r in rows
        if r["preset"] != "cont"
    }
    for member, lowest in best.items():
        assert lowest == pytest.approx(
            min(float(c["translation/attr_to_x/latent_mse"]) for c in curves if c["member"] == member)
        )
    eff = json.loads((exp / "efficiency.json").read_text())
    assert set(eff["metrics"]["translation/sum/latent_mse"]) == {"full_vs_tr"}
    for name in ("translation", "cycles", "downstream", "validation"):
        assert (exp / "figures" / f"{name}.png").is_file() and (exp / "figures" / f"{name}.svg").is_file()
    assert_renders(exp / "report.html", tmp_path, min_images=3)


def options(data: Path, out: Path, **changes: object) -> SemiSupervisedOptions:
    base = dict(data=data, domains="attr,x", paired="8,ALL", presets="tr,full,cont", seeds=2,
                out=out, steps=40, batch_size=32, eval_every=20, labelled=100, device="cpu",
                progress=False)  # fmt: skip
    base.update(changes)
    return SemiSupervisedOptions(**base)  # type: ignore[arg-type]


def test_interrupted_experiment_resumes_without_redoing_members(
    exp_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    small = {"seeds": 1}  # 3 ensembles (one per preset) of 2 members
    full = run_semi_supervised(options(exp_data, tmp_path / "uninterrupted", **small))
    assert full is not None

    real = run.train_chunk
    trained: list[str] = []

    def flaky(data, members, *args, **kwargs):  # type: ignore[no-untyped-def]
        if len(trained) == 1:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during the second ensemble
        trained.append(members[0].preset)
        return real(data, members, *args, **kwargs)

    monkeypatch.setattr(run, "train_chunk", flaky)
    exp = tmp_path / "exp"
    with pytest.raises(KeyboardInterrupt):
        run_semi_supervised(options(exp_data, exp, **small))
    assert not (exp / "results.csv").exists()
    assert len(list((exp / "chunks").iterdir())) == 1

    # The same command on other latents (a copy of DATA with `x` changed) is refused, not mixed in.
    other = tmp_path / "other"
    shutil.copytree(exp_data, other)
    x = other / "domains/x/latents/train.npy"
    np.save(x, -np.load(x))
    with pytest.raises(UserError, match="other latents"):
        run_semi_supervised(options(other, exp, **small))

    monkeypatch.setattr(run, "train_chunk", lambda *a, **k: (trained.append("again"), real(*a, **k))[1])
    capsys.readouterr()
    resumed = run_semi_supervised(options(exp_data, exp, **small))
    assert resumed is not None and resumed.trained_members == 4
    assert "2 of 6 members already done" in (said := "".join(capsys.readouterr()))
    assert "training the 4 members left (full, cont)" in said
    assert trained == ["tr", "again", "again"]  # the finished `tr` ensemble was not trained again
    assert read_csv(exp / "results.csv") == read_csv(tmp_path / "uninterrupted" / "results.csv")
    assert read_csv(exp / "validation.csv") == read_csv(tmp_path / "uninterrupted" / "validation.csv")


class Interrupted(Exception):
    """Stands for a kill in the middle of an ensemble's training."""


def test_an_interrupted_ensemble_resumes_from_its_last_save(
    exp_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed at its third validation check, an ensemble saved at its second resumes there, and the
    experiment ends as if it had never stopped."""
    from global_workspace.experiments.semi_supervised import keep_best, partial

    small = {"seeds": 2, "presets": "tr", "paired": "8", "steps": 80, "eval_every": 20}
    monkeypatch.setattr(partial, "SAVE_SECONDS", 0.0)
    whole = run_semi_supervised(options(exp_data, tmp_path / "whole", **small))
    assert whole is not None

    real = keep_best.KeepBest.__call__

    def killed_at_60(self, step, metrics):  # type: ignore[no-untyped-def]
        if step == 60:
            raise Interrupted
        real(self, step, metrics)

    monkeypatch.setattr(keep_best.KeepBest, "__call__", killed_at_60)
    exp = tmp_path / "exp"
    with pytest.raises(Interrupted):
        run_semi_supervised(options(exp_data, exp, **small))
    saved = list((exp / "chunks").glob(".partial-*"))
    assert len(saved) == 1 and [step for step, _ in json.loads((saved[0] / "keep.json").read_text())] == [
        20,
        40,
    ]

    monkeypatch.setattr(keep_best.KeepBest, "__call__", real)
    resumed_at: list[int] = []
    load = partial.load_partial
    monkeypatch.setattr(
        partial, "load_partial", lambda f, t, k: (load(f, t, k), resumed_at.append(t.host_step))[0]
    )
    assert run_semi_supervised(options(exp_data, exp, **small)) is not None
    assert resumed_at == [40]
    efficiency = json.loads((exp / "efficiency.json").read_text())  # `tr` alone: no ratio to read
    assert all(not comps for comps in efficiency["metrics"].values())
    assert not efficiency["paper_protocol"]["comparisons"]
    for name in ("results.csv", "validation.csv"):
        assert read_csv(exp / name) == read_csv(tmp_path / "whole" / name), name
    assert not list((exp / "chunks").glob(".partial-*"))


def test_a_saved_ensemble_is_planned_whole_only_while_all_its_members_wait(tmp_path: Path) -> None:
    from global_workspace.experiments.semi_supervised.partial import partial_chunks, partial_folder
    from global_workspace.workspace.presets import MemberSpec

    a, b, c = (MemberSpec.from_preset("tr", seed=s, paired=8) for s in range(3))
    folder = partial_folder(tmp_path, [a, b])
    folder.mkdir(parents=True)
    (folder / "members.json").write_text(json.dumps([a.to_json(), b.to_json()]))
    (tmp_path / "chunks" / ".partial-unfinished").mkdir()  # a save killed before members.json
    assert partial_chunks(tmp_path, [c, b, a]) == [[a, b]]
    assert partial_chunks(tmp_path, [a, c]) == []  # b is done: the save is stale
    assert partial_chunks(tmp_path / "nothing", [a, b]) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"paired": "8,1000"}, "more than the train split's"),
        ({"paired": "0"}, "at least 1"),
        ({"paired": "8,8"}, "names 8 twice"),
        ({"paired": "8,lots"}, "neither a whole number nor ALL"),
        ({"presets": "tr,bogus"}, "unknown preset 'bogus'"),
        ({"domains": "attr,nothing"}, "gw pretrain"),
        ({"seeds": 0}, "--seeds must be at least 1"),
        ({"width": 0}, "--width must be at least 1"),
        ({"define": ("full=full:cy=1",)}, "built-in preset"),
        ({"define": ("mine=full:fused=1",)}, "bad coefficient 'fused=1'"),
        ({"define": ("mine=full",)}, "NAME=BASE:COEFFICIENTS"),
        ({"define": ("mine=full:dcy=1", "mine=full:dcy=5"), "presets": "tr,mine"}, "'mine' twice"),
        ({"define": ("mine=full:dcy=1,demi_cycle=2",), "presets": "tr,mine"}, "weigh demi_cycle twice"),
        ({"select_on": "attr_to_y"}, "give all, last, or directions among attr_to_x, x_to_attr"),
        ({"patience": -1}, "--patience must be at least 0"),
        ({"patience": 10}, "shorter than one validation check"),
        ({"patience": 40, "eval_every": 0}, "give --eval-every > 0"),
        ({"patience": 40, "select_on": "last"}, "--select-on last ignores"),
    ],
)
def test_bad_input_is_refused_before_any_work(
    exp_data: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        run_semi_supervised(options(exp_data, tmp_path / "exp", **changes))
    assert not (tmp_path / "exp").exists()


def test_workspace_size_options_reach_the_experiment(exp_data: Path, tmp_path: Path) -> None:
    from global_workspace.experiments.runner import build_config

    config = build_config(
        options(exp_data, tmp_path / "exp", width=24, depth=3, workspace_dim=8), torch.device("cpu")
    )
    assert (config.width, config.depth, config.workspace_dim) == (24, 3, 8)


def test_select_on_keeps_the_weights_best_on_the_named_directions(exp_data: Path) -> None:
    """With three domains the overfitting caption directions decide a selection over every
    direction; naming directions must keep the checkpoint best on those, and `last` none."""
    from global_workspace.workspace.data import load_latent_data
    from global_workspace.workspace.families import family_of
    from global_workspace.workspace.presets import MemberSpec
    from global_workspace.workspace.settings import TrainConfig, WorkspaceConfig

    data = load_latent_data(exp_data, ["attr", "x"], torch.device("cpu"))
    members = [MemberSpec.from_preset("tr", seed=s, paired=8) for s in (0, 1)]
    family = family_of(members)

    kept_steps: dict[str, list[float | None]] = {}

    def val_after(select_on: str, eval_every: int = 10) -> dict[str, torch.Tensor]:
        config = ExperimentConfig(
            data=str(exp_data), domains=["attr", "x"], presets=["tr"], paired=[8], seeds=[0, 1],
            train=TrainConfig(steps=60, batch_size=32, lr=1e-2, eval_every=eval_every), select_on=select_on,
        )  # fmt: skip
        result = train_chunk(data, members, config, None, (), progress=False)
        kept_steps[select_on] = [row[KEPT_STEP] for row in result.metrics]
        ws = WorkspaceConfig(domains={d: s.latent_dim for d, s in data.specs.items()})
        model = family.build_model(ws, [m.seed for m in members])
        model.load_state_dict(result.weights)
        with torch.no_grad():
            return dict(family.latent_metrics(model, data.split("val"), data.specs))

    one = "translation/attr_to_x/latent_mse"
    every, named, last = val_after("all"), val_after("attr_to_x"), val_after("last")
    assert torch.all(named[one] <= every[one] + 1e-6) and torch.all(named[one] <= last[one] + 1e-6)
    assert not torch.equal(named[one], last[one])  # overfitting: the kept checkpoint is an earlier one
    # results.csv says which step each member kept: a validation check, earlier than the last here
    assert kept_steps["last"] == [60.0, 60.0]
    assert all(s is not None and s % 10 == 0 for s in kept_steps["attr_to_x"])
    assert min(s or 60.0 for s in kept_steps["attr_to_x"]) < 60.0
    no_checks = val_after("all", eval_every=0)  # checked only after the last step
    assert all(torch.equal(last[k], no_checks[k]) for k in last)


def test_patience_from_the_command_line_reaches_results_csv(exp_data: Path, tmp_path: Path) -> None:
    """8 pairs overfit early: with --patience the ensemble stops before its budget, at least the
    patience after the step each member kept, and results.csv says where."""
    exp = tmp_path / "exp"
    args = ["--domains", "attr,x", "--paired", "8", "--presets", "tr", "--seeds", "2", "--steps", "2000",
            "--batch-size", "32", "--lr", "1e-2", "--eval-every", "20", "--patience", "100",
            "--labelled", "100", "--device", "cpu", "--quiet"]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        run_cli("experiment", "semi-supervised", str(exp_data), *args, "--out", str(exp))
    assert done.value.code in (0, None)
    rows = read_csv(exp / "results.csv")
    trained = {float(r[TRAINED_STEPS]) for r in rows}
    assert len(trained) == 1 and trained.pop() < 2000
    stopped = float(rows[0][TRAINED_STEPS])
    assert all(stopped - float(r[KEPT_STEP]) >= 100 for r in rows)
    assert any(stopped - float(r[KEPT_STEP]) == 100 for r in rows)  # the last member to improve


def _planting(monkeypatch: pytest.MonkeyPatch, checks: list[dict[str, list[float]]]) -> Iterator[object]:
    """Make every validation check of an ensemble read the next of `checks` (per metric, one value
    per member); returns the iterator, so a test can see how many checks were read."""
    planted = iter(checks)
    real = build.family_of

    def planting(members):  # type: ignore[no-untyped-def]
        def latent_metrics(*args, **kwargs):  # type: ignore[no-untyped-def]
            return {k: torch.tensor(v) for k, v in next(planted).items()}

        return dataclasses.replace(real(members), latent_metrics=latent_metrics)

    monkeypatch.setattr(build, "family_of", planting)
    return planted


def test_the_validation_minimum_of_each_direction_is_recorded(
    exp_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted validation losses at three checks: each member records, per direction, its lowest,
    which need not come from the check whose weights it keeps; `cont` records none."""
    from global_workspace.workspace.data import load_latent_data
    from global_workspace.workspace.presets import MemberSpec
    from global_workspace.workspace.settings import TrainConfig

    planted = _planting(
        monkeypatch,
        [  # per check: attr_to_x and x_to_attr of the members (tr, cont)
            {"translation/attr_to_x/latent_mse": [3.0, 1.0], "translation/x_to_attr/latent_mse": [2.0, 2.0]},
            {"translation/attr_to_x/latent_mse": [1.0, 2.0], "translation/x_to_attr/latent_mse": [3.0, 1.0]},
            {"translation/attr_to_x/latent_mse": [2.5, 3.0], "translation/x_to_attr/latent_mse": [1.5, 3.0]},
        ],
    )
    data = load_latent_data(exp_data, ["attr", "x"], torch.device("cpu"))
    members = [MemberSpec.from_preset(p, seed=0, paired=8) for p in ("tr", "cont")]
    config = ExperimentConfig(
        data=str(exp_data), domains=["attr", "x"], presets=["tr", "cont"], paired=[8], seeds=[0],
        train=TrainConfig(steps=30, batch_size=32, eval_every=10),
    )  # fmt: skip
    result = train_chunk(data, members, config, None, (), progress=False)
    tr, cont = result.metrics
    assert tr["val_min/translation/attr_to_x/latent_mse"] == 1.0
    assert tr["val_min/translation/x_to_attr/latent_mse"] == 1.5
    assert tr[KEPT_STEP] == 20.0  # the lowest sum over directions (4.0)
    assert cont["val_min/translation/attr_to_x/latent_mse"] is None
    assert next(planted, None) is None  # every check was read


def test_patience_stops_an_ensemble_once_no_member_improves(
    exp_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted validation losses: one member is best at the first check, the other at the second;
    with a patience of two checks the ensemble stops at the fourth, each keeping its best step."""
    from global_workspace.workspace.data import load_latent_data
    from global_workspace.workspace.presets import MemberSpec
    from global_workspace.workspace.settings import TrainConfig

    a_to_x, x_to_a = "translation/attr_to_x/latent_mse", "translation/x_to_attr/latent_mse"
    losses = [[1.0, 3.0], [2.0, 1.0], [2.0, 2.0], [3.0, 1.5], [0.1, 0.1], [0.1, 0.1]]
    planted = _planting(monkeypatch, [{a_to_x: pair, x_to_a: [0.0, 0.0]} for pair in losses])
    data = load_latent_data(exp_data, ["attr", "x"], torch.device("cpu"))
    members = [MemberSpec.from_preset("tr", seed=s, paired=8) for s in (0, 1)]
    config = ExperimentConfig(
        data=str(exp_data), domains=["attr", "x"], presets=["tr"], paired=[8], seeds=[0, 1],
        train=TrainConfig(steps=60, batch_size=32, eval_every=10), patience=20,
    )  # fmt: skip
    result = train_chunk(data, members, config, None, (), progress=False)
    assert [row[KEPT_STEP] for row in result.metrics] == [10.0, 20.0]
    assert [row[TRAINED_STEPS] for row in result.metrics] == [40.0, 40.0]
    assert [row[f"val_min/{a_to_x}"] for row in result.metrics] == [1.0, 1.0]
    assert next(planted) == {a_to_x: [0.1, 0.1], x_to_a: [0.0, 0.0]}  # the fifth check was never read


def test_patience_never_stops_an_ensemble_whose_member_keeps_its_last_weights(
    exp_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cont` has no translation loss to wait on: its ensemble trains to the last step."""
    from global_workspace.workspace.data import load_latent_data
    from global_workspace.workspace.presets import MemberSpec
    from global_workspace.workspace.settings import TrainConfig

    a_to_x, x_to_a = "translation/attr_to_x/latent_mse", "translation/x_to_attr/latent_mse"
    planted = _planting(monkeypatch, [{a_to_x: [1.0 + i, 1.0], x_to_a: [0.0, 0.0]} for i in range(6)])
    data = load_latent_data(exp_data, ["attr", "x"], torch.device("cpu"))
    members = [MemberSpec.from_preset(p, seed=0, paired=8) for p in ("tr", "cont")]
    config = ExperimentConfig(
        data=str(exp_data), domains=["attr", "x"], presets=["tr", "cont"], paired=[8], seeds=[0],
        train=TrainConfig(steps=60, batch_size=32, eval_every=10), patience=20,
    )  # fmt: skip
    result = train_chunk(data, members, config, None, (), progress=False)
    assert [row[TRAINED_STEPS] for row in result.metrics] == [60.0, 60.0]
    assert result.metrics[0][KEPT_STEP] == 10.0
    assert next(planted, None) is None  # all six checks were read


def test_the_budget_reading_names_the_curves_still_improving_at_the_last_step() -> None:
    from global_workspace.experiments.efficiency import VAL_MIN_MEAN
    from global_workspace.experiments.semi_supervised.readings import budget_reading
    from global_workspace.workspace.settings import TrainConfig

    def config(select_on: str = "all") -> ExperimentConfig:
        return ExperimentConfig(
            data="unused", domains=["v", "attr"], presets=["tr", "full", "cont"], paired=[60, 250],
            seeds=[0, 1], train=TrainConfig(steps=1000), select_on=select_on,
        )  # fmt: skip

    def row(preset: str, paired: int, kept: int) -> dict[str, object]:
        return {
            "preset": preset,
            "paired": paired,
            KEPT_STEP: float(kept),
            VAL_MIN_MEAN: None if preset == "cont" else 1.0,
        }

    rows = [row("tr", 60, 500), row("tr", 60, 250), row("tr", 250, 1000), row("tr", 250, 750)]
    rows += [row("full", n, 1000) for n in (60, 60, 250, 250)] + [row("cont", 60, 1000)]
    budget = budget_reading(config(), rows)
    assert budget["still_improving"] == [
        {"preset": "tr", "paired": 250, "members": 1, "of": 2},
        {"preset": "full", "paired": 60, "members": 2, "of": 2},
        {"preset": "full", "paired": 250, "members": 2, "of": 2},
    ]  # `cont` keeps its last step whatever happens: not a sign of anything
    assert "tr at N = 250 (1/2); full at N = 60 (2/2), 250 (2/2)" in budget["summary"]
    early = budget_reading(config(), [row("tr", 60, 500)])
    assert early["still_improving"] == [] and "stopped improving before the last of 1000" in early["summary"]
    assert budget_reading(config("last"), rows)["still_improving"] is None


def test_patience_is_part_of_an_experiment_only_where_set() -> None:
    def config(patience: int) -> ExperimentConfig:
        return ExperimentConfig(
            data="unused", domains=["v", "attr"], presets=["tr"], paired=[60], seeds=[0], patience=patience
        )

    assert "patience" not in config(0).identity()  # experiments made before it still resume
    assert config(500).identity()["patience"] == 500
    assert ExperimentConfig.from_json(config(500).to_json()).patience == 500
    assert "500 steps" in config(500).kept_weights()


def test_select_on_is_part_of_an_experiment_and_reads_as_before_where_unchanged() -> None:
    def identity(select_on: str) -> dict[str, object]:
        config = ExperimentConfig(
            data="unused", domains=["v", "attr"], presets=["tr"], paired=[60], seeds=[0], select_on=select_on
        )
        return config.identity()

    assert identity("all")["select_on_val"] is True and "select_on" not in identity("all")
    assert identity("last")["select_on_val"] is False
    assert identity("attr_to_v") != identity("all")
    assert parse_select_on(" attr_to_v,v_to_attr,attr_to_v", ["v", "attr"]) == ("attr_to_v,v_to_attr")
    assert parse_select_on("LAST", ["v", "attr"]) == "last"


def test_defined_preset_trains_with_its_weights_and_a_resume_keeps_them(
    exp_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--define makes a preset from a base one; its weights are fixed in EXP, so a resume with
    another definition is refused instead of mixing members trained with two different losses."""
    exp = tmp_path / "exp"
    with pytest.raises(SystemExit) as done:
        run_cli("experiment", "semi-supervised", str(exp_data), *ARGS, "--seeds", "1", "--presets",
                "tr,heavy-cycle", "--define", "heavy-cycle=full:cy=2,cont=0", "--out", str(exp))  # fmt: skip
    assert done.value.code in (0, None)
    assert {r["preset"] for r in read_csv(exp / "results.csv")} == {"tr", "heavy-cycle"}
    stored = json.loads((exp / "experiment.json").read_text())["config"]["coefficients"]
    assert stored["heavy-cycle"] == {"translation": 1.0, "contrastive": 0.0, "demi_cycle": 0.1, "cycle": 2.0}
    trained = [
        spec
        for members in exp.glob("chunks/*/members.json")
        for spec in json.loads(members.read_text())
        if spec["preset"] == "heavy-cycle"
    ]
    assert len(trained) == 2 and all(s["coefficients"] == stored["heavy-cycle"] for s in trained)

    (exp / "results.csv").unlink()  # unfinished again: a rerun would resume
    changed = options(exp_data, exp, seeds=1, presets="tr,heavy-cycle", define=("heavy-cycle=full:cy=1",))
    with pytest.raises(UserError, match="other settings"):
        run_semi_supervised(changed)


def test_a_variant_of_full_is_compared_with_tr_and_with_full(exp_data: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    with pytest.raises(SystemExit) as done:
        run_cli("experiment", "semi-supervised", str(exp_data), *ARGS, "--seeds", "1", "--presets",
                "tr,full,full-bt", "--out", str(exp))  # fmt: skip
    assert done.value.code in (0, None)
    rows = read_csv(exp / "results.csv")
    assert {r["preset"] for r in rows} == {"tr", "full", "full-bt"}
    eff = json.loads((exp / "efficiency.json").read_text())
    assert eff["candidate"] == "full"
    assert set(eff["metrics"]["translation/sum/latent_mse"]) == {
        "full_vs_tr",
        "full-bt_vs_tr",
        "full-bt_vs_full",
    }


def test_a_grid_trains_every_point_and_keeps_the_best_on_validation(
    exp_data: Path,
    tmp_path: Path,
    optimisers: list[tuple[float, float]],  # noqa: F811
) -> None:
    from test_report import assert_renders

    exp = tmp_path / "exp"
    with pytest.raises(SystemExit) as done:
        run_cli("experiment", "semi-supervised", str(exp_data), *ARGS, "--presets", "tr,full", "--seeds", "1",
                "--steps", "20", "--eval-every", "10", "--grid", "cy=0.1,1", "--grid-lr", "1e-3,1e-2",
                "--paper-levels", "0.5", "--out", str(exp))  # fmt: skip
    assert done.value.code in (0, None)
    # Ensembles of one preset and one learning rate: tr × 2 and full × 2, with the default weight decay.
    assert sorted(optimisers) == [(1e-3, 1e-6), (1e-3, 1e-6), (1e-2, 1e-6), (1e-2, 1e-6)]

    rows = read_csv(exp / "results.csv")
    assert len(rows) == (2 + 4) * 2  # (tr's 2 points + full's 4) × 2 pair counts
    assert {r["lr"] for r in rows} == {"0.001", "0.01"} and {r["weight_decay"] for r in rows} == {"1e-06"}
    assert {r["coefficient/cycle"] for r in rows if r["preset"] == "full"} == {"0.1", "1.0"}
    assert {r["coefficient/cycle"] for r in rows if r["preset"] == "tr"} == {""}
    assert len({r["grid_point"] for r in rows if r["preset"] == "full"}) == 4

    selection = json.loads((exp / "selection.json").read_text())
    assert len(selection["selected"]) == 2 * 2
    val = "val_min/translation/mean/latent_mse"
    for chosen in selection["selected"]:
        group = [r for r in rows if r["preset"] == chosen["preset"] and r["paired"] == str(chosen["paired"])]
        best = min(group, key=lambda r: float(r[val]))
        assert chosen["grid_point"] == best["grid_point"] and chosen["validation"] == float(best[val])
        assert len(chosen["points"]) == len(group)

    eff = json.loads((exp / "efficiency.json").read_text())
    assert set(eff["metrics"]["translation/sum/latent_mse"]) == {"full_vs_tr"}
    paper = eff["paper_protocol"]
    assert paper["metric"] == val and [lv["loss"] for lv in paper["comparisons"]["full_vs_tr"]["levels"]] == [
        0.5
    ]
    html = (exp / "report.html").read_text()
    assert "the point kept per preset and pair count" in html and "The paper&#x27;s reading" in html
    assert "12 workspaces trained, the 4 of the grid points chosen on validation shown" in html
    assert_renders(exp / "report.html", tmp_path, min_images=3)


def test_existing_folders_need_force(
    exp_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    # Not even with force: it is not an experiment folder, and force replaces only those.
    for force in (False, True):
        with pytest.raises(UserError, match=r"not an experiment folder \(it has no experiment.json\)"):
            run_semi_supervised(options(exp_data, other, force=force))
    assert (other / "keep.txt").read_text() == "mine"
    # The CLI turns it into one line and exit code 2.
    with pytest.raises(SystemExit) as exit_info:
        run_cli("experiment", "semi-supervised", str(exp_data), *ARGS, "--out", str(other), "--force")
    assert exit_info.value.code == 2
    assert "move" in one_line_error(capsys)
    assert (other / "keep.txt").read_text() == "mine"

    exp = tmp_path / "exp"
    small = {"presets": "tr,full", "paired": "8,ALL", "seeds": 1, "steps": 20}
    assert run_semi_supervised(options(exp_data, exp, **small)) is not None
    with pytest.raises(UserError, match="already holds a finished experiment"):
        run_semi_supervised(options(exp_data, exp, **small))
    with pytest.raises(UserError, match=r"other settings \(it stored train\)"):
        run_semi_supervised(options(exp_data, exp, **{**small, "steps": 30}))
    with pytest.raises(UserError, match=r"it stored depth 3, width 256\)"):  # made before a default changed
        run_semi_supervised(options(exp_data, exp, **{**small, "width": 32, "depth": 5}))
    again = run_semi_supervised(options(exp_data, exp, force=True, **small))
    assert again is not None and again.trained_members == 4


@pytest.mark.parametrize("out", ["data", "data/domains", "."])
def test_force_never_deletes_the_dataset_it_reads(
    exp_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    """EXP is DATA, lies inside it or holds it: refused, even with --force, and DATA stays whole."""
    data = tmp_path / "data"
    shutil.copytree(exp_data, data)
    before = tree_bytes(tmp_path)
    small = ["--presets", "tr", "--paired", "8", "--seeds", "1", "--steps", "2", "--force"]
    with pytest.raises(SystemExit) as exit_info:
        run_cli("experiment", "semi-supervised", str(data), *ARGS, *small, "--out", str(tmp_path / out))
    assert exit_info.value.code == 2
    assert "that this command reads" in one_line_error(capsys)
    assert tree_bytes(tmp_path) == before


def test_sharded_run_equals_unsharded_run(exp_data: Path, tmp_path: Path) -> None:
    gw = Path(sys.executable).with_name("gw")
    torchrun = Path(sys.executable).with_name("torchrun")
    if not gw.exists() or not torchrun.exists():
        pytest.skip("the gw and torchrun scripts are not installed beside this Python")
    # Both runs are fresh processes: an in-process run inherits the allocator state of earlier
    # tests, and BLAS kernels chosen by memory alignment can then differ in the last bit, which
    # the best-validation pick may amplify. The same command gives identical files run to run.
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    # the later --seeds wins: 3 ensembles of 2
    args = [str(gw), "experiment", "semi-supervised", str(exp_data), *ARGS, "--seeds", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    alone = subprocess.run([*args, "--out", str(single)], capture_output=True, text=True, timeout=600,
                           env=env, check=False)  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-3000:]
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", "--no-python", *args,
           "--out", str(sharded)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "over 2 processes" in proc.stderr
    a, b = read_csv(single / "results.csv"), read_csv(sharded / "results.csv")
    assert [r["member"] for r in a] == [r["member"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for key in ra:
            if key in ("member", "preset") or "" in (ra[key], rb[key]):  # `cont` has no val_min
                assert ra[key] == rb[key]
            else:
                assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-5, abs=1e-6), (
                    ra["member"],
                    key,
                )


def test_ensembles_are_shared_out_so_ranks_finish_together() -> None:
    """The demo's six one-preset ensembles on two processes: by index (i mod 2) one rank got tr+cont,
    tr+dcy and full, 23% more work than the other; by estimated cost the loads differ by < 5%."""
    presets = ["tr", "tr+cont", "tr+cy", "tr+dcy", "cont", "full"]
    config = ExperimentConfig(
        data="unused", domains=["v", "attr"], presets=presets, paired=[60, 250, 12000], seeds=[0, 1, 2, 3, 4]
    )
    chunks = plan_chunks(config.members(), config, parts=2)
    assert [c[0].preset for c in chunks] == presets
    plan = assign_chunks(chunks, world=2, config=config)
    assert sorted(i for rank in plan for i in rank) == list(range(len(chunks)))
    # Measured on the CPU for these 15-member ensembles: 1500 steps (ms per step, presets.STEP_COST)
    # and ~20 s of evaluation each.
    step_ms = {"tr": 13.6, "tr+cont": 14.5, "tr+cy": 26.8, "tr+dcy": 20.8, "cont": 10.8, "full": 37.1}
    seconds = {p: 1.5 * ms + 20 for p, ms in step_ms.items()}
    by_index = [sum(seconds[presets[i]] for i in range(r, 6, 2)) for r in range(2)]
    assert max(by_index) / min(by_index) > 1.2
    loads = [sum(seconds[presets[i]] for i in rank) for rank in plan]
    assert max(loads) / min(loads) < 1.05, plan
    assert assign_chunks(chunks, world=2, config=config) == plan  # every rank computes the same
    assert assign_chunks(chunks[:1], world=3, config=config) == [[0], [], []]


def test_results_csv_reads_back_what_was_written(tmp_path: Path) -> None:
    """Users load results.csv for their own analysis: numbers exact, not-applicable stays None."""
    from global_workspace.experiments.semi_supervised.results_io import read_results_csv, write_results_csv

    rows = [
        {"member": "a", "preset": "full", "paired": 60, "seed": 0, "retrieval/v_to_attr/top1": 0.1 / 3},
        {"member": "b", "preset": "direct-tr", "paired": 60, "seed": 1, "retrieval/v_to_attr/top1": None},
    ]
    write_results_csv(tmp_path / "results.csv", rows)
    assert read_results_csv(tmp_path / "results.csv") == rows
