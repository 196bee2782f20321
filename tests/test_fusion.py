"""Fusion: selection policies, the broadcast loss (names, counts, exact values, parity with a plain
loop), fused-input evaluation and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from workspace_fixtures import (  # noqa: F401
    assert_back_translation_spares_the_way_out,
    linear_pair,
    one_thread,
    write_domain,
)

from global_workspace.domains.latent_loss import LatentLoss
from global_workspace.domains.latents import LatentSpec
from global_workspace.errors import UserError
from global_workspace.workspace.broadcast import (
    BROADCAST_CATEGORIES,
    FUSION_CATEGORIES,
    BroadcastTask,
    Group,
    subset_mask,
    subset_members,
)
from global_workspace.workspace.checkpoint import current_checkpoint
from global_workspace.workspace.evaluate import as_latent
from global_workspace.workspace.families import define_preset, family_of
from global_workspace.workspace.fusion_eval import fusion_metrics
from global_workspace.workspace.losses import active_categories
from global_workspace.workspace.model import GlobalWorkspace
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.sampling import Batch
from global_workspace.workspace.selection import (
    EqualWeights,
    RandomDomain,
    RandomSoftmax,
    Selection,
    hash_uniform,
)
from global_workspace.workspace.settings import WorkspaceConfig

pytestmark = pytest.mark.usefixtures("one_thread")

TWO = {"v": 4, "attr": 5}
THREE = {"v": 4, "attr": 5, "t": 3}


def _specs(domains: dict[str, int]) -> dict[str, LatentSpec]:
    return {d: LatentSpec(d, n, LatentLoss(3 if d == "attr" else 0)) for d, n in domains.items()}


def _model(domains: dict[str, int], k: int = 2, gates: bool = False) -> GlobalWorkspace:
    model = GlobalWorkspace(
        WorkspaceConfig(domains=domains, workspace_dim=6, width=8, depth=2),
        list(range(k)),
        fusion_gates=gates,
    )
    if model.fusion_gates is not None:  # gates as after training: far from the neutral zeros
        with torch.no_grad():
            model.fusion_gates.copy_(
                0.2 * torch.randn(model.fusion_gates.shape, generator=torch.Generator().manual_seed(9))
            )
    return model


def _batch(domains: dict[str, int], k: int, paired: int, unpaired: int, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    latents = {d: torch.randn(k, paired + unpaired, n, generator=gen) for d, n in domains.items()}
    return Batch(latents=latents, paired_rows=paired, key=torch.arange(k) * 7919 + seed)


class IdentityWorkspace(GlobalWorkspace):
    """Encoders are the identity and decoders invert tanh: D(tanh(E(u))) = u exactly."""

    def encode(self, domain: str, latent: torch.Tensor) -> torch.Tensor:
        return self._members_first(latent)

    def decode(self, domain: str, state: torch.Tensor) -> torch.Tensor:
        return torch.atanh(self._members_first(state))


# ---------------------------------------------------------------------------------------------
# Selection


POLICIES: tuple[type[Selection], ...] = (RandomDomain, EqualWeights, RandomSoftmax)


@pytest.mark.parametrize("policy", POLICIES)
def test_selection_weights_are_a_distribution_over_present_domains(policy: type[Selection]) -> None:
    gen = torch.Generator().manual_seed(0)
    uniform = torch.rand(3, 50, 4, generator=gen)
    present = torch.rand(3, 50, 4, generator=gen) < 0.6
    present[..., 0] = True
    alpha = policy()(present, uniform)
    assert alpha.shape == uniform.shape
    assert (alpha >= 0).all()
    assert torch.all(alpha[~present] == 0)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3, 50))


def test_selection_follows_temperature() -> None:
    uniform = torch.rand(2000, 3, generator=torch.Generator().manual_seed(1))
    present = torch.ones_like(uniform, dtype=torch.bool)
    cold = RandomSoftmax(temperature=1e-3)(present, uniform)
    hot = RandomSoftmax(temperature=1e4)(present, uniform)
    # One domain per example, except where two draws lie within ~T of each other.
    assert (cold.max(dim=-1).values > 0.99).float().mean() > 0.98
    torch.testing.assert_close(hot, torch.full_like(hot, 1 / 3), atol=1e-4, rtol=0)
    # The default T = 0.2 sits in between, and a lower temperature is more peaked.
    mid = RandomSoftmax()(present, uniform).max(dim=-1).values.mean()
    assert hot.max(dim=-1).values.mean() < mid < cold.max(dim=-1).values.mean()


def test_random_domain_is_one_hot_and_uniform() -> None:
    uniform = torch.rand(30000, 3, generator=torch.Generator().manual_seed(2))
    alpha = RandomDomain()(torch.ones_like(uniform, dtype=torch.bool), uniform)
    assert torch.all((alpha == 0) | (alpha == 1)) and torch.all(alpha.sum(-1) == 1)
    torch.testing.assert_close(alpha.mean(0), torch.full((3,), 1 / 3), atol=0.01, rtol=0)
    equal = EqualWeights()(torch.tensor([[True, False, True]]), uniform[:1])
    torch.testing.assert_close(equal, torch.tensor([[0.5, 0.0, 0.5]]))


def test_bad_selection_settings_are_user_errors() -> None:
    for t in (0.0, -1.0, float("nan")):
        with pytest.raises(UserError, match="temperature"):
            RandomSoftmax(temperature=t)


def test_hash_uniform_is_deterministic_in_range_and_keyed() -> None:
    key = torch.tensor([1, 2, 3])
    u = hash_uniform(key, "a", (4, 1000))
    assert u.shape == (3, 4, 1000) and u.min() >= 0 and u.max() < 1
    assert abs(float(u.mean()) - 0.5) < 0.01
    assert torch.equal(u, hash_uniform(key, "a", (4, 1000)))
    assert not torch.equal(u, hash_uniform(key, "b", (4, 1000)))
    assert not torch.equal(u[0], u[1])


# ---------------------------------------------------------------------------------------------
# Broadcast loss: names and counts


def _expected_names(domains: list[str], every: list[str], group: str) -> set[str]:
    names = set()
    for subset in subset_members(domains):
        s = "+".join(subset)
        for t in domains:
            if subset == (t,):
                names.add(f"demi_cycle/{group}/{s}_to_{t}")
            elif t not in subset:
                names.add(f"translation/{group}/{s}_to_{t}")
            else:
                names.add(f"fused/{group}/{s}_to_{t}")
            if t in subset and len(subset) < len(every):
                names.add(f"cycle/{group}/{s}_to_{t}")
    for i, a in enumerate(domains):
        for b in domains[i + 1 :]:
            names.add(f"contrastive/{group}/{a}+{b}")
    return names


def _count(k: int, n: int) -> int:
    """Terms of one group of k domains in a workspace of n: closed form."""
    subsets = 2**k - 1
    targets = subsets * k  # every (subset, group target): demi-cycle, translation or fused
    cycles = k * 2 ** (k - 1) - (k if k == n else 0)  # sum of |S| over subsets, minus S = everything
    return targets + cycles + math.comb(k, 2)


@pytest.mark.parametrize("domains", [TWO, THREE])
def test_term_names_and_count_with_paired_and_unpaired_groups(domains: dict[str, int]) -> None:
    names = list(domains)
    model = _model(domains)
    terms, report = BroadcastTask(_specs(domains)).loss(model, _batch(domains, 2, 6, 5))
    expected = _expected_names(names, names, "paired")
    for d in names:
        expected |= _expected_names([d], names, "unpaired")
    assert set(terms) == expected
    n = len(names)
    assert len(terms) == _count(n, n) + n * _count(1, n)
    assert len(terms) == {2: 9 + 2 * 2, 3: 33 + 3 * 2}[n]
    assert all(v.shape == (2,) and torch.isfinite(v).all() for v in terms.values())
    # The same term computed from the paired and from an unpaired group keeps both values.
    v = names[0]
    assert f"demi_cycle/paired/{v}_to_{v}" in terms and f"demi_cycle/unpaired/{v}_to_{v}" in terms
    assert "contrastive/logit_scale" in report
    assert {name.split("/", 1)[0] for name in terms} == set(FUSION_CATEGORIES)


def test_groups_absent_from_a_batch_give_no_terms() -> None:
    model = _model(TWO)
    task = BroadcastTask(_specs(TWO))
    only_pairs, _ = task.loss(model, _batch(TWO, 2, 6, 0))
    assert only_pairs and all("/paired/" in n for n in only_pairs)
    no_pairs, _ = task.loss(model, _batch(TWO, 2, 0, 6))
    assert no_pairs and all("/unpaired/" in n for n in no_pairs)
    one_domain = Batch({"v": torch.randn(2, 4, 4)}, paired_rows=0, key=torch.arange(2))
    assert set(task.loss(model, one_domain)[0]) == {"demi_cycle/unpaired/v_to_v", "cycle/unpaired/v_to_v"}


def test_inactive_categories_are_not_computed_and_unknown_ones_refused() -> None:
    model = _model(THREE)
    task = BroadcastTask(_specs(THREE), active={"translation", "fused"})
    terms, _ = task.loss(model, _batch(THREE, 2, 4, 4))
    assert {n.split("/", 1)[0] for n in terms} == {"translation", "fused"}
    with pytest.raises(UserError, match="no category"):
        BroadcastTask(_specs(THREE), active={"translation", "fusion"})


def test_subset_mask_matches_subset_members() -> None:
    names = ["a", "b", "c"]
    mask = subset_mask(3, torch.device("cpu"))
    for row, subset in zip(mask.tolist(), subset_members(names), strict=True):
        assert [n for n, m in zip(names, row, strict=True) if m] == list(subset)


# ---------------------------------------------------------------------------------------------
# Broadcast loss: values


def test_identity_maps_give_zero_broadcast_loss() -> None:
    same = {"v": 3, "attr": 3, "t": 3}
    model = IdentityWorkspace(WorkspaceConfig(domains=same, workspace_dim=3, width=4, depth=1), [0, 1])
    specs = {d: LatentSpec(d, 3, LatentLoss()) for d in same}
    gen = torch.Generator().manual_seed(0)
    pairs = 0.5 * torch.randn(2, 8, 3, generator=gen)  # the same latent in every domain
    latents = {d: torch.cat([pairs, 0.5 * torch.randn(2, 5, 3, generator=gen)], dim=1) for d in same}
    batch = Batch(latents, paired_rows=8, key=torch.tensor([3, 4]))
    active = set(BROADCAST_CATEGORIES) - {"contrastive"}
    terms, _ = BroadcastTask(specs, active=active).loss(model, batch)
    assert len(terms) == 30 + 3 * 2 + 12  # back-translation repeats the 9 + 3 cycle terms
    for name, value in terms.items():
        torch.testing.assert_close(value, torch.zeros(2), atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("gates", [False, True])
def test_single_domain_fusion_is_the_plain_state(gates: bool) -> None:
    model = _model(THREE, gates=gates)
    u = torch.randn(2, 7, 4)
    enc = model.encode("v", u)
    for policy in POLICIES:
        uniform = torch.rand(2, 7, 1)
        alpha = policy()(torch.ones_like(uniform, dtype=torch.bool), uniform)
        torch.testing.assert_close(model.fused_state({"v": enc}, {"v": alpha[..., 0]}), model.state("v", u))
    # Several domains present but one chosen (the paper's GW): exactly that domain's state.
    others = {d: model.encode(d, torch.randn(2, 7, THREE[d])) for d in ("attr", "t")}
    one_hot = {"v": torch.ones(2, 7), "attr": torch.zeros(2, 7), "t": torch.zeros(2, 7)}
    assert torch.equal(model.fused_state({"v": enc, **others}, one_hot), model.state("v", u))
    # Inside the loss: the demi-cycle of a lone domain is D(tanh(E(u))).
    specs = _specs(THREE)
    batch = _batch(THREE, 2, 0, 6)
    terms, _ = BroadcastTask(specs).loss(model, batch)
    x = batch.latents["attr"]
    plain = specs["attr"].loss(model.decode("attr", model.state("attr", x)), x).mean(dim=1)
    torch.testing.assert_close(terms["demi_cycle/unpaired/attr_to_attr"], plain)


def test_fusion_gates_weigh_each_workspace_dimension() -> None:
    model = _model(TWO, k=1, gates=True)
    enc = {"v": torch.randn(1, 5, 6), "attr": torch.randn(1, 5, 6)}
    equal = {"v": torch.full((1, 5), 0.5), "attr": torch.full((1, 5), 0.5)}
    assert model.fusion_gates is not None
    with torch.no_grad():
        model.fusion_gates.zero_()  # neutral gates: the selection's weights, as without gates
        torch.testing.assert_close(model.fused_state(enc, equal), GlobalWorkspace.fuse(enc, equal))
        model.fusion_gates[0, 0, :3] = 5.0  # v trusted on dimensions 0-2, attr on 3-5
        model.fusion_gates[0, 1, 3:] = 5.0
    fused = model.fused_state(enc, equal)
    torch.testing.assert_close(fused[..., :3], torch.tanh(enc["v"][..., :3]), atol=1e-6, rtol=0)
    torch.testing.assert_close(fused[..., 3:], torch.tanh(enc["attr"][..., 3:]), atol=1e-6, rtol=0)
    # The evaluation counts the dimensions each domain leads.
    latents = {d: torch.randn(4, n) for d, n in TWO.items()}
    shares = fusion_metrics(model, latents, _specs(TWO))
    assert shares["fusion/v+attr/dims_led_by_v"].tolist() == [3.0]
    assert shares["fusion/v+attr/dims_led_by_attr"].tolist() == [3.0]


def test_fusion_gates_learn_from_real_inputs_not_from_cycles() -> None:
    model = _model(THREE, gates=True)
    # Unpaired rows: one real domain enters (gates have no say), the cycle fuses re-encoded ones.
    unpaired, paired = _batch(THREE, 2, 0, 6), _batch(THREE, 2, 6, 0)
    for active, batch, learns in (({"cycle"}, unpaired, False), ({"translation", "fused"}, paired, True)):
        terms, _ = BroadcastTask(_specs(THREE), active=active).loss(model, batch)
        (grad,) = torch.autograd.grad(
            sum(v.sum() for v in terms.values()), [model.fusion_gates], allow_unused=True
        )
        assert (grad is not None and bool(grad.abs().sum() > 0)) == learns, active


def test_back_translation_is_a_cycle_whose_way_out_learns_nothing() -> None:
    """v alone through attr: same value as the cycle; the way back (E_attr, D_v) learns, the way
    out (E_v, D_attr), which could hide v in attr's latent, does not."""
    model = _model(TWO)
    task = BroadcastTask(_specs(TWO), active={"cycle", "back_translation"})
    terms, _ = task.loss(model, _batch(TWO, 2, 0, 6))
    assert {n for n in terms if n.startswith("back_translation/")} == {
        "back_translation/unpaired/v_to_v",
        "back_translation/unpaired/attr_to_attr",
    }
    way_out = [*model.encoders["v"].parameters(), *model.decoders["attr"].parameters()]
    way_back = [*model.encoders["attr"].parameters(), *model.decoders["v"].parameters()]
    assert_back_translation_spares_the_way_out(terms, "cycle/unpaired/v_to_v", way_out, way_back)


