"""The workspace losses: names, presence rules, exact values on known models, contrastive parity."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from workspace_fixtures import assert_back_translation_spares_the_way_out, one_thread  # noqa: F401

from global_workspace.domains.latent_loss import LatentLoss
from global_workspace.domains.latents import LatentSpec
from global_workspace.workspace.evaluate import _ranks
from global_workspace.workspace.losses import GWTask, active_categories, contrastive_loss
from global_workspace.workspace.model import GlobalWorkspace
from global_workspace.workspace.presets import GW_CATEGORIES, PRESETS, MemberSpec
from global_workspace.workspace.sampling import Batch
from global_workspace.workspace.settings import WorkspaceConfig

pytestmark = pytest.mark.usefixtures("one_thread")

DOMAINS = {"v": 4, "attr": 3}
SPECS = {d: LatentSpec(d, n, LatentLoss()) for d, n in DOMAINS.items()}


class IdentityWorkspace(GlobalWorkspace):
    """Encoders are the identity, decoders invert tanh: D(tanh(E(u))) = u exactly."""

    def encode(self, domain: str, latent: torch.Tensor) -> torch.Tensor:
        return self._members_first(latent)

    def decode(self, domain: str, state: torch.Tensor) -> torch.Tensor:
        return torch.atanh(self._members_first(state))


def _batch(k: int, paired: int, unpaired: int, domains: dict[str, int] = DOMAINS, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch(
        latents={d: torch.randn(k, paired + unpaired, n, generator=gen) for d, n in domains.items()},
        paired_rows=paired,
    )


def _model(k: int = 2, domains: dict[str, int] = DOMAINS) -> GlobalWorkspace:
    return GlobalWorkspace(WorkspaceConfig(domains=domains, width=8, depth=3), seeds=list(range(k)))


ALL_TERMS = {
    "translation/v_to_attr",
    "translation/attr_to_v",
    "demi_cycle/v",
    "demi_cycle/attr",
    "cycle/v_through_attr",
    "cycle/attr_through_v",
    "contrastive/v_attr",
}


def test_identity_workspace_has_zero_translation_and_cycle_losses() -> None:
    # Same latent in both domains (sizes match), so translation is the identity too.
    same = {"v": 3, "attr": 3}
    model = IdentityWorkspace(WorkspaceConfig(domains=same, width=4, depth=1), seeds=[0, 1])
    gen = torch.Generator().manual_seed(0)
    shared = torch.randn(2, 10, 3, generator=gen).clamp(-2, 2)
    batch = Batch(latents={"v": shared, "attr": shared.clone()}, paired_rows=6)
    specs = {d: LatentSpec(d, 3, LatentLoss()) for d in same}
    terms, _ = GWTask(specs).loss(model, batch)
    assert set(terms) == ALL_TERMS
    for name, value in terms.items():
        assert value.shape == (2,)
        if not name.startswith("contrastive"):
            assert value.abs().max().item() < 1e-10, name


@pytest.mark.parametrize(
    ("paired", "unpaired", "domains", "expected"),
    [
        (5, 7, DOMAINS, ALL_TERMS),
        (5, 0, DOMAINS, {"translation/v_to_attr", "translation/attr_to_v", "contrastive/v_attr"}),
        (0, 7, DOMAINS, {t for t in ALL_TERMS if t.split("/")[0] in ("demi_cycle", "cycle")}),
        (0, 7, {"v": 4}, {"demi_cycle/v"}),
        (5, 7, {"v": 4}, {"demi_cycle/v"}),
    ],
)
def test_terms_present_exactly_when_computable(
    paired: int, unpaired: int, domains: dict[str, int], expected: set[str]
) -> None:
    terms, _ = GWTask(SPECS).loss(_model(), _batch(2, paired, unpaired, domains))
    assert set(terms) == expected
    assert all(v.shape == (2,) and torch.isfinite(v).all() for v in terms.values())


def test_mixed_batch_keeps_every_term_of_its_groups() -> None:
    """Paired and unpaired rows in one batch give the terms of each group alone, same values."""
    model, task = _model(), GWTask(SPECS)
    mixed = _batch(2, 5, 7)
    paired_only = Batch({d: x[:, :5] for d, x in mixed.latents.items()}, paired_rows=5)
    unpaired_only = Batch({d: x[:, 5:] for d, x in mixed.latents.items()}, paired_rows=0)
    terms, _ = task.loss(model, mixed)
    alone = {**task.loss(model, paired_only)[0], **task.loss(model, unpaired_only)[0]}
    assert set(terms) == set(alone) == ALL_TERMS
    for name in terms:
        torch.testing.assert_close(terms[name], alone[name], msg=name)


@pytest.mark.parametrize("name", ["tr", "tr+cont", "tr+cy", "tr+dcy", "cont", "full", "full-bt"])
def test_presets_switch_exactly_their_terms_on(name: str) -> None:
    member = MemberSpec.from_preset(name, seed=0, paired=5)
    task = GWTask(SPECS, active_categories([member]))
    terms, report = task.loss(_model(), _batch(2, 5, 7))
    on = {c for c, w in member.coefficients.items() if w > 0}
    assert {t.split("/")[0] for t in terms} == on
    assert ("contrastive/logit_scale" in report) == ("contrastive" in on)


def test_each_domain_is_scored_with_its_own_latent_loss() -> None:
    specs = {"v": SPECS["v"], "attr": LatentSpec("attr", 3, LatentLoss(categorical=2))}
    model, batch = _model(), _batch(2, 5, 0)
    terms, _ = GWTask(specs, {"translation"}).loss(model, batch)
    pred = model.translate("v", "attr", batch.latents["v"])
    expected = LatentLoss(categorical=2)(pred, batch.latents["attr"]).mean(dim=1)
    torch.testing.assert_close(terms["translation/v_to_attr"], expected)


def _clip_reference(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = scale * a @ b.T
    target = torch.arange(a.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def test_contrastive_matches_clip_forward_and_backward_with_padding() -> None:
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(3, 9, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 9, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([1 / 0.07, 2.0, 40.0], dtype=torch.float64)
    count = [9, 4, 1]
    weight = (torch.arange(9).unsqueeze(0) < torch.tensor(count).unsqueeze(1)).double()
    ours = contrastive_loss(a, b, scale, weight)
    ref = torch.stack(
        [_clip_reference(a[k, : count[k]], b[k, : count[k]], float(scale[k])) for k in range(3)]
    )
    torch.testing.assert_close(ours, ref)
    for x, y in zip(
        torch.autograd.grad(ours.sum(), (a, b)), torch.autograd.grad(ref.sum(), (a, b)), strict=True
    ):
        torch.testing.assert_close(x, y)
    assert ours[2].item() == pytest.approx(0.0)  # one pair: nothing to contrast with


def test_logit_scale_starts_at_clip_value_and_trains_only_when_asked() -> None:
    model = _model()
    torch.testing.assert_close(model.logit_scale(), torch.full((2,), 1 / 0.07))
    fixed = GWTask(SPECS).parameters(model)
    learned = GWTask(SPECS, learn_logit_scale=True).parameters(model)
    assert len(learned) == len(fixed) + 1
    with torch.no_grad():
        model.log_logit_scale.fill_(math.log(1000.0))
    assert model.logit_scale().max().item() == pytest.approx(100.0)


def test_the_six_presets_of_the_slides() -> None:
    assert {"tr", "tr+cont", "tr+cy", "tr+dcy", "cont", "full"} <= set(PRESETS)
    assert PRESETS["full"].coefficients == {
        "translation": 1.0,
        "contrastive": 0.1,
        "demi_cycle": 0.1,
        "cycle": 0.1,
    }


def test_every_category_is_known() -> None:
    assert set(GW_CATEGORIES) == {"translation", "contrastive", "demi_cycle", "cycle"}
    with pytest.raises(ValueError):
        GWTask(SPECS, {"broadcast"})


def test_back_translation_is_a_cycle_whose_way_out_learns_nothing() -> None:
    """Same value as the cycle; its gradient reaches the way back (E_v, D_attr for attr through v)
    and never the way out (E_attr, D_v), which could otherwise hide attr in v's latent."""
    model = _model()
    terms, _ = GWTask(SPECS, {"cycle", "back_translation"}).loss(model, _batch(2, 0, 7))
    assert {n for n in terms if n.startswith("back_translation/")} == {
        "back_translation/v_through_attr",
        "back_translation/attr_through_v",
    }
    way_out = [*model.encoders["attr"].parameters(), *model.decoders["v"].parameters()]
    way_back = [*model.encoders["v"].parameters(), *model.decoders["attr"].parameters()]
    assert_back_translation_spares_the_way_out(terms, "cycle/attr_through_v", way_out, way_back)


