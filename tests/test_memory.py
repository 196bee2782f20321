"""A run that cannot fit in memory is refused before it allocates anything; a normal run never is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from conftest import one_line_error, run_cli
from workspace_fixtures import linear_pair, one_thread  # noqa: F401

from global_workspace.memory import available_bytes, member_parameters, training_bytes
from global_workspace.workspace.direct import DirectTranslators
from global_workspace.workspace.model import GlobalWorkspace
from global_workspace.workspace.settings import WorkspaceConfig

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = ["--domains", "a,b", "--paired", "8", "--steps", "2", "--device", "cpu", "--quiet"]
NEEDS = r"needs at least [\d,.]+ GiB of memory but cpu has [\d,.]+ GiB available"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linear_pair(tmp_path_factory.mktemp("latents") / "data", n=64)


@pytest.mark.parametrize(
    ("options", "fix"),
    [
        (["--ensemble-seeds", "100000", "--batch-size", "100000"], "train fewer --ensemble-seeds"),
        (["--width", "10000000"], "a smaller --width"),
    ],
)
def test_a_run_that_cannot_fit_is_refused_before_anything_is_written(
    data: Path, tmp_path: Path, options: list[str], fix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert run_cli(["train", str(data), *TRAIN, *options, "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert fix in err
    assert re.search(NEEDS, err), err
    assert list(tmp_path.iterdir()) == []  # no config, no run folder, no lock


def test_an_experiment_that_cannot_fit_is_refused_before_its_folder_exists(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exp"
    args = ["experiment", "semi-supervised", str(data), "--domains", "a,b", "--paired", "8", "--seeds", "1"]
    assert (
        run_cli([*args, "--presets", "tr", "--width", "10000000", "--device", "cpu", "--out", str(out)]) == 2
    )
    assert "training ensembles of 1 members of width 10000000" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_attention_refuses_a_grid_that_cannot_fit(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert run_cli(["train", str(data), *TRAIN, "--width", "8", "--depth", "2", "--out", str(run)]) == 0
    exp = tmp_path / "exp"
    args = ["experiment", "attention", str(run), "--out", str(exp), "--device", "cpu", "--quiet"]
    assert run_cli([*args, "--grid-points", "100000000"]) == 2
    assert "choose fewer --grid-points" in one_line_error(capsys)
    assert not exp.exists()


def test_the_default_run_is_far_from_any_machine_s_limit() -> None:
    """`gw train`'s defaults (one member, width 32, batch 2056) on Simple Shapes' latent sizes."""
    config = WorkspaceConfig(domains={"v": 12, "attr": 11, "t": 64})
    assert training_bytes(config, members=1, batch_size=2056) < 2**24
    available = available_bytes(torch.device("cpu"))
    assert available is None or available > 2**24


def _held(model: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if name != "log_logit_scale")


def test_the_parameter_count_is_the_workspace_s_and_about_the_direct_ablation_s() -> None:
    """Exact for the workspace; for two domains the direct translators are sized to match it
    (`direct_width`, within a few percent), for more they hold more."""
    config = WorkspaceConfig(domains={"a": 7, "b": 5}, workspace_dim=4, width=9, depth=3)
    assert member_parameters(config) == _held(GlobalWorkspace(config, [0]))
    assert member_parameters(config) == pytest.approx(_held(DirectTranslators(config, [0])), rel=0.05)
    three = WorkspaceConfig(domains={"a": 7, "b": 5, "c": 3}, workspace_dim=4, width=9, depth=3)
    assert member_parameters(three) < _held(DirectTranslators(three, [0]))
