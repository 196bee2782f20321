"""The broadcast loss of a workspace with fusion (docs/design.md §7), as a trainer task.

A batch holds groups of rows: the paired group (every domain of the batch, rows [0, P)) and one
unpaired group per domain (its rows [P, P + U_d)). For each group G and each non-empty subset S of
G, the domains of S enter together, z_S = tanh(Σ_{d∈S} α_d e_d) with α from a selection policy
(per workspace dimension, reweighted by the model's fusion gates if it has them),
and every domain is decoded from z_S. A decoded target t of the group is scored against u_t:

  demi_cycle/{group}/{S}_to_{t}    S = {t}
  translation/{group}/{S}_to_{t}   t not in S
  fused/{group}/{S}_to_{t}         t in S, |S| > 1
  cycle/{group}/{S}_to_{t}         the decoded domains outside S (all of the model's, not only
                                   the group's) are re-encoded and fused, S decoded again, t in S
  back_translation/{group}/{S}_to_{t}  the same with the decoded domains entering as constants:
                                   the way back learns, the way out cannot hide S in them
  contrastive/{group}/{a}+{b}      CLIP loss on pre-tanh encodings of the group's rows, |G| > 1

With `gate_pairs` > 0 and a model with fusion gates, the last `gate_pairs` of each member's pairs
leave the paired group for a group of their own, through which only the gates learn (encodings and
decoders cut from the graph):

  gates/{S}_to_{t}                 every S with |S| > 1 and every target t of the group

Gates that learn on pairs the encoders have fitted trust whichever domain memorised them best
(`GATE_PAIRS`). The terms have a category of their own because they weigh targets only against one
another: with the weights of `translation` (1) and `fused` (0.1), the gates served the translations
out of a fused state and let the fused inputs' own reconstructions go (`presets.GATE_TERMS`).

{S} names the subset's domains in the model's order joined by '+', so no two terms collide and
a group of k domains has 2^k − 1 subsets. Every subset of a group is computed at once: subsets
are stacked on the batch axis, so each encoder and decoder runs once per group and stage.
Each term is a (K,) tensor: the (weighted) mean over the group's rows, one value per member.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..domains.latents import LatentSpec
from ..errors import UserError
from ..seeding import derive_seed
from .losses import Terms, contrastive_loss, weighted_mean, workspace_parameters
from .model import GlobalWorkspace
from .presets import BACK_TRANSLATION, CONTRASTIVE, CYCLE, DEMI_CYCLE, FUSED, GATE_TERMS, TRANSLATION
from .sampling import MASK32, Batch
from .selection import RandomSoftmax, Selection, hash_uniform

FUSION_CATEGORIES = (TRANSLATION, CONTRASTIVE, DEMI_CYCLE, CYCLE, FUSED)
"""The categories of the broadcast loss in the fusion paper (docs/design.md §7), in a fixed order."""

BROADCAST_CATEGORIES = (*FUSION_CATEGORIES, BACK_TRANSLATION)
"""The coefficient categories of the broadcast loss: the paper's and back-translation."""

GATED_CATEGORIES = (*BROADCAST_CATEGORIES, GATE_TERMS)
"""Those of a workspace with fusion gates: also the terms through which only the gates learn."""

PAIRED, UNPAIRED, GATE_GROUP = "paired", "unpaired", "gates"
"""Group names; they salt the fusion weights (`group_key`), so a rename would change every run."""

GATE_PAIRS = 0.1
"""Share of each member's pairs that only the fusion gates learn from (preset `fusion-gated`).
Learning from the pairs everything else trains on, gates trusted a domain whose encoder had
memorised those pairs; the price is fewer pairs for translation (docs/results.md, "Figures that
were in the code")."""


def subset_members(domains: Sequence[str]) -> list[tuple[str, ...]]:
    """The 2^k − 1 non-empty subsets of `domains` in binary counting order: subset s (from 1)
    holds domains[j] when bit j of s is set ({a}, {b}, {a, b}, {c}, ...)."""
    k = len(domains)
    return [tuple(d for j, d in enumerate(domains) if s >> j & 1) for s in range(1, 2**k)]