GATED = {"translation", "contrastive", "demi_cycle", "cycle", "fused", "gates"}
"""The categories of preset fusion-gated."""


def _gate_batch(shift_held: float = 0.0, shift_kept: float = 0.0) -> Batch:
    """Six pairs of THREE whose last two are kept for the gates (positions > 1 - 1/3)."""
    batch = _batch(THREE, 2, 6, 4)
    position = ((torch.arange(6) + 0.5) / 6).expand(2, 6)
    shift = torch.tensor([shift_kept] * 4 + [shift_held] * 2 + [0.0] * 4).view(1, -1, 1)
    latents = {d: x + shift for d, x in batch.latents.items()}
    return Batch(latents=latents, paired_rows=6, key=batch.key, pair_position=position)


def test_pairs_kept_for_the_gates_train_only_the_gates() -> None:
    model = _model(THREE, gates=True)
    task = BroadcastTask(_specs(THREE), active=GATED, gate_pairs=1 / 3)
    assert model.fusion_gates is not None
    others = [p for p in model.parameters() if p is not model.fusion_gates]

    def grads(batch: Batch) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        terms, _ = task.loss(model, batch)
        total = sum(v.sum() for v in terms.values())
        gates, *rest = torch.autograd.grad(total, [model.fusion_gates, *others], allow_unused=True)
        return gates, rest

    base_gates, base_rest = grads(_gate_batch())
    held_gates, held_rest = grads(_gate_batch(shift_held=1.0))
    kept_gates, kept_rest = grads(_gate_batch(shift_kept=1.0))
    assert not torch.allclose(held_gates, base_gates)  # the gates learn from the kept-aside pairs...
    for a, b in zip(held_rest, base_rest, strict=True):  # ...nothing else does (up to rounding: the
        assert a is not None and b is not None  # contrastive term's max runs over weight-0 rows too)
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(kept_gates, base_gates)  # and the gates learn from nothing else
    assert any(
        a is not None and b is not None and not torch.allclose(a, b)
        for a, b in zip(kept_rest, base_rest, strict=True)
    )


