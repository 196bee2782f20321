"""Scoring a trained ensemble on a split: every metric is a (K,) tensor, one value per member.

For every ordered pair of domains a -> b:
  translation/{a}_to_{b}/latent_mse    MSE between D_b(tanh(E_a(u_a))) and u_b
  retrieval/{a}_to_{b}/top1, /mrr      each example of a retrieves its partner among all examples
                                       of b, by cosine similarity of the PRE-tanh encodings (the
                                       space the contrastive loss aligns); ties count against it
  cycle/{a}_through_{b}/latent_mse     MSE between D_a(tanh(E_b(D_b(tanh(E_a(u_a)))))) and u_a
  translation/{a}_to_{b}/{attribute}   attribute-level coherence read from the predicted latents
                                       (shape_accuracy, position_error_px, ...; see attributes.py)
and for every domain a: demi_cycle/{a}/latent_mse.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..fileio import atomic_write_json
from .model import GlobalWorkspace

Metrics = dict[str, torch.Tensor]

ROW_CHUNK = 8192
"""Examples per forward pass while scoring (bounds memory for large splits and ensembles)."""
SIMILARITY_BUDGET = 1 << 26
"""Entries of the (K, queries, N) similarity block computed at once in retrieval."""


@torch.no_grad()
def latent_metrics(model: GlobalWorkspace, latents: Mapping[str, torch.Tensor]) -> Metrics:
    """Translation, demi-cycle and cycle latent MSEs; latents[d]: (N, dim), row i = example i."""
    domains = [d for d in model.domain_names if d in latents]
    n = int(next(iter(latents.values())).shape[0])
    sums: dict[str, torch.Tensor] = {}

    def add(name: str, pred: torch.Tensor, target: torch.Tensor) -> None:
        err = (pred - target).pow(2).mean(dim=-1).sum(dim=1)  # (K,)
        sums[name] = sums[name] + err if name in sums else err

    for start in range(0, n, ROW_CHUNK):
        rows = {d: latents[d][start : start + ROW_CHUNK] for d in domains}
        for a in domains:
            state = model.state(a, rows[a])  # (K, c, ws)
            for b in domains:
                pred = model.decode(b, state)  # (K, c, dim_b)
                if a == b:
                    add(f"demi_cycle/{a}/latent_mse", pred, rows[a])
                    continue
                add(f"translation/{a}_to_{b}/latent_mse", pred, rows[b])
                back = model.decode(a, model.state(b, pred))
                add(f"cycle/{a}_through_{b}/latent_mse", back, rows[a])
    return {k: v / n for k, v in sums.items()}


@torch.no_grad()
def retrieval_metrics(model: GlobalWorkspace, latents: Mapping[str, torch.Tensor]) -> Metrics:
    """top1 and mean reciprocal rank of the true partner among all N examples, a -> b."""
    domains = [d for d in model.domain_names if d in latents]
    enc = {d: _encode_all(model, d, latents[d]) for d in domains}  # (K, N, ws), unit norm
    out: Metrics = {}
    for a in domains:
        for b in domains:
            if a == b:
                continue
            top1, mrr = _ranks(enc[a], enc[b])
            out[f"retrieval/{a}_to_{b}/top1"] = top1
            out[f"retrieval/{a}_to_{b}/mrr"] = mrr
    return out


def _encode_all(model: GlobalWorkspace, domain: str, latent: torch.Tensor) -> torch.Tensor:
    parts = [model.encode(domain, latent[i : i + ROW_CHUNK]) for i in range(0, latent.shape[0], ROW_CHUNK)]
    return F.normalize(torch.cat(parts, dim=1), dim=-1)


def _ranks(queries: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, N, d) x2 -> (top1, mrr), each (K,): rank of keys[i] for queries[i]."""
    k, n, _ = queries.shape
    chunk = max(1, SIMILARITY_BUDGET // max(k * n, 1))
    hits = torch.zeros(k, device=queries.device)
    reciprocal = torch.zeros(k, device=queries.device)
    for start in range(0, n, chunk):
        q = queries[:, start : start + chunk]  # (K, c, d)
        sim = torch.bmm(q, keys.transpose(1, 2))  # (K, c, N)
        true = (q * keys[:, start : start + chunk]).sum(dim=-1, keepdim=True)  # (K, c, 1)
        # Rank 1 + number of others scoring at least as high: ties are counted against the query.
        rank = (sim >= true).sum(dim=-1).clamp_min(1).float()  # (K, c)
        hits += (rank == 1).float().sum(dim=1)
        reciprocal += (1.0 / rank).sum(dim=1)
    return hits / n, reciprocal / n


def evaluate_split(
    model: GlobalWorkspace,
    latents: Mapping[str, torch.Tensor],
    attributes: Any = None,
) -> Metrics:
    """Every metric of the module docstring; `attributes` scores predicted latents (optional)."""
    metrics = latent_metrics(model, latents)
    metrics.update(retrieval_metrics(model, latents))
    if attributes is not None:
        metrics.update(attributes(model, latents))
    return dict(sorted(metrics.items()))


def per_member(metrics: Mapping[str, torch.Tensor]) -> list[dict[str, float]]:
    """{name: (K,)} -> K dicts {name: value}."""
    values = {k: v.detach().cpu().tolist() for k, v in metrics.items()}
    k = len(next(iter(values.values()))) if values else 0
    return [{name: float(v[i]) for name, v in values.items()} for i in range(k)]


def write_metrics(path: Path, split: str, members: list[dict[str, Any]], metrics: Metrics) -> None:
    """RUN/metrics.json: {"split", "members": [{"member", "spec", "metrics"}]} written atomically."""
    rows = per_member(metrics)
    atomic_write_json(
        path,
        {
            "split": split,
            "members": [
                {"member": i, "spec": spec, "metrics": row}
                for i, (spec, row) in enumerate(zip(members, rows, strict=True))
            ],
        },
    )