def test_gradients_reach_only_the_members_own_weights() -> None:
    model, task = _model(k=3), GWTask(SPECS)
    terms, _ = task.loss(model, _batch(3, 5, 7))
    loss = sum(t[1] for t in terms.values())
    assert isinstance(loss, torch.Tensor)
    grads = torch.autograd.grad(loss, task.parameters(model), allow_unused=True, materialize_grads=True)
    for g in grads:
        if g.dim() >= 1 and g.shape[0] == 3:
            assert g[0].abs().max() == 0 and g[2].abs().max() == 0
    assert isinstance(model, nn.Module)


@pytest.mark.parametrize("family", ["workspace", "fusion", "direct"])
def test_a_cycle_reencodes_a_translated_class_as_probabilities(family: str) -> None:
    """Adding one constant to every class logit changes no probability, so no loss term and no
    metric may move. A cycle that fed the encoder raw logits (it only knows one-hot rows) would."""
    from global_workspace.workspace.families import FAMILIES

    domains = {"v": 4, "attr": 5}
    specs = {"v": LatentSpec("v", 4, LatentLoss()), "attr": LatentSpec("attr", 5, LatentLoss(categorical=3))}
    fam = FAMILIES[family]
    model = fam.build_model(WorkspaceConfig(domains=domains, width=8, depth=3), [0, 1])
    task = fam.build_task(specs, fam.categories, False)
    gen = torch.Generator().manual_seed(0)
    classes = F.one_hot(torch.randint(0, 3, (2, 12), generator=gen), 3).float()
    latents = {
        "v": torch.randn(2, 12, 4, generator=gen),
        "attr": torch.cat([classes, torch.randn(2, 12, 2)], -1),
    }
    batch = Batch(latents=latents, paired_rows=4, key=torch.tensor([3, 4]))
    rows = {d: x[0] for d, x in latents.items()}
    base_terms, _ = task.loss(model, batch)
    base_metrics = fam.latent_metrics(model, rows, specs)
    assert any(n.startswith("cycle/") for n in base_terms), sorted(base_terms)

    method = "translate" if family == "direct" else "decode"
    original = getattr(model, method)
    shift = torch.tensor([7.0, 7.0, 7.0, 0.0, 0.0])

    def shifted(*args: torch.Tensor | str) -> torch.Tensor:
        target = args[1] if family == "direct" else args[0]
        out = original(*args)
        return out + shift if target == "attr" else out

    setattr(model, method, shifted)
    terms, _ = task.loss(model, batch)
    metrics = fam.latent_metrics(model, rows, specs)
    for name, value in base_terms.items():
        assert torch.allclose(terms[name], value, atol=1e-5), name
    for name, value in base_metrics.items():
        assert torch.allclose(metrics[name], value, atol=1e-5), name