def test_pairs_kept_for_the_gates_form_their_own_group() -> None:
    batch = _gate_batch()
    gated, _ = BroadcastTask(_specs(THREE), active=GATED, gate_pairs=1 / 3).loss(
        _model(THREE, gates=True), batch
    )
    plain, _ = BroadcastTask(_specs(THREE), active=GATED, gate_pairs=1 / 3).loss(_model(THREE), batch)
    gate_terms = {n for n in gated if n.startswith("gates/")}
    assert "gates/v+attr_to_t" in gate_terms and "gates/v+attr+t_to_v" in gate_terms
    assert all("+" in n.split("/")[1] for n in gate_terms)  # only fused states, which the gates shape
    assert len(gate_terms) == 4 * 3  # 4 subsets of two or more domains x 3 targets
    assert set(gated) - gate_terms == set(plain)  # a model without gates keeps every pair
    # With weight 0 the gates learn nothing, and the kept pairs still train nothing else: a member
    # trains the same whichever members share its ensemble.
    unweighted, _ = BroadcastTask(_specs(THREE), gate_pairs=1 / 3).loss(_model(THREE, gates=True), batch)
    assert set(unweighted) == set(gated) - gate_terms
    assert not torch.allclose(unweighted["translation/paired/v_to_t"], plain["translation/paired/v_to_t"])
    with pytest.raises(UserError, match="fusion gates"):
        BroadcastTask(_specs(THREE), gate_pairs=1.0)
    with pytest.raises(UserError, match="preset fusion-gated"):
        BroadcastTask(_specs(THREE), active=GATED)  # no pairs kept for gates: nothing to weigh


