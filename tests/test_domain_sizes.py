"""Per-domain sizes: one domain's encoder and decoder wider or deeper than the others'
(`WorkspaceConfig.domain_width`/`domain_depth`, `--domain-width`, `--domain-depth`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from conftest import one_line_error, run_cli
from workspace_fixtures import linear_pair, one_thread  # noqa: F401

from global_workspace.errors import UserError
from global_workspace.experiments.grid import parse_grid
from global_workspace.memory import member_parameters
from global_workspace.workspace.checkpoint import load_model
from global_workspace.workspace.direct import DirectTranslators, path_parameters
from global_workspace.workspace.model import GlobalWorkspace
from global_workspace.workspace.settings import WorkspaceConfig, parse_domain_sizes

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = WorkspaceConfig(domains={"a": 6, "b": 5, "c": 3}, workspace_dim=4, width=8, depth=2)
OWN = dataclasses.replace(BASE, domain_width={"b": 16}, domain_depth={"b": 3})


def _shapes(config: WorkspaceConfig) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in GlobalWorkspace(config, [0, 1]).state_dict().items()}


def test_an_override_resizes_exactly_that_domain_s_encoder_and_decoder() -> None:
    before, after = _shapes(BASE), _shapes(OWN)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed and all(k.startswith(("encoders.b.", "decoders.b.")) for k in changed)
    model = GlobalWorkspace(OWN, [0])
    for net in (model.encoders["b"], model.decoders["b"]):
        assert len(net.layers) == 3 and net.layers[0].weight.shape[-1] == 16  # type: ignore[index, arg-type]
    assert model.encoders["a"].layers[0].weight.shape[-1] == 8  # type: ignore[index]
    held = sum(p.numel() for name, p in model.named_parameters() if name != "log_logit_scale")
    assert member_parameters(OWN) == held
    # The direct ablation's translator b -> a has as many layers as E_b then D_a, and about their size.
    direct = DirectTranslators(OWN, [0]).translator("b", "a")
    assert len(direct.layers) == 3 + 2
    assert sum(p.numel() for p in direct.parameters()) == pytest.approx(
        path_parameters(OWN, "b", "a"), rel=0.1
    )


def test_per_domain_sizes_are_stored_only_when_set() -> None:
    assert "domain_width" not in BASE.to_json() and "domain_depth" not in BASE.to_json()
    assert WorkspaceConfig.from_json(BASE.to_json()) == BASE
    assert OWN.to_json()["domain_width"] == {"b": 16}
    assert WorkspaceConfig.from_json(json.loads(json.dumps(OWN.to_json()))) == OWN
    assert (OWN.width_of("a"), OWN.width_of("b"), OWN.depth_of("c"), OWN.depth_of("b")) == (8, 16, 2, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=", "write DOMAIN=SIZE,DOMAIN=SIZE"),
        ("a", "write DOMAIN=SIZE,DOMAIN=SIZE"),
        ("=3", "write DOMAIN=SIZE,DOMAIN=SIZE"),
        ("a=abc", "a's size must be a whole number >= 1, got 'abc'"),
        ("a=1.5", "a's size must be a whole number >= 1, got '1.5'"),
        ("a=0", "gives a size 0; every size must be a whole number >= 1"),
        ("x=3", "names domain 'x', which is not one of the workspace's \\(a, b\\)"),
        ("a=1,a=2", "names 'a' twice"),
    ],
)
def test_bad_domain_sizes_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_domain_sizes("--domain-width", text, ["a", "b"])


def test_a_workspace_refuses_sizes_of_a_domain_it_lacks_or_below_one() -> None:
    with pytest.raises(UserError, match="domain_width names domain 'x'"):
        dataclasses.replace(BASE, domain_width={"x": 4})
    with pytest.raises(UserError, match="domain_depth gives a size 0"):
        dataclasses.replace(BASE, domain_depth={"a": 0})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=4/", "has an empty point"),
        ("a=4//b=8", "has an empty point"),
        ("a=4/a=4", "gives a=4 twice"),
        ("a=4/x=8", "names domain 'x'"),
        ("a=4/a=", "write DOMAIN=SIZE"),
    ],
)
def test_bad_domain_grids_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserError, match=f"--grid-domain-depth {text!r}.*{message}"):
        parse_grid("", "", "", 3e-3, 1e-6, domain_depth=text, domains=["a", "b"])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linear_pair(tmp_path_factory.mktemp("latents") / "data", n=64)


TRAIN = ["--domains", "a,b", "--paired", "8", "--steps", "2", "--batch-size", "16", "--device", "cpu"]
EXPERIMENT = ["experiment", "semi-supervised", "--domains", "a,b"]


def test_gw_train_builds_and_reloads_each_domain_at_its_own_size(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    sizes = ["--width", "8", "--depth", "2", "--domain-width", "b=12", "--domain-depth", "a=3"]
    assert run_cli(["train", str(data), *TRAIN, "--quiet", *sizes, "--out", str(run)]) == 0
    config, model, _ = load_model(run, torch.device("cpu"))
    assert (config.workspace.domain_width, config.workspace.domain_depth) == ({"b": 12}, {"a": 3})
    assert [len(model.encoders[d].layers) for d in "ab"] == [3, 2]  # type: ignore[arg-type]
    assert [model.decoders[d].layers[0].weight.shape[-1] for d in "ab"] == [8, 12]  # type: ignore[index]
    plain = tmp_path / "plain"
    assert run_cli(["train", str(data), *TRAIN, "--quiet", "--out", str(plain)]) == 0
    assert "domain_width" not in json.loads((plain / "config.json").read_text())["workspace"]


@pytest.mark.parametrize(
    ("command", "option", "message"),
    [
        (["train", *TRAIN], ["--domain-width", "x=3"], "--domain-width 'x=3' names domain 'x'"),
        (["train", *TRAIN], ["--domain-depth", "a="], "--domain-depth 'a=': write DOMAIN=SIZE"),
        (EXPERIMENT, ["--domain-width", "a=abc"], "--domain-width 'a=abc': a's size must be a whole"),
        (EXPERIMENT, ["--grid-domain-width", "a=4/"], "--grid-domain-width 'a=4/' has an empty point"),
    ],
)
def test_bad_sizes_on_the_command_line_are_one_line_errors(
    data: Path,
    tmp_path: Path,
    command: list[str],
    option: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    assert run_cli([command[0], *command[1:2], str(data), *command[2:], *option, "--out", str(out)]) == 2
    assert message in one_line_error(capsys)
    assert not out.exists()
