"""The global workspace's losses as a task for the trainer: named per-member terms + a report.

Term names say what and from where, never which group of the batch they came from:
  translation/{a}_to_{b}     D_b(tanh(E_a(u_a))) vs u_b         paired rows
  contrastive/{a}_{b}        CLIP-style symmetric CE on pre-tanh paired rows, a before b in the
                             model's domain order
  demi_cycle/{a}             D_a(tanh(E_a(u_a))) vs u_a         unpaired rows of a
  cycle/{a}_through_{b}      D_a(tanh(E_b(D_b(tanh(E_a(u_a)))))) vs u_a   unpaired rows of a
  back_translation/{a}_through_{b}   the same with D_b(tanh(E_a(u_a))) cut from the graph: the way
                             back b -> a learns from b's translations of real a, and the way out
                             a -> b gets no gradient through which to hide u_a in b's latent
Each domain's prediction is scored by its own `LatentLoss`. The unpaired rows are drawn from the
whole train split (paired examples included), so demi-cycles and cycles see every example, as in
the reference, which also computes them on its unpaired groups. A term with nothing to compute
(no paired rows, a single domain, an inactive category) is absent from the dict.

Every term is a (K,) tensor: one value per ensemble member, the (weighted) mean over its rows.
Encodings and decodings are computed once per domain and shared by all terms that need them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..domains.latents import LatentSpec
from .model import GlobalWorkspace
from .presets import (
    BACK_TRANSLATION,
    CONTRASTIVE,
    CYCLE,
    DEMI_CYCLE,
    GW_CATEGORIES,
    TRANSLATION,
    WORKSPACE_CATEGORIES,
    MemberSpec,
)
from .sampling import Batch

Terms = dict[str, torch.Tensor]


def active_categories(members: Iterable[MemberSpec]) -> set[str]:
    """Categories with a positive weight for at least one member: only those are computed."""
    return {c for m in members for c, w in m.coefficients.items() if w > 0}


def workspace_parameters(model: nn.Module, learn_logit_scale: bool) -> list[nn.Parameter]:
    """Every weight of a workspace; the logit scale only when it is learned."""
    assert isinstance(model, GlobalWorkspace)
    fixed = set() if learn_logit_scale else {id(model.log_logit_scale)}
    return [p for p in model.parameters() if id(p) not in fixed]


def weighted_mean(loss: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """(K, ..., n) per-example losses -> (K, ...) means over the rows of weight 1 (all rows if None);
    weight is (K, n), shared by the middle axes (the broadcast loss's subsets)."""
    if weight is None:
        return loss.mean(dim=-1)
    w = weight.reshape(weight.shape[0], *([1] * (loss.dim() - 2)), weight.shape[-1])
    return (loss * w).sum(dim=-1) / w.sum(dim=-1).clamp_min(1.0)


class _SymmetricInfoNCE(torch.autograd.Function):
    """Per-row symmetric cross-entropy of the logits a @ b^T: (K, P, d) x2 -> (K, P).

    loss_i = (lse_j S_ij + lse_j S_ji) / 2 - S_ii with S = a b^T. Both log-sum-exps share one
    exp(S - max S) (max over each member's whole matrix): exact while a row or column spans less
    than ~87 nats, always true for logit scales below 43 (the default is 1/0.07 = 14.3). Padding
    rows (weight 0) are neither positives nor negatives. The P x P matrix is made, exponentiated
    and differentiated in place with a hand-written backward: autograd's version makes ~3x more
    passes over it, which dominates the step on the CPU.
    """

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        e = torch.bmm(a, b.transpose(1, 2))  # (K, P, P) logits
        peak = e.amax(dim=(1, 2), keepdim=True)  # (K, 1, 1)
        e.sub_(peak).exp_()
        if weight is not None:
            e.mul_(weight.unsqueeze(2)).mul_(weight.unsqueeze(1))
        tiny = torch.finfo(e.dtype).tiny
        row_sum = e.sum(dim=2).clamp_min(tiny)  # (K, P)
        col_sum = e.sum(dim=1).clamp_min(tiny)
        ctx.save_for_backward(a, b, e, row_sum, col_sum)
        diag = (a * b).sum(dim=-1)  # (K, P) the positives' logits
        return 0.5 * (row_sum.log() + col_sum.log()) + peak.view(-1, 1) - diag

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        a, b, e, row_sum, col_sum = ctx.saved_tensors
        g = e * (0.5 * grad / row_sum).unsqueeze(2)  # softmax over each row
        g.addcmul_(e, (0.5 * grad / col_sum).unsqueeze(1))  # softmax over each column
        g.diagonal(dim1=1, dim2=2).sub_(grad)  # dloss/dS, (K, P, P)
        return torch.bmm(g, b), torch.bmm(g.transpose(1, 2), a), None


def contrastive_loss(
    a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, weight: torch.Tensor | None
) -> torch.Tensor:
    """Symmetric InfoNCE of CLIP between row-aligned encodings a, b: (K, P, dim) -> (K,).

    scale: (K,) logit scale; weight: (K, P) with 0 for padding rows, which are neither positives
    nor negatives.
    """
    a = F.normalize(a, dim=-1) * scale.view(-1, 1, 1)
    b = F.normalize(b, dim=-1)
    per_row = _SymmetricInfoNCE.apply(a, b, weight)
    assert isinstance(per_row, torch.Tensor)
    return weighted_mean(per_row, weight)


def _apply(fn: Callable[[torch.Tensor], torch.Tensor], pieces: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """fn over several (K, n_i, dim) inputs in one call (concatenated along rows), split back."""
    if len(pieces) == 1:
        return [fn(pieces[0])]
    out = fn(torch.cat(list(pieces), dim=1))
    return list(out.split([p.shape[1] for p in pieces], dim=1))


class GWTask:
    """The losses of the global workspace (docs/design.md §5, plus back-translation) as a trainer task;
    by default the paper's four."""

    categories: tuple[str, ...] = WORKSPACE_CATEGORIES
    needs_pairs: frozenset[str] = frozenset({TRANSLATION, CONTRASTIVE})

    def __init__(
        self,
        specs: Mapping[str, LatentSpec],
        active: Iterable[str] = GW_CATEGORIES,
        learn_logit_scale: bool = False,
        max_logit_scale: float = 100.0,
    ) -> None:
        self.specs = dict(specs)
        self.active = frozenset(active)
        unknown = self.active - set(self.categories)
        if unknown:
            raise ValueError(f"the global workspace has no loss category {sorted(unknown)}")
        self.learn_logit_scale = learn_logit_scale
        self.max_logit_scale = max_logit_scale

    def parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return workspace_parameters(model, self.learn_logit_scale)

    def loss(self, model: nn.Module, batch: Batch) -> tuple[Terms, Terms]:
        """(terms, report): per-member (K,) loss terms and diagnostics for one batch."""
        assert isinstance(model, GlobalWorkspace)
        return self.terms(model, batch)

    def terms(self, model: GlobalWorkspace, batch: Batch) -> tuple[Terms, Terms]:
        p, w = batch.paired_rows, batch.paired_weight
        domains = [d for d in model.domain_names if d in batch.latents]
        u = {d: batch.latents[d] for d in domains}  # (K, P + U_d, dim)
        n_unpaired = {d: batch.unpaired_count(d) for d in domains}
        do_tr = TRANSLATION in self.active and p > 0
        cycles = [c for c in (CYCLE, BACK_TRANSLATION) if c in self.active]
        do_cy = bool(cycles)
        do_dcy = DEMI_CYCLE in self.active
        terms: Terms = {}
        report: Terms = {}

        enc = {d: model.encode(d, u[d]) for d in domains}  # pre-tanh (K, P + U_d, ws)
        state = {d: torch.tanh(e) for d, e in enc.items()}

        # Every decoder runs once, on the rows of all the terms that decode into its domain.
        decoded: dict[tuple[str, str], torch.Tensor] = {}  # (source, target) -> prediction rows
        for b in domains:
            keys, pieces = [], []
            for a in domains:
                if a == b:
                    if do_dcy and n_unpaired[b]:
                        keys.append((b, b))
                        pieces.append(state[b][:, p:])
                    continue
                lo = 0 if do_tr else p
                hi = p + n_unpaired[a] if do_cy else p
                if hi > lo:
                    keys.append((a, b))
                    pieces.append(state[a][:, lo:hi])
            if pieces:
                decoded.update(zip(keys, _apply(functools.partial(model.decode, b), pieces), strict=True))

        for a in domains:
            for b in domains:
                if a != b and do_tr:
                    pred = decoded[(a, b)][:, :p]
                    terms[f"translation/{a}_to_{b}"] = weighted_mean(self.specs[b].loss(pred, u[b][:, :p]), w)
            if do_dcy and n_unpaired[a]:
                terms[f"demi_cycle/{a}"] = self.specs[a].loss(decoded[(a, a)], u[a][:, p:]).mean(dim=1)

        for cat in cycles:
            self._cycles(model, domains, decoded, u, p, n_unpaired, terms, cat)

        if CONTRASTIVE in self.active and p > 0:
            scale = model.logit_scale(self.max_logit_scale)
            report["contrastive/logit_scale"] = scale.detach()
            for i, a in enumerate(domains):
                for b in domains[i + 1 :]:
                    terms[f"contrastive/{a}_{b}"] = contrastive_loss(enc[a][:, :p], enc[b][:, :p], scale, w)
        return terms, report

    def _cycles(
        self,
        model: GlobalWorkspace,
        domains: list[str],
        decoded: dict[tuple[str, str], torch.Tensor],
        u: dict[str, torch.Tensor],
        p: int,
        n_unpaired: dict[str, int],
        terms: Terms,
        category: str,
    ) -> None:
        """{category}/{a}_through_{b} on a's unpaired rows: re-encode the translation into b, decode
        a; for back-translation the translation enters as a constant."""
        back: dict[tuple[str, str], torch.Tensor] = {}  # (a, b) -> tanh(E_b(D_b(z_a)))
        for b in domains:
            keys = [(a, b) for a in domains if a != b and n_unpaired[a]]
            if keys:
                pieces = [self.specs[b].loss.as_latent(decoded[k][:, -n_unpaired[k[0]] :]) for k in keys]
                if category == BACK_TRANSLATION:
                    pieces = [x.detach() for x in pieces]
                outs = _apply(functools.partial(model.encode, b), pieces)
                back.update((k, torch.tanh(o)) for k, o in zip(keys, outs, strict=True))
        for a in domains:
            keys = [(a, b) for b in domains if (a, b) in back]
            if not keys:
                continue
            outs = _apply(functools.partial(model.decode, a), [back[k] for k in keys])
            for (_, b), pred in zip(keys, outs, strict=True):
                terms[f"{category}/{a}_through_{b}"] = self.specs[a].loss(pred, u[a][:, p:]).mean(dim=1)
