"""`gw train` / `gw evaluate` end to end on synthetic latents, bad input, and the semi-supervised claim."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tree_bytes
from workspace_fixtures import linear_pair, one_thread, write_domain  # noqa: F401

from global_workspace.cli import main
from global_workspace.workspace.checkpoint import load_model
from global_workspace.workspace.data import load_latent_data
from global_workspace.workspace.evaluate import latent_metrics
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.run import make_config, train_workspace
from global_workspace.workspace.settings import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linear_pair(tmp_path_factory.mktemp("latents") / "data", n=300)


SMALL = ["--steps", "6", "--batch-size", "32", "--width", "8", "--depth", "2", "--eval-every", "3", "--quiet"]


def _exit_code(*args: object) -> object:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code


def _gw(*args: object) -> None:
    assert _exit_code(*args) == 0


def _error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    assert _exit_code(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gw: error:") and "\n" not in err
    return err


def test_train_then_evaluate(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--domains", "a,b", "--preset", "tr+cont", "--paired", 40, "--ensemble-seeds", 2, "--out", run]
    _gw("train", data, *args, "--device", "cpu", *SMALL)
    config = json.loads((run / "config.json").read_text())
    assert [m["seed"] for m in config["members"]] == [0, 1]
    assert (run / "command.txt").read_text().startswith("gw ")
    header = (run / "train.csv").read_text().splitlines()[0].split(",")
    assert {"translation/a_to_b", "translation/b_to_a", "contrastive/a_b"} <= set(header)
    assert not any(h.startswith(("cycle", "demi_cycle")) for h in header)
    _gw("evaluate", run, "--device", "cpu")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and len(metrics["members"]) == 2
    names = set(metrics["members"][0]["metrics"])
    for expected in (
        "translation/a_to_b/latent_mse",
        "translation/b_to_a/latent_mse",
        "retrieval/a_to_b/top1",
        "retrieval/b_to_a/mrr",
        "demi_cycle/a/latent_mse",
        "cycle/b_through_a/latent_mse",
    ):
        assert expected in names


def test_coef_edits_the_weights_of_a_preset_and_keeps_its_model(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["--domains", "a,b", "--paired", 40, "--out", run, "--device", "cpu", *SMALL]
    _gw("train", data, *args, "--preset", "fusion", "--coef", "cy=0,bt=0.1")
    (member,) = json.loads((run / "config.json").read_text())["members"]
    assert member["preset"] == "fusion"
    assert member["coefficients"]["cycle"] == 0 and member["coefficients"]["back_translation"] == 0.1
    assert member["coefficients"]["fused"] == 0.1  # the rest is fusion's
    header = (run / "train.csv").read_text().splitlines()[0].split(",")
    assert "back_translation/unpaired/a_to_a" in header and "fused/paired/a+b_to_a" in header
    assert not any(h.startswith("cycle/") for h in header)
    _gw("evaluate", run)  # reloads it as a fusion model
    assert any(
        k.startswith("fusion/")
        for k in json.loads((run / "metrics.json").read_text())["members"][0]["metrics"]
    )
    assert "bad coefficient 'fused=1'" in _error(
        capsys, "train", data, *args, "--force", "--preset", "full", "--coef", "fused=1"
    )


def test_bad_input_is_one_line(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    base = ["train", data, "--out", out, "--device", "cpu", *SMALL]
    assert "unknown domain 'w'" in _error(capsys, *base, "--domains", "a,w", "--paired", 5)
    assert "gw pretrain" in _error(capsys, *base, "--domains", "a,w", "--paired", 5)
    missing = ["train", tmp_path / "no_data", "--out", out, "--domains", "a,b", "--paired", 5]
    assert "does not exist; create it with `gw data" in _error(capsys, *missing)
    assert "unknown preset" in _error(capsys, *base, "--domains", "a,b", "--preset", "tr+full", "--paired", 5)
    assert "bad coefficient" in _error(
        capsys, *base, "--domains", "a,b", "--coef", "tr=1,xx=2", "--paired", 5
    )
    assert "train split has 300" in _error(capsys, *base, "--domains", "a,b", "--paired", 301)
    assert "needs paired examples" in _error(
        capsys, *base, "--domains", "a,b", "--preset", "tr", "--paired", 0
    )
    assert "at least two domains" in _error(capsys, *base, "--domains", "a", "--paired", 5)
    assert not out.exists()
    keep = tmp_path / "keep"
    (keep / "file.txt").parent.mkdir()
    (keep / "file.txt").write_text("precious")
    args = [
        "train",
        data,
        "--out",
        keep,
        "--device",
        "cpu",
        "--domains",
        "a,b",
        "--paired",
        5,
        "--force",
        *SMALL,
    ]
    assert "not a run folder" in _error(capsys, *args)
    assert (keep / "file.txt").read_text() == "precious"
    # Presets without a paired term train with --paired 0.
    _gw(*base, "--domains", "a,b", "--coef", "dcy=1,cy=1", "--paired", 0)
    assert "already exists" in _error(capsys, *base, "--domains", "a,b", "--preset", "tr", "--paired", 5)
    assert "another configuration" in _error(
        capsys, *base, "--domains", "a,b", "--preset", "tr", "--paired", 5, "--resume"
    )
    _gw(*base, "--domains", "a,b", "--coef", "dcy=1,cy=1", "--paired", 0, "--resume")


@pytest.mark.parametrize("out", ["data", "data/domains/a", "."])
def test_force_never_deletes_the_dataset_it_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    """RUN is DATA, lies inside it (a domain folder has a config.json too) or holds it: refused."""
    data = linear_pair(tmp_path / "data", n=100)
    before = tree_bytes(tmp_path)
    args = ["train", data, "--out", tmp_path / out, "--device", "cpu", "--domains", "a,b", "--paired", 5]
    assert "that this command reads" in _error(capsys, *args, *SMALL, "--force")
    assert tree_bytes(tmp_path) == before


@pytest.mark.parametrize("command", ["train", "experiment"])
def test_force_onto_a_link_replaces_the_link_not_what_it_points_to(
    data: Path, tmp_path: Path, command: str
) -> None:
    """It was a traceback (rmtree refuses a link); the folder linked to must survive either way."""
    target = tmp_path / "kept"
    train = ["--device", "cpu", "--domains", "a,b", "--paired", 5]
    if command == "train":
        args: list[object] = ["train", data, *train, *SMALL]
    else:
        args = ["experiment", "semi-supervised", data, *train, "--presets", "tr", "--seeds", 1, "--steps", 2,
                "--quiet"]  # fmt: skip
    _gw(*args, "--out", target)
    before = tree_bytes(target)
    link = tmp_path / "link"
    link.symlink_to(target)
    _gw(*args, "--out", link, "--force")
    assert not link.is_symlink() and link.is_dir()
    assert tree_bytes(target) == before


def test_missing_latents_say_to_pretrain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    write_domain(root, "a", {"train": np.zeros((20, 3))})
    write_domain(root, "b", {"train": np.zeros((20, 2)), "val": np.zeros((5, 2))})
    err = _error(capsys, "train", root, "--domains", "a,b", "--paired", 5, "--out", tmp_path / "r", *SMALL)
    assert "latents" in err and "gw pretrain" in err
    assert "does not exist" in _error(capsys, "evaluate", tmp_path / "nothing")


def test_full_with_50_pairs_translates_better_than_tr(tmp_path: Path) -> None:
    """b = a W: unpaired data + demi-cycles and cycles help when pairs are scarce."""
    data = linear_pair(tmp_path / "data", n=1000)
    members = [MemberSpec.from_preset(p, seed=s, paired=50) for p in ("tr", "full") for s in (0, 1)]
    train = TrainConfig(steps=300, batch_size=128, eval_every=0, log_every=300)
    config = make_config(data, ["a", "b"], members, train, width=32, depth=3)
    train_workspace(config, tmp_path / "run", "cpu", progress=False, tensorboard=False)
    _, model, _ = load_model(tmp_path / "run", torch.device("cpu"))
    val = load_latent_data(data, ["a", "b"], torch.device("cpu"), splits=("val",)).split("val")
    metrics = latent_metrics(model, val)
    error = metrics["translation/a_to_b/latent_mse"] + metrics["translation/b_to_a/latent_mse"]
    tr, full = error[:2].mean().item(), error[2:].mean().item()
    assert full < 0.85 * tr, (tr, full)


@pytest.mark.parametrize(
    ("config", "words"),
    [([1, 2], "not a JSON object"), ({"format_version": 1, "loss": {}}, "latent_dim")],
)
def test_a_malformed_domain_config_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: object, words: str
) -> None:
    root = linear_pair(tmp_path / "data", n=40)
    (root / "domains" / "b" / "config.json").write_text(json.dumps(config))
    err = _error(capsys, "train", root, "--domains", "a,b", "--paired", 5, "--out", tmp_path / "r", *SMALL)
    assert words in err and "config.json" in err and f"gw pretrain {root} --domains b --force" in err
    assert not (tmp_path / "r").exists()


def test_evaluate_names_the_splits_of_the_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from global_workspace.data.format import DatasetInfo, write_info

    root = linear_pair(tmp_path / "data", n=40)
    run = tmp_path / "run"
    _gw("train", root, "--domains", "a,b", "--paired", 5, "--out", run, "--device", "cpu", *SMALL)
    err = _error(capsys, "evaluate", run, "--split", "nope", "--device", "cpu")
    assert "--split 'nope'" in err and "choose one of test, train, val" in err and "pretrain" not in err
    info = DatasetInfo("shapes", 0, 32, {"train": 40, "val": 200, "test": 200, "holdout": 9}, ["c"])
    write_info(root, info)
    assert "choose one of holdout, test, train, val" in _error(capsys, "evaluate", run, "--split", "nope")
    assert not list(run.glob("metrics*.json"))