def _exact_ranks(queries: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranks in float64, the partner's score read from the same similarity matrix."""
    sim = torch.bmm(queries.double(), keys.double().transpose(1, 2))
    true = sim.diagonal(dim1=1, dim2=2).unsqueeze(-1)
    rank = (sim >= true).sum(dim=-1).double()
    return (rank == 1).double().mean(dim=1), (1 / rank).mean(dim=1)


def test_retrieval_ranks_count_the_partner_once_whatever_the_ensemble() -> None:
    # Partners correlated like a trained model's: many true partners rank 2nd or 3rd, where a
    # partner scoring a hair below its own similarity entry would pass for a top-1 hit.
    g = torch.Generator().manual_seed(0)
    queries = F.normalize(torch.randn(4, 2000, 12, generator=g), dim=-1)
    keys = F.normalize(queries + 0.3 * torch.randn(4, 2000, 12, generator=g), dim=-1)
    top1, mrr = _ranks(queries, keys)
    want_top1, want_mrr = _exact_ranks(queries, keys)
    assert torch.allclose(top1.double(), want_top1, atol=1e-3)
    assert torch.allclose(mrr.double(), want_mrr, atol=1e-3)
    alone = [_ranks(queries[i : i + 1], keys[i : i + 1]) for i in range(4)]
    assert torch.equal(torch.cat([t for t, _ in alone]), top1)
    # Ties count against the query: both queries tie with a wrong key, so each ranks 2nd.
    tie_top1, tie_mrr = _ranks(
        torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    )
    assert tie_top1.tolist() == [0.0] and tie_mrr.tolist() == [0.5]