def _plain_group_terms(
    model: GlobalWorkspace, task: BroadcastTask, group: Group, key: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The broadcast loss of one group, one subset at a time, with the same fusion weights."""
    from global_workspace.workspace.losses import weighted_mean

    names = [d for d in model.domain_names if d in group.latents]
    every = model.domain_names
    u = group.latents
    subsets = subset_members(names)
    rows = next(iter(u.values())).shape[1]
    fuse_u = hash_uniform(key, "fuse", (len(subsets), rows, len(names)))
    n_cyc = len(subsets) - (1 if len(names) == len(every) else 0)
    cyc_u = hash_uniform(key, "cycle", (n_cyc, rows, len(every))) if n_cyc else None
    terms = {}
    for s, subset in enumerate(subsets):
        present = torch.tensor([d in subset for d in names]).expand(2, rows, -1)
        alpha = task.selection(present, fuse_u[:, s])
        enc = {d: model.encode(d, u[d]) for d in subset}
        z = model.fused_state(enc, {d: alpha[..., names.index(d)] for d in subset})
        dec = {d: model.decode(d, z) for d in every}
        label = "+".join(subset)
        for t in names:
            cat = "demi_cycle" if subset == (t,) else "translation" if t not in subset else "fused"
            loss = weighted_mean(task.specs[t].loss(dec[t], u[t]).unsqueeze(1), group.weight)[:, 0]
            terms[f"{cat}/{group.name}/{label}_to_{t}"] = loss
        if s < n_cyc:
            assert cyc_u is not None
            out = [d for d in every if d not in subset]
            present = torch.tensor([d not in subset for d in every]).expand(2, rows, -1)
            beta = task.selection(present, cyc_u[:, s])
            re = {d: model.encode(d, task.specs[d].loss.as_latent(dec[d])) for d in out}
            z2 = model.fused_state(re, {d: beta[..., every.index(d)] for d in out}, learn_gates=False)
            for t in subset:
                loss = weighted_mean(task.specs[t].loss(model.decode(t, z2), u[t]).unsqueeze(1), group.weight)
                terms[f"cycle/{group.name}/{label}_to_{t}"] = loss[:, 0]
    return terms


@pytest.mark.parametrize("gates", [False, True])
@pytest.mark.parametrize("members", ["paired3", "unpaired", "paired2_of_3"])
def test_batched_subsets_match_a_plain_loop_forward_and_backward(members: str, gates: bool) -> None:
    model = _model(THREE, gates=gates)
    task = BroadcastTask(_specs(THREE), active=set(FUSION_CATEGORIES) - {"contrastive"})
    gen = torch.Generator().manual_seed(5)
    doms = {"paired3": ["v", "attr", "t"], "unpaired": ["attr"], "paired2_of_3": ["v", "t"]}[members]
    latents = {d: torch.randn(2, 6, THREE[d], generator=gen) for d in doms}
    weight = torch.tensor([[1.0] * 6, [1.0] * 4 + [0.0] * 2]) if members != "unpaired" else None
    group = Group(members, latents, weight)
    key = torch.tensor([11, 12])
    fast: dict[str, torch.Tensor] = {}
    task.group_terms(model, group, key, fast)
    slow = _plain_group_terms(model, task, group, key)
    assert set(fast) == set(slow)
    for name in fast:
        torch.testing.assert_close(fast[name], slow[name], atol=1e-5, rtol=1e-5, msg=name)
    params = list(model.parameters())
    g_fast = torch.autograd.grad(sum(v.sum() for v in fast.values()), params, allow_unused=True)
    g_slow = torch.autograd.grad(sum(v.sum() for v in slow.values()), params, allow_unused=True)
    for a, b in zip(g_fast, g_slow, strict=True):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_broadcast_needs_a_step_key() -> None:
    batch = _batch(TWO, 2, 3, 3)
    batch.key = None
    with pytest.raises(ValueError, match="key"):
        BroadcastTask(_specs(TWO)).loss(_model(TWO), batch)


# ---------------------------------------------------------------------------------------------
# Fused-input evaluation


def test_fusion_metrics_names_and_exact_values() -> None:
    model = _model(THREE, k=3)
    gen = torch.Generator().manual_seed(0)
    latents = {d: torch.randn(20, n, generator=gen) for d, n in THREE.items()}
    specs = _specs(THREE)
    metrics = fusion_metrics(model, latents, specs)
    pairs = ["v+attr", "v+t", "attr+t"]
    expected = {
        f"fusion/{p}_to_{c}/{m}"
        for p in pairs
        for c in [*THREE, "all"]
        for m in ("latent_mse", "best_single_latent_mse")
    }
    assert set(metrics) == expected
    assert all(v.shape == (3,) for v in metrics.values())
    # By hand: equal weights, t from v and attr together; alone: the better of the two translations.
    enc = {d: model.encode(d, latents[d]) for d in ("v", "attr")}
    fused = model.decode("t", torch.tanh(0.5 * enc["v"] + 0.5 * enc["attr"]))
    torch.testing.assert_close(
        metrics["fusion/v+attr_to_t/latent_mse"], (fused - latents["t"]).pow(2).mean(dim=(1, 2))
    )
    single = torch.stack(
        [(model.translate(d, "t", latents[d]) - latents["t"]).pow(2).mean(dim=(1, 2)) for d in ("v", "attr")]
    )
    torch.testing.assert_close(metrics["fusion/v+attr_to_t/best_single_latent_mse"], single.min(dim=0).values)
    # The state as a whole: fused errors summed over the targets, against the better single state's sum.
    fused_sum = sum(metrics[f"fusion/v+attr_to_{c}/latent_mse"] for c in THREE)
    torch.testing.assert_close(metrics["fusion/v+attr_to_all/latent_mse"], fused_sum)
    own_sums = torch.stack(
        [
            sum(
                (as_latent(model.decode(c, model.state(d, latents[d])), specs[c]) - latents[c])
                .pow(2)
                .mean(dim=(1, 2))
                for c in THREE
            )
            for d in ("v", "attr")
        ]
    )
    torch.testing.assert_close(
        metrics["fusion/v+attr_to_all/best_single_latent_mse"], own_sums.min(dim=0).values
    )


def test_fusion_metrics_of_identity_maps_are_zero() -> None:
    same = {"a": 3, "b": 3}
    model = IdentityWorkspace(WorkspaceConfig(domains=same, workspace_dim=3, width=4, depth=1), [0])
    x = 0.5 * torch.randn(10, 3)
    metrics = fusion_metrics(model, {"a": x, "b": x}, selection=RandomSoftmax())
    for name, value in metrics.items():
        torch.testing.assert_close(value, torch.zeros(1), atol=1e-5, rtol=0, msg=name)


def test_a_domain_named_all_keeps_its_own_fusion_metrics() -> None:
    """`all` names the whole-state summary; a domain of that name must not be overwritten by it."""
    model = _model({"all": 3, "b": 4}, k=1)
    x = {"all": torch.randn(5, 3), "b": torch.randn(5, 4)}
    metrics = fusion_metrics(model, x)
    kinds = ("latent_mse", "best_single_latent_mse")
    assert set(metrics) == {f"fusion/all+b_to_{c}/{m}" for c in ("all", "b") for m in kinds}
    alone = [(model.decode("all", model.state(d, x[d])) - x["all"]).pow(2).mean(dim=(1, 2)) for d in x]
    torch.testing.assert_close(metrics["fusion/all+b_to_all/best_single_latent_mse"], torch.minimum(*alone))


# ---------------------------------------------------------------------------------------------
# The `fusion` preset through `gw train` / `gw evaluate`


@pytest.mark.parametrize("preset", ["fusion", "fusion-gated"])
def test_fusion_preset_trains_and_evaluates_three_domains(tmp_path: Path, preset: str) -> None:
    from global_workspace.cli import main

    data = linear_pair(tmp_path / "data", n=120)
    rng = np.random.default_rng(1)
    proj = rng.normal(size=(6, 4))
    a = {s: np.load(data / "domains/a/latents" / f"{s}.npy") for s in ("train", "val", "test")}
    write_domain(data, "c", {s: np.sin(x @ proj) for s, x in a.items()})
    run = tmp_path / "run"
    small = [
        "--steps",
        "4",
        "--batch-size",
        "16",
        "--width",
        "8",
        "--depth",
        "2",
        "--eval-every",
        "0",
        "--quiet",
    ]
    for args in (
        ["train", data, "--domains", "a,b,c", "--preset", preset, "--paired", 30, "--ensemble-seeds", 2,
         "--out", run, "--device", "cpu", *small],
        ["evaluate", run, "--device", "cpu"],
    ):  # fmt: skip
        with pytest.raises(SystemExit) as done:
            main([str(x) for x in args])
        assert done.value.code in (0, None)
    header = (run / "train.csv").read_text().splitlines()[0].split(",")
    assert {"fused/paired/a+b_to_a", "translation/paired/a+b_to_c", "cycle/unpaired/c_to_c"} <= set(header)
    metrics = json.loads((run / "metrics.json").read_text())["members"][1]["metrics"]
    for name in (
        "fusion/a+b_to_c/latent_mse",
        "fusion/b+c_to_a/best_single_latent_mse",
        "translation/a_to_b/latent_mse",
    ):
        assert math.isfinite(metrics[name]), name
    checkpoint = current_checkpoint(run)
    assert checkpoint is not None
    gates = load_file(str(checkpoint / "model.safetensors")).get("fusion_gates")
    if preset == "fusion-gated":  # trained from zero, and reloaded by `gw evaluate` above
        assert gates is not None and gates.shape == (2, 3, 12) and gates.abs().max() > 0
    else:
        assert gates is None


def test_a_fusion_preset_can_trade_its_cycles_for_back_translation() -> None:
    name = define_preset("fusion-bt-test=fusion:cy=0,bt=0.1")
    member = MemberSpec.from_preset(name, seed=0, paired=4)
    family = family_of([member])
    assert family.name == "fusion"
    task = family.build_task(_specs(THREE), active_categories([member]), False)
    terms, _ = task.loss(_model(THREE), _batch(THREE, 2, 4, 4))
    categories = {n.split("/", 1)[0] for n in terms}
    assert categories == {"translation", "contrastive", "demi_cycle", "fused", "back_translation"}


def test_only_a_gated_workspace_takes_a_gates_weight() -> None:
    """`gates` weighs the terms of the pairs kept for fusion gates; a workspace without gates has none."""
    with pytest.raises(UserError, match="bad coefficient 'gates=1'"):
        define_preset("fusion-gates-test=fusion:gates=1")
    name = define_preset("fusion-gated-half=fusion-gated:gates=0.5")
    member = MemberSpec.from_preset(name, seed=0, paired=6)
    assert member.coefficients["gates"] == 0.5 and family_of([member]).name == "fusion-gated"


def test_the_report_sets_fused_inputs_against_the_better_single_one(tmp_path: Path) -> None:
    from global_workspace.experiments.fusion_report import (
        add_fused_inputs_section,
        fused_table,
        gate_share_table,
    )
    from global_workspace.experiments.report import Report

    fused, single = "fusion/v+t_to_v/latent_mse", "fusion/v+t_to_v/best_single_latent_mse"
    rows: list[dict[str, object]] = [
        {"preset": "fusion", "paired": 60, "seed": s, fused: f, single: b}
        for s, (f, b) in enumerate([(1.0, 2.0), (3.0, 2.0), (2.0, 4.0)])
    ]
    rows.append({"preset": "full", "paired": 60, "seed": 0, fused: None, single: None})  # no fusion
    # Medians 2.0 and 2.0, but the members' ratios are 0.5, 1.5 and 0.5.
    assert fused_table(rows, ["full", "fusion"], 60) == [["fusion", "v+t → v", 2.0, 2.0, 0.5]]
    report = Report("fusion")
    add_fused_inputs_section(report, rows, ["full", "fusion"], [60])
    page = report.write(tmp_path / "report.html").read_text()
    assert "Fused inputs" in page and "v+t → v" in page
    gated = [
        {"preset": "fusion-gated", "paired": 60, "seed": s, fused: 1.0, single: 1.0,
         "fusion/v+t/dims_led_by_v": v, "fusion/v+t/dims_led_by_t": 12.0 - v}
        for s, v in enumerate([9.0, 10.0, 11.0])
    ]  # fmt: skip
    assert gate_share_table(rows + gated, ["fusion", "fusion-gated"], 60) == [
        ["fusion-gated", "v+t", "t: 2 / v: 10"]
    ]
    without = Report("no fusion")
    add_fused_inputs_section(without, [r for r in rows if r["preset"] == "full"], ["full"], [60])
    assert "Fused inputs" not in without.write(tmp_path / "plain.html").read_text()
