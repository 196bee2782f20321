"""NaN and infinity in inputs are refused on load, and a non-finite metric never reaches a result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from workspace_fixtures import gw_error, linear_pair, one_thread  # noqa: F401

from global_workspace.cli import main
from global_workspace.data.format import load_dataset
from global_workspace.domains.latents import load_latents
from global_workspace.domains.nets import load_weights, save_weights
from global_workspace.errors import UserError
from global_workspace.experiments.runner import SemiSupervisedOptions, run_semi_supervised
from global_workspace.experiments.semi_supervised.config import ExperimentConfig
from global_workspace.experiments.semi_supervised.run import train_chunk
from global_workspace.finite import require_finite_rows
from global_workspace.loading import load_workspace
from global_workspace.workspace.checkpoint import current_checkpoint
from global_workspace.workspace.data import load_latent_data
from global_workspace.workspace.evaluate import write_metrics
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.settings import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["--steps", "6", "--batch-size", "32", "--width", "8", "--depth", "2", "--eval-every", "3", "--quiet"]


def _train(data: Path, run: Path) -> None:
    args = ["train", data, "--domains", "a,b", "--preset", "tr", "--paired", 40, "--ensemble-seeds", 2]
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in [*args, "--out", run, "--device", "cpu", *SMALL]])
    assert exc.value.code in (0, None)


def _poison_npy(file: Path, value: float, row: int = 3) -> None:
    array = np.load(file)
    array[row, 0] = value
    np.save(file, array)


@pytest.mark.parametrize("split", ["train", "val", "test"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_latents_are_refused_naming_the_file(tmp_path: Path, split: str, value: float) -> None:
    data = linear_pair(tmp_path / "data", n=50)
    file = data / "domains/b/latents" / f"{split}.npy"
    _poison_npy(file, value)
    with pytest.raises(UserError, match=rf"{file}.*NaN or infinite.*row 3.*gw pretrain"):
        load_latents(data, "b", split)


def test_train_and_evaluate_refuse_nan_latents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = linear_pair(tmp_path / "data", n=300)
    run = tmp_path / "run"
    _train(data, run)
    test = data / "domains/a/latents/test.npy"
    _poison_npy(test, float("nan"))
    assert str(test) in gw_error(capsys, "evaluate", run, "--device", "cpu")
    assert not (run / "metrics.json").exists()
    val = data / "domains/b/latents/val.npy"
    _poison_npy(val, float("inf"))
    other = tmp_path / "other"
    base = ["train", data, "--domains", "a,b", "--preset", "tr", "--paired", 40, "--out", other]
    assert str(val) in gw_error(capsys, *base, "--device", "cpu", *SMALL)
    assert not other.exists()


def test_nonfinite_labels_are_refused_naming_the_file(tiny_shapes: Path, tmp_path: Path) -> None:
    data = tmp_path / "shapes"
    shutil.copytree(tiny_shapes, data)
    labels = data / "val" / "labels.npy"
    _poison_npy(labels, float("nan"), row=5)
    with pytest.raises(UserError, match=rf"{labels}.*NaN or infinite.*row 5.*regenerate"):
        load_dataset(data)


def test_nonfinite_specialist_weights_are_refused(tmp_path: Path) -> None:
    net = nn.Linear(3, 2)
    save_weights(net, tmp_path)
    file = tmp_path / "weights.safetensors"
    state = load_file(file)
    state["bias"][1] = float("nan")
    save_file(state, file)
    with pytest.raises(UserError, match=rf"{file}.*NaN or infinite.*bias.*gw pretrain"):
        load_weights(nn.Linear(3, 2), tmp_path, "domain 'v'")


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = linear_pair(tmp_path / "data", n=300)
    run = tmp_path / "run"
    _train(data, run)
    file = current_checkpoint(run) / "model.safetensors"
    weights = load_file(file)
    name = sorted(weights)[0]
    weights[name].view(-1)[0] = float("nan")
    save_file(weights, file)
    err = gw_error(capsys, "evaluate", run, "--device", "cpu")
    assert str(file) in err and name in err and "NaN or infinite" in err
    assert not (run / "metrics.json").exists()
    assert str(file) in gw_error(capsys, "translate", run, "--from", "a", "--to", "b")


def test_a_nonfinite_metric_is_an_error_naming_metric_and_member(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    specs = [MemberSpec.from_preset("tr", seed=s, paired=4).to_json() for s in (0, 1)]
    metrics = {
        "retrieval/a_to_b/mrr": torch.tensor([0.5, float("inf")]),
        "translation/a_to_b/latent_mse": torch.tensor([0.1, 0.2]),
    }
    with pytest.raises(UserError, match=r"retrieval/a_to_b/mrr of member 1 \(tr/paired=4/seed=1\) is inf"):
        write_metrics(out, "test", specs, metrics)
    assert not out.exists()


def _experiment(data: Path, out: Path) -> SemiSupervisedOptions:
    return SemiSupervisedOptions(
        data=data, domains="a,b", paired="8", presets="tr", seeds=2, out=out, steps=10, batch_size=16,
        eval_every=5, device="cpu", progress=False,
    )  # fmt: skip


def test_nan_in_a_chunks_weights_or_metrics_is_refused(tmp_path: Path) -> None:
    data = linear_pair(tmp_path / "data", n=100)
    exp = tmp_path / "exp"
    assert run_semi_supervised(_experiment(data, exp)) is not None
    (chunk,) = (exp / "chunks").iterdir()
    weights = load_file(chunk / "model.safetensors")
    weights[sorted(weights)[0]][1] = float("nan")  # member 1's copy of the first weight
    save_file(weights, chunk / "model.safetensors")
    with pytest.raises(UserError, match=rf"{chunk / 'model.safetensors'} holds NaN.*delete {chunk}"):
        load_workspace(exp, member="tr/paired=8/seed=1")
    metrics = json.loads((chunk / "metrics.json").read_text())
    metrics["members"][1]["translation/a_to_b/latent_mse"] = float("nan")
    (chunk / "metrics.json").write_text(json.dumps(metrics))
    (exp / "results.csv").unlink()
    pattern = rf"{chunk / 'metrics.json'}: translation/a_to_b/latent_mse of member tr/paired=8/seed=1"
    with pytest.raises(UserError, match=rf"{pattern} is nan.*delete {chunk}"):
        run_semi_supervised(_experiment(data, exp))
    assert not (exp / "results.csv").exists()
    metrics["members"][1]["translation/a_to_b/latent_mse"] = 1.0
    metrics["members"][1]["kept_step"] = float("nan")
    (chunk / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(UserError, match=r"kept_step of member tr/paired=8/seed=1 is nan"):
        run_semi_supervised(_experiment(data, exp))


def test_an_experiment_refuses_a_nan_validation(tmp_path: Path) -> None:
    """A member whose validation loss is NaN never beats the best so far: without a check it would
    keep its untrained weights while claiming the last step."""
    data = load_latent_data(linear_pair(tmp_path / "data", n=100), ["a", "b"], torch.device("cpu"))
    data.splits["val"]["b"][:] = float("nan")
    members = [MemberSpec.from_preset("tr", seed=s, paired=8) for s in (0, 1)]
    config = ExperimentConfig(
        data=str(data.path), domains=["a", "b"], presets=["tr"], paired=[8], seeds=[0, 1],
        train=TrainConfig(steps=10, batch_size=16, eval_every=5),
    )  # fmt: skip
    with pytest.raises(UserError, match=r"member tr/paired=8/seed=0: .*validation.* nan at step 5"):
        train_chunk(data, members, config, None, (), progress=False)


@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_the_first_bad_row_is_named_and_an_empty_array_passes(kind: str) -> None:
    def made(array: np.ndarray) -> np.ndarray | torch.Tensor:
        return torch.from_numpy(array) if kind == "tensor" else array

    require_finite_rows(made(np.zeros((0, 3))), "nothing", "")
    spoiled = np.zeros((4, 2, 2))
    spoiled[2, 1, 0] = np.inf
    with pytest.raises(UserError, match=r"latents holds NaN or infinite values \(first in row 2\)"):
        require_finite_rows(made(spoiled), "latents", "fix them")
