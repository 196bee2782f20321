"""The no-shared-workspace ablation: sizes, losses, presets, and `gw train` / `gw evaluate` end to end."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from workspace_fixtures import linear_pair, one_thread  # noqa: F401

from global_workspace.cli import main
from global_workspace.domains.latent_loss import LatentLoss
from global_workspace.domains.latents import LatentSpec
from global_workspace.errors import UserError
from global_workspace.workspace.checkpoint import load_model, load_run_model
from global_workspace.workspace.direct import (
    DIRECT_CATEGORIES,
    DirectTask,
    DirectTranslators,
    direct_width,
    path_parameters,
)
from global_workspace.workspace.ensemble import EnsembleLinear
from global_workspace.workspace.families import family_of
from global_workspace.workspace.losses import active_categories
from global_workspace.workspace.model import GlobalWorkspace
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.sampling import Batch
from global_workspace.workspace.settings import WorkspaceConfig

DOMAINS = {"v": 4, "attr": 3}
SPECS = {d: LatentSpec(d, n, LatentLoss()) for d, n in DOMAINS.items()}


pytestmark = pytest.mark.usefixtures("one_thread")


def _member_parameters(module: torch.nn.Module) -> int:
    """Parameters of one ensemble member (every weight has the member dimension first)."""
    return sum(p[0].numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("domains", "width", "depth"),
    [
        ({"v": 12, "attr": 11}, 32, 5),  # the defaults with Simple Shapes' v and attr
        ({"v": 12, "t": 64}, 32, 5),
        ({"a": 6, "b": 5}, 8, 3),
        ({"a": 3, "b": 3}, 4, 1),
        ({"v": 12, "attr": 11, "t": 64}, 64, 3),
    ],
)
def test_translator_has_the_size_of_the_workspace_path(
    domains: dict[str, int], width: int, depth: int
) -> None:
    config = WorkspaceConfig(domains=domains, workspace_dim=12, width=width, depth=depth)
    gw = GlobalWorkspace(config, seeds=[0])
    direct = DirectTranslators(config, seeds=[0])
    for a, b in itertools.permutations(domains, 2):
        path = _member_parameters(gw.encoders[a]) + _member_parameters(gw.decoders[b])
        assert path == path_parameters(config, a, b)
        ours = _member_parameters(direct.translator(a, b))
        assert abs(ours - path) <= 0.1 * path, (a, b, ours, path)
        assert len(direct.translator(a, b).layers) == 2 * depth  # as many layers as E_a then D_b
    if domains == {"v": 12, "attr": 11} and width == 32:  # the figure the docstring states
        assert direct_width(config, "v", "attr") == 30
        assert _member_parameters(direct.translator("v", "attr")) == 8171


def _identity_translators(dim: int, members: int) -> DirectTranslators:
    """Real translators whose weights compute the identity: x = relu(x) - relu(-x) through every layer."""
    config = WorkspaceConfig(domains={"v": dim, "attr": dim}, workspace_dim=dim, width=4 * dim, depth=2)
    model = DirectTranslators(config, seeds=list(range(members)))
    eye = torch.eye(dim)
    with torch.no_grad():
        for a, b in itertools.permutations(config.domains, 2):
            layers = [m for m in model.translator(a, b).layers if isinstance(m, EnsembleLinear)]
            assert layers[0].out_features >= 2 * dim
            for i, layer in enumerate(layers):
                layer.bias.zero_()
                layer.weight.zero_()
                if i == 0:  # x -> (x, -x, 0...)
                    layer.weight[:, :, :dim] = eye
                    layer.weight[:, :, dim : 2 * dim] = -eye
                elif i == len(layers) - 1:  # (p, n, ...) -> p - n
                    layer.weight[:, :dim, :] = eye
                    layer.weight[:, dim : 2 * dim, :] = -eye
                else:
                    layer.weight[:, : 2 * dim, : 2 * dim] = torch.eye(2 * dim)
    return model


def test_identity_translators_give_zero_loss() -> None:
    model = _identity_translators(dim=3, members=2)
    gen = torch.Generator().manual_seed(0)
    shared = torch.randn(2, 10, 3, generator=gen)
    batch = Batch(latents={"v": shared, "attr": shared.clone()}, paired_rows=6)
    specs = {d: LatentSpec(d, 3, LatentLoss()) for d in ("v", "attr")}
    terms, report = DirectTask(specs).loss(model, batch)
    assert set(terms) == {
        "translation/v_to_attr",
        "translation/attr_to_v",
        "cycle/v_through_attr",
        "cycle/attr_through_v",
    }
    assert report == {}
    for name, value in terms.items():
        assert value.shape == (2,)
        assert value.abs().max().item() < 1e-10, name


@pytest.mark.parametrize("name", ["direct-tr", "direct-tr+cy"])
def test_direct_presets_switch_exactly_their_terms_on(name: str) -> None:
    member = MemberSpec.from_preset(name, seed=0, paired=5)
    assert family_of([member]).name == "direct" and not family_of([member]).shared_space
    model = DirectTranslators(WorkspaceConfig(domains=DOMAINS, width=8, depth=2), seeds=[0, 1])
    gen = torch.Generator().manual_seed(1)
    batch = Batch({d: torch.randn(2, 12, n, generator=gen) for d, n in DOMAINS.items()}, paired_rows=5)
    terms, _ = DirectTask(SPECS, active_categories([member])).loss(model, batch)
    on = {c for c, w in member.coefficients.items() if w > 0}
    assert on == ({"translation"} if name == "direct-tr" else {"translation", "cycle"})
    assert {t.split("/")[0] for t in terms} == on
    assert len(terms) == 2 * len(on)  # both directions of each category, nothing else


def test_partial_batches_and_what_the_task_refuses() -> None:
    model = DirectTranslators(WorkspaceConfig(domains=DOMAINS, width=8, depth=2), seeds=[0])
    task = DirectTask(SPECS)
    x = {d: torch.randn(1, 9, n) for d, n in DOMAINS.items()}
    assert set(task.loss(model, Batch(x, 9))[0]) == {"translation/v_to_attr", "translation/attr_to_v"}
    assert set(task.loss(model, Batch(x, 0))[0]) == {"cycle/v_through_attr", "cycle/attr_through_v"}
    assert task.loss(model, Batch({"v": x["v"]}, paired_rows=0))[0] == {}  # one domain: nothing to translate
    with pytest.raises(UserError, match="no shared space"):
        DirectTask(SPECS, {"translation", "demi_cycle"})
    assert DIRECT_CATEGORIES == ("translation", "cycle")


def test_ensemble_member_is_initialised_like_a_solo_model() -> None:
    config = WorkspaceConfig(domains=DOMAINS, width=8, depth=2)
    both = DirectTranslators(config, seeds=[3, 5]).state_dict()
    solo = DirectTranslators(config, seeds=[5]).state_dict()
    for key, value in solo.items():
        torch.testing.assert_close(both[key][1], value[0], msg=key)


SMALL = ["--steps", "6", "--batch-size", "32", "--width", "8", "--depth", "2", "--eval-every", "3", "--quiet"]


@pytest.mark.parametrize("preset", ["direct-tr", "direct-tr+cy"])
def test_gw_train_and_evaluate_direct_presets(preset: str, tmp_path: Path) -> None:
    data = linear_pair(tmp_path / "data", n=120, sizes={"train": 120, "val": 40, "test": 40})
    run = tmp_path / "run"
    args = ["train", data, "--domains", "a,b", "--preset", preset, "--paired", 30, "--ensemble-seeds", 2]
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in [*args, "--out", run, "--device", "cpu", *SMALL]])
    assert done.value.code == 0
    header = (run / "train.csv").read_text().splitlines()[0].split(",")
    cycles = {"cycle/a_through_b", "cycle/b_through_a"}
    assert {"translation/a_to_b", "translation/b_to_a"} <= set(header)
    assert (cycles <= set(header)) == (preset == "direct-tr+cy")
    assert not any(h.startswith(("demi_cycle", "contrastive")) for h in header)

    with pytest.raises(SystemExit) as done:
        main(["evaluate", str(run), "--device", "cpu"])
    assert done.value.code == 0
    out = json.loads((run / "metrics.json").read_text())
    na = set(out["not_applicable"])
    assert na == {"demi_cycle/a/latent_mse", "demi_cycle/b/latent_mse"} | {
        f"retrieval/{x}_to_{y}/{m}" for x, y in (("a", "b"), ("b", "a")) for m in ("top1", "mrr")
    }
    for member in out["members"]:
        metrics = member["metrics"]
        for name in (
            "translation/a_to_b/latent_mse",
            "translation/b_to_a/latent_mse",
            *(f"{c}/latent_mse" for c in cycles),
        ):
            assert math.isfinite(metrics[name]) and metrics[name] > 0, name
        for name in na:
            assert metrics[name] is None, name  # null, never zero

    config, model, step = load_run_model(run, torch.device("cpu"))
    assert isinstance(model, DirectTranslators) and step == 6 and config.members[0].preset == preset
    with pytest.raises(
        UserError, match=r"direct translators \(the ablation\), not a global workspace.*gw evaluate"
    ):
        load_model(run, torch.device("cpu"))