def subset_name(subset: Iterable[str]) -> str:
    return "+".join(subset)


def subset_mask(k: int, device: torch.device) -> torch.Tensor:
    """(2^k − 1, k) bool: row s−1 has bit j of s; built on the device (no host copy per step)."""
    codes = torch.arange(1, 2**k, device=device).unsqueeze(1)
    return (codes >> torch.arange(k, device=device)) & 1 == 1


@dataclass(frozen=True)
class Group:
    """Rows of a batch seen by the same domains: latents[d] (K, B, dim), weight (K, B) or None."""

    name: str
    latents: dict[str, torch.Tensor]
    weight: torch.Tensor | None = None


def batch_groups(batch: Batch, order: Sequence[str]) -> list[Group]:
    """The paired group (if the batch has pairs) and one unpaired group per domain with rows."""
    domains = [d for d in order if d in batch.latents]
    p = batch.paired_rows
    groups = []
    if p > 0:
        groups.append(Group(PAIRED, {d: batch.latents[d][:, :p] for d in domains}, batch.paired_weight))
    for d in domains:
        if batch.unpaired_count(d) > 0:
            groups.append(Group(UNPAIRED, {d: batch.latents[d][:, p:]}))
    return groups


@functools.cache
def _name_key(*names: str) -> int:
    return derive_seed(0, "broadcast/group", *names) & MASK32


def group_key(group: Group) -> int:
    """A group's salt for its fusion weights, from its name and domains: a member draws the same
    weights whatever groups other members of its ensemble bring to the batch."""
    return _name_key(group.name, *group.latents)


def _times(weight: torch.Tensor | None, factor: torch.Tensor) -> torch.Tensor:
    """Row weights (K, B) scaled by `factor` (K, B); None stands for all ones."""
    return factor if weight is None else weight * factor


