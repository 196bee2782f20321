"""The tuning grid of `gw experiment semi-supervised`: its points, ensembles and choice on validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from global_workspace.cli import main
from global_workspace.errors import UserError
from global_workspace.experiments.efficiency import VAL_MIN_MEAN
from global_workspace.experiments.grid import (
    Grid,
    check_grid,
    parse_grid,
    select_points,
)
from global_workspace.experiments.semi_supervised.config import ExperimentConfig
from global_workspace.experiments.semi_supervised.planning import (
    assign_chunks,
    chunk_train_config,
    chunk_workspace,
    member_cost,
    plan_chunks,
)
from global_workspace.workspace.presets import point_label, preset
from global_workspace.workspace.settings import TrainConfig

GRID = Grid(coefficients={"demi_cycle": [0.1, 1.0], "cycle": [0.1, 1.0]}, lr=[1e-3, 3e-3], weight_decay=[0.0])


def test_a_preset_varies_only_the_coefficients_it_uses() -> None:
    assert len(GRID.points(preset("full").coefficients)) == 2 * 2 * 2
    assert len(GRID.points(preset("tr+cy").coefficients)) == 2 * 2
    tr_points = GRID.points(preset("tr").coefficients)
    assert tr_points == [{"lr": 1e-3, "weight_decay": 0.0}, {"lr": 3e-3, "weight_decay": 0.0}]


def test_every_point_pair_count_and_seed_is_a_member_and_ensembles_share_their_optimiser() -> None:
    config = ExperimentConfig(
        data="d", domains=["a", "b"], presets=["tr", "full"], paired=[8, 64], seeds=[0, 1], grid=GRID,
        coefficients={p: dict(preset(p).coefficients) for p in ("tr", "full")},
        train=TrainConfig(lr=1e-2, weight_decay=1e-6),
    )  # fmt: skip
    members = config.members()
    assert len(members) == (2 + 8) * 2 * 2
    assert len({m.label() for m in members}) == len(members)
    heavy = [m for m in members if m.preset == "full" and m.grid and m.grid["cycle"] == 1.0]
    assert heavy and all(m.coefficients["cycle"] == 1.0 for m in heavy)
    assert all(
        m.coefficients["contrastive"] == preset("full").coefficients["contrastive"]
        for m in members
        if m.preset == "full"
    )

    chunks = plan_chunks(members, config)
    assert len(chunks) == 2 * 2  # (tr, full) × two learning rates
    for chunk in chunks:
        train = chunk_train_config(chunk, config.train)
        assert {(m.preset, m.grid["lr"], m.grid["weight_decay"]) for m in chunk if m.grid} == {
            (chunk[0].preset, train.lr, train.weight_decay)
        }
        assert train.steps == config.train.steps


def test_an_architecture_grid_trains_each_size_in_its_own_ensembles() -> None:
    grid = Grid(coefficients={}, lr=[3e-3], weight_decay=[0.0], width=[16, 64], depth=[2, 4])
    config = ExperimentConfig(
        data="d", domains=["a", "b"], presets=["tr", "full"], paired=[8], seeds=[0, 1], grid=grid, width=32,
        depth=5, coefficients={p: dict(preset(p).coefficients) for p in ("tr", "full")},
    )  # fmt: skip
    members = config.members()
    assert len(members) == 2 * (2 * 2) * 2  # presets × sizes × seeds
    chunks = plan_chunks(members, config)
    assert len(chunks) == 2 * 4
    sizes = set()
    for chunk in chunks:
        workspace = chunk_workspace(chunk, config, {"a": 3, "b": 5})
        assert {(m.grid["width"], m.grid["depth"]) for m in chunk if m.grid} == {
            (workspace.width, workspace.depth)
        }
        assert workspace.workspace_dim == config.workspace_dim
        sizes.add((workspace.width, workspace.depth))
    assert sizes == {(16, 2), (16, 4), (64, 2), (64, 4)}
    # The two widest, deepest ensembles (tr's and full's) cost most: each rank gets one of them.
    biggest = {i for i, c in enumerate(chunks) if chunk_workspace(c, config, {"a": 3, "b": 5}).width == 64
               and chunk_workspace(c, config, {"a": 3, "b": 5}).depth == 4}  # fmt: skip
    assert [len(biggest & set(rank)) for rank in assign_chunks(chunks, 2, config)] == [1, 1]
    with pytest.raises(ValueError, match="share their width and depth"):
        chunk_workspace(members, config, {"a": 3, "b": 5})
    assert "tr/paired=8/seed=0/grid=lr=0.003,wd=0.0,width=16,depth=2" in {m.label() for m in members}
    stored = config.to_json()["grid"]
    assert stored["width"] == [16, 64] and stored["depth"] == [2, 4]
    # A grid without sizes is stored as before they existed, so such experiments still resume.
    assert (
        "width"
        not in ExperimentConfig(
            data="d", domains=["a"], presets=["tr"], paired=[8], seeds=[0], grid=GRID
        ).to_json()["grid"]
    )


def test_a_grid_of_domain_sizes_trains_each_point_in_its_own_ensembles() -> None:
    """Each point sets some domains' widths on top of --width (and of --domain-width, which it
    overrides); a bigger point costs more; experiment.json stores the axis."""
    grid = Grid(coefficients={}, lr=[3e-3], weight_decay=[0.0], domain_width=[{"a": 64}, {"a": 16, "b": 64}])
    config = ExperimentConfig(
        data="d", domains=["a", "b"], presets=["tr"], paired=[8], seeds=[0, 1], grid=grid, width=32,
        domain_width={"a": 8}, domain_depth={"b": 4},
    )  # fmt: skip
    chunks = plan_chunks(config.members(), config)
    assert len(chunks) == 2 and all(len(c) == 2 for c in chunks)
    sizes = [chunk_workspace(c, config, {"a": 3, "b": 5}) for c in chunks]
    assert [(w.width_of("a"), w.width_of("b"), w.depth_of("a"), w.depth_of("b")) for w in sizes] == [
        (64, 32, 3, 4),
        (16, 64, 3, 4),
    ]
    assert chunks[0][0].label() == "tr/paired=8/seed=0/grid=lr=0.003,wd=0.0,width/a=64"
    assert chunks[1][0].label() == "tr/paired=8/seed=0/grid=lr=0.003,wd=0.0,width/a=16,width/b=64"
    assert member_cost(chunks[0][0], config) < member_cost(chunks[1][0], config)
    stored = config.to_json()
    assert stored["grid"]["domain_width"] == [{"a": 64}, {"a": 16, "b": 64}]
    assert "domain_depth" not in stored["grid"] and stored["domain_width"] == {"a": 8}
    plain = ExperimentConfig(data="d", domains=["a", "b"], presets=["tr"], paired=[8], seeds=[0], grid=GRID)
    assert not {"domain_width", "domain_depth"} & (plain.to_json().keys() | plain.to_json()["grid"].keys())


def test_without_a_grid_the_settings_and_members_are_as_before() -> None:
    config = ExperimentConfig(data="d", domains=["a", "b"], presets=["tr"], paired=[8], seeds=[0])
    assert "grid" not in config.to_json() and "paper_levels" not in config.identity()
    assert "points" not in config.to_json() and "points_from" not in config.to_json()
    assert [m.to_json() for m in config.members()] == [
        {"seed": 0, "coefficients": {"translation": 1.0}, "paired": 8, "preset": "tr", "pair_seed": None}
    ]
    assert config.members()[0].label() == "tr/paired=8/seed=0"
    assert chunk_train_config(config.members(), config.train) is config.train


def rows_of(val: dict[str, list[float]], test: dict[str, list[float]]) -> list[dict[str, Any]]:
    """`full` at N = 8 with one row per grid point and seed, planted validation and test losses."""
    return [
        {
            "preset": "full",
            "paired": 8,
            "seed": seed,
            "grid_point": point,
            "lr": 1e-3,
            "weight_decay": 0.0,
            "coefficient/cycle": float(i),
            VAL_MIN_MEAN: val[point][seed],
            "translation/sum/latent_mse": test[point][seed],
        }
        for i, point in enumerate(val)
        for seed in range(2)
    ]


def test_the_choice_follows_validation_and_never_test() -> None:
    test = {"A": [5.0, 5.0], "B": [1.0, 1.0]}  # B is far better on test
    chosen, selection = select_points(rows_of({"A": [1.0, 2.0], "B": [1.4, 1.8]}, test))
    assert {r["grid_point"] for r in chosen} == {"A"} and len(chosen) == 2  # mean 1.5 < 1.6
    (entry,) = selection["selected"]
    assert entry["grid_point"] == "A" and entry["validation"] == pytest.approx(1.5)
    assert entry["test"] == pytest.approx(5.0) and entry["coefficients"] == {"cycle": 0.0}
    assert [p["grid_point"] for p in entry["points"]] == ["A", "B"]

    # Swapping the test losses changes nothing; swapping validation changes the choice.
    assert (
        select_points(rows_of({"A": [1.0, 2.0], "B": [1.4, 1.8]}, {"A": test["B"], "B": test["A"]}))[0][0][
            "grid_point"
        ]
        == "A"
    )
    chosen, _ = select_points(rows_of({"A": [1.4, 1.8], "B": [1.0, 2.0]}, test))
    assert {r["grid_point"] for r in chosen} == {"B"}


def test_a_point_without_validation_ranks_last_and_a_preset_without_any_keeps_its_first() -> None:
    test = {"A": [1.0, 1.0], "B": [2.0, 2.0]}
    chosen, _ = select_points(rows_of({"A": [1.0, None], "B": [9.0, 9.0]}, test))  # type: ignore[list-item]
    assert {r["grid_point"] for r in chosen} == {"B"}
    chosen, selection = select_points(rows_of({"A": [None, None], "B": [None, None]}, test))  # type: ignore[list-item]
    assert {r["grid_point"] for r in chosen} == {"A"} and selection["selected"][0]["note"]


def test_point_labels_name_every_value() -> None:
    assert point_label({"lr": 0.003, "weight_decay": 1e-06, "cycle": 1.0}) == "lr=0.003,wd=1e-06,cy=1.0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dcy",), "write NAME=V1,V2"),
        (("dcy=",), "write NAME=V1,V2"),
        (("dcy=0.1,x",), "'x' is not a number"),
        (("dcy=-1",), "finite number >= 0"),
        (("dcy=nan",), "finite number >= 0"),
        (("dcy=0.1,0.1",), "gives 0.1 twice"),
        (("dcy=1;dcy=2",), "names 'dcy' twice"),
        (("bogus=1",), "unknown coefficient 'bogus'"),
        ((";",), "names no coefficient"),
        (("", "0,1e-3"), "--grid-lr '0,1e-3': every value must be a finite number > 0"),
        (("", "", "-1e-4"), "--grid-wd '-1e-4': every value must be a finite number >= 0"),
        (("", "", "", "32,0"), "--grid-width '32,0': every value must be a whole number >= 1, got '0'"),
        (("", "", "", "32,1.5"), "every value must be a whole number >= 1, got '1.5'"),
        (("", "", "", "", "3,3"), "--grid-depth '3,3' gives 3 twice"),
        (("", "", "", "²"), "--grid-width '²': every value must be a whole number >= 1"),
    ],
)
def test_bad_grids_are_refused(args: tuple[str, ...], message: str) -> None:
    coefficients, lr, wd, width, depth = (*args, "", "", "", "")[:5]
    with pytest.raises(UserError, match=message):
        parse_grid(coefficients, lr, wd, 3e-3, 1e-6, width, depth)


def test_a_grid_must_fit_the_presets() -> None:
    weights = {"tr": preset("tr").coefficients, "tr+cont": preset("tr+cont").coefficients}
    with pytest.raises(UserError, match=r"varies cy, which none of the presets tr, tr\+cont uses"):
        check_grid(Grid({"cycle": [1.0]}, [1e-3], [0.0]), weights)
    with pytest.raises(UserError, match="switches every loss of cont off"):
        check_grid(Grid({"contrastive": [0.0, 0.1]}, [1e-3], [0.0]), {"cont": preset("cont").coefficients})
    assert parse_grid("", "", "", 3e-3, 1e-6) is None


@pytest.mark.parametrize(
    "option", [("--grid", "dcy=0.1;cy"), ("--grid-lr", "fast"), ("--paper-levels", "0.6,-1")]
)
def test_bad_tuning_options_are_one_line_errors(
    option: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(
            [
                "experiment",
                "semi-supervised",
                str(tmp_path / "nodata"),
                *option,
                "--out",
                str(tmp_path / "exp"),
            ]
        )
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gw: error: {option[0]} ") and "\n" not in err
    assert not (tmp_path / "exp").exists()