class BroadcastTask:
    """The broadcast loss + contrastive loss of a workspace with fusion, for the trainer."""

    categories: tuple[str, ...]
    """GATED_CATEGORIES when pairs are kept for fusion gates, BROADCAST_CATEGORIES otherwise."""
    needs_pairs: frozenset[str] = frozenset({TRANSLATION, CONTRASTIVE, FUSED, GATE_TERMS})

    def __init__(
        self,
        specs: Mapping[str, LatentSpec],
        selection: Selection | None = None,
        active: Iterable[str] = FUSION_CATEGORIES,
        learn_logit_scale: bool = False,
        max_logit_scale: float = 100.0,
        gate_pairs: float = 0.0,
    ) -> None:
        """gate_pairs: share of each member's pairs kept for the fusion gates alone (models with
        gates; others ignore it). They are kept whatever the `gates` weight, so that a member trains
        the same whichever members share its ensemble; with weight 0 the gates keep their start."""
        if not 0.0 <= gate_pairs < 1.0:
            raise UserError(f"the share of pairs kept for fusion gates must be in [0, 1), got {gate_pairs}")
        self.gate_pairs = float(gate_pairs)
        self.categories = GATED_CATEGORIES if gate_pairs > 0 else BROADCAST_CATEGORIES
        self.specs = dict(specs)
        self.selection = selection if selection is not None else RandomSoftmax()
        self.active = frozenset(active)
        if GATE_TERMS in self.active - set(self.categories):
            raise UserError(f"the `{GATE_TERMS}` weight needs a model with fusion gates: preset fusion-gated")
        unknown = self.active - set(self.categories)
        if unknown:
            raise UserError(
                f"the broadcast loss has no category {sorted(unknown)}; known: {', '.join(self.categories)}"
            )
        self.learn_logit_scale = learn_logit_scale
        self.max_logit_scale = max_logit_scale

    def parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return workspace_parameters(model, self.learn_logit_scale)

    def loss(self, model: nn.Module, batch: Batch) -> tuple[Terms, Terms]:
        """(terms, report): per-member (K,) terms of every group of the batch."""
        assert isinstance(model, GlobalWorkspace)
        if batch.key is None:
            raise ValueError("the broadcast loss draws fusion weights from Batch.key; the batch has none")
        terms: Terms = {}
        report: Terms = {}
        groups = batch_groups(batch, model.domain_names)
        held = self._gate_rows(model, batch)
        for group in groups:
            if held is None or group.name != PAIRED:
                self.group_terms(model, group, batch.key ^ group_key(group), terms)
                continue
            kept = dataclasses.replace(group, weight=_times(group.weight, 1.0 - held))
            self.group_terms(model, kept, batch.key ^ group_key(kept), terms, learn_gates=False)
            if GATE_TERMS in self.active:
                gate_group = dataclasses.replace(group, name=GATE_GROUP, weight=_times(group.weight, held))
                self.gate_terms(model, gate_group, batch.key ^ group_key(gate_group), terms)
        if CONTRASTIVE in self.active and any(len(g.latents) > 1 for g in groups):
            report["contrastive/logit_scale"] = model.logit_scale(self.max_logit_scale).detach()
        return terms, report

    def _gate_rows(self, model: GlobalWorkspace, batch: Batch) -> torch.Tensor | None:
        """(K, P) 1.0 on the paired rows kept for the fusion gates; None when there are none."""
        if self.gate_pairs == 0 or model.fusion_gates is None or batch.paired_rows == 0:
            return None
        if batch.pair_position is None:
            raise ValueError("pairs kept for the fusion gates need Batch.pair_position; the batch has none")
        return (batch.pair_position >= 1.0 - self.gate_pairs).float()

    def group_terms(
        self, model: GlobalWorkspace, group: Group, key: torch.Tensor, terms: Terms, learn_gates: bool = True
    ) -> None:
        """Add the terms of one group to `terms`; `key` (K,) seeds its fusion weights; the fusion
        gates learn from them only if `learn_gates`."""
        names = [d for d in model.domain_names if d in group.latents]
        u = group.latents
        subsets = subset_members(names)
        mask = subset_mask(len(names), key.device)  # (S, k)

        enc = {d: model.encode(d, u[d]).unsqueeze(1) for d in names}  # (K, 1, B, ws)
        z = self._fuse(model, enc, mask, key, "fuse", learn_gates)  # (K, S, B, ws)
        decoded = {d: model.decode(d, z.flatten(1, 2)).unflatten(1, z.shape[1:3]) for d in model.domain_names}

        for t in names:
            loss = weighted_mean(self.specs[t].loss(decoded[t], u[t].unsqueeze(1)), group.weight)  # (K, S)
            for s, subset in enumerate(subsets):
                if subset == (t,):
                    cat = DEMI_CYCLE
                elif t not in subset:
                    cat = TRANSLATION
                else:
                    cat = FUSED
                if cat in self.active:
                    self._add(terms, f"{cat}/{group.name}/{subset_name(subset)}_to_{t}", loss[:, s])

        for category in (CYCLE, BACK_TRANSLATION):
            if category in self.active:
                self._cycles(model, group, names, mask, decoded, key, terms, category)

        if CONTRASTIVE in self.active and len(names) > 1:
            scale = model.logit_scale(self.max_logit_scale)
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    loss = contrastive_loss(enc[a][:, 0], enc[b][:, 0], scale, group.weight)
                    self._add(terms, f"{CONTRASTIVE}/{group.name}/{a}+{b}", loss)

    def gate_terms(self, model: GlobalWorkspace, group: Group, key: torch.Tensor, terms: Terms) -> None:
        """`gates/{S}_to_{t}`: two or more domains entering at once, every target decoded, through
        which only the fusion gates learn: encodings and decoders are cut from the graph. Every
        subset is fused (a fixed shape, no host sync under a CUDA graph); single domains, which the
        gates cannot change, give no term."""
        names = [d for d in model.domain_names if d in group.latents]
        u = group.latents
        subsets = subset_members(names)
        with torch.no_grad():
            enc = {d: model.encode(d, u[d]).unsqueeze(1) for d in names}  # (K, 1, B, ws)
        z = self._fuse(model, enc, subset_mask(len(names), key.device), key, "fuse", learn_gates=True)
        for t in names:
            pred = model.decode_frozen(t, z.flatten(1, 2)).unflatten(1, z.shape[1:3])  # (K, S, B, dim)
            loss = weighted_mean(self.specs[t].loss(pred, u[t].unsqueeze(1)), group.weight)  # (K, S)
            for s, subset in enumerate(subsets):
                if len(subset) > 1:
                    self._add(terms, f"{GATE_TERMS}/{subset_name(subset)}_to_{t}", loss[:, s])

    def _fuse(
        self,
        model: GlobalWorkspace,
        enc: Mapping[str, torch.Tensor],
        present: torch.Tensor,
        key: torch.Tensor,
        draw: str,
        learn_gates: bool,
    ) -> torch.Tensor:
        """Fuse each row of `present` (S, n) bool over the domains of `enc` (each (K, S or 1, B, ws))
        with weights from the selection -> states (K, S, B, ws); fusion gates (if the model has
        them) learn only from `learn_gates` fusions, those of real inputs."""
        rows = next(iter(enc.values())).shape[2]
        uniform = hash_uniform(key, draw, (present.shape[0], rows, len(enc)))  # (K, S, B, n)
        alpha = self.selection(present[None, :, None, :].expand_as(uniform), uniform)
        weights = {d: alpha[..., j] for j, d in enumerate(enc)}
        return model.fused_state(enc, weights, learn_gates)

    def _cycles(
        self,
        model: GlobalWorkspace,
        group: Group,
        names: list[str],
        mask: torch.Tensor,
        decoded: dict[str, torch.Tensor],
        key: torch.Tensor,
        terms: Terms,
        category: str,
    ) -> None:
        """Re-encode the decoded domains outside each subset S, fuse them, decode S again; for
        back-translation the decoded domains enter as constants."""
        every = model.domain_names
        subsets = subset_members(names)
        # Subsets whose complement among all the model's domains is not empty (S != every domain).
        n_cyc = len(subsets) - (1 if len(names) == len(every) else 0)
        if n_cyc == 0:
            return
        col = {d: j for j, d in enumerate(names)}
        always = torch.ones(n_cyc, dtype=torch.bool, device=mask.device)
        outside = torch.stack([~mask[:n_cyc, col[d]] if d in col else always for d in every], dim=1)  # (C, n)
        # Every domain is re-encoded on every cycled subset; the selection zeroes those inside S.
        out = {d: decoded[d][:, :n_cyc].flatten(1, 2) for d in every}
        if category == BACK_TRANSLATION:
            out = {d: x.detach() for d, x in out.items()}
        inputs = {d: self.specs[d].loss.as_latent(x) for d, x in out.items()}
        enc = {d: model.encode(d, x).unflatten(1, (n_cyc, -1)) for d, x in inputs.items()}
        z = self._fuse(model, enc, outside, key, "cycle", learn_gates=False).flatten(1, 2)  # (K, C·B, ws)
        for t in names:
            pred = model.decode(t, z).unflatten(1, (n_cyc, -1))  # (K, C, B, dim)
            loss = weighted_mean(
                self.specs[t].loss(pred, group.latents[t].unsqueeze(1)), group.weight
            )  # (K, C)
            for s, subset in enumerate(subsets[:n_cyc]):
                if t in subset:
                    self._add(terms, f"{category}/{group.name}/{subset_name(subset)}_to_{t}", loss[:, s])

    @staticmethod
    def _add(terms: Terms, name: str, value: torch.Tensor) -> None:
        if name in terms:
            raise AssertionError(f"loss term {name} computed twice")
        terms[name] = value
