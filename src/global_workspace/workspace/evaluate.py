"""Scoring a trained ensemble on a split: every metric is a (K,) tensor, one value per member.

For every ordered pair of domains a -> b:
  translation/{a}_to_{b}/latent_mse    MSE between D_b(tanh(E_a(u_a))) and u_b
  retrieval/{a}_to_{b}/top1, /mrr      each example of a retrieves its partner among all examples
                                       of b, by cosine similarity of the PRE-tanh encodings (the
                                       space the contrastive loss aligns); ties count against it
  cycle/{a}_through_{b}/latent_mse     MSE between D_a(tanh(E_b(D_b(tanh(E_a(u_a)))))) and u_a
  translation/{a}_to_{b}/{attribute}   attribute-level coherence: the predicted latents of b read
                                       as attributes (domains/readout.py: attr directly, v through
                                       the image probe, t by parsing decoded captions) and scored
                                       against the labels: shape_accuracy, position_error_px,
                                       size_error_px, rotation_error_deg, color_error (parse_rate)
and for every domain a: demi_cycle/{a}/latent_mse. Attribute metrics need the dataset
(DATA/dataset.json) and domains with a readout; a domain without one is listed under "skipped".
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..domains.latents import LatentSpec
from ..fileio import atomic_write_json
from ..finite import require_finite_metrics
from .model import GlobalWorkspace
from .presets import MemberSpec

Metrics = dict[str, torch.Tensor]

ROW_BLOCK = 8192
"""Examples per forward pass while scoring (bounds memory for large splits and ensembles)."""
SIMILARITY_BUDGET = 1 << 26
"""Entries of the (K, queries, N) similarity block computed at once in retrieval."""


def as_latent(pred: torch.Tensor, spec: LatentSpec | None) -> torch.Tensor:
    """`LatentLoss.as_latent` of the domain's spec; the prediction itself without one."""
    return pred if spec is None else spec.loss.as_latent(pred)


def row_count(latents: Mapping[str, torch.Tensor]) -> int:
    """Examples of a split (row i of every domain is example i)."""
    return int(next(iter(latents.values())).shape[0])


def row_blocks(
    latents: Mapping[str, torch.Tensor], domains: Sequence[str]
) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """(start, the domains' rows from start) in blocks of ROW_BLOCK: scoring a split of any size
    holds one block of activations at a time."""
    for start in range(0, row_count(latents), ROW_BLOCK):
        yield start, {d: latents[d][start : start + ROW_BLOCK] for d in domains}


def add_squared_error(
    sums: dict[Any, torch.Tensor], name: Hashable, pred: torch.Tensor, target: torch.Tensor
) -> None:
    """Add to sums[name] the (K,) per-member sum over the block's rows of each row's mean squared
    error; divided by the row count at the end, it is the split's latent MSE."""
    err = (pred - target).pow(2).mean(dim=-1).sum(dim=1)  # (K,)
    sums[name] = sums[name] + err if name in sums else err


@torch.no_grad()
def latent_metrics(
    model: GlobalWorkspace,
    latents: Mapping[str, torch.Tensor],
    specs: Mapping[str, LatentSpec] | None = None,
) -> Metrics:
    """Translation, demi-cycle and cycle latent MSEs; latents[d]: (N, dim), row i = example i.

    With `specs`, a domain whose latent starts with a one-hot block (attr's class) is compared
    after its predicted logits become probabilities (see `as_latent`).
    """
    domains = [d for d in model.domain_names if d in latents]
    sums: dict[str, torch.Tensor] = {}
    specs = specs or {}
    for _, rows in row_blocks(latents, domains):
        for a in domains:
            state = model.state(a, rows[a])  # (K, c, ws)
            for b in domains:
                pred = model.decode(b, state)  # (K, c, dim_b)
                if a == b:
                    add_squared_error(
                        sums, f"demi_cycle/{a}/latent_mse", as_latent(pred, specs.get(a)), rows[a]
                    )
                    continue
                pred = as_latent(pred, specs.get(b))
                add_squared_error(sums, f"translation/{a}_to_{b}/latent_mse", pred, rows[b])
                back = as_latent(model.decode(a, model.state(b, pred)), specs.get(a))
                add_squared_error(sums, f"cycle/{a}_through_{b}/latent_mse", back, rows[a])
    n = row_count(latents)
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
    parts = [model.encode(domain, latent[i : i + ROW_BLOCK]) for i in range(0, latent.shape[0], ROW_BLOCK)]
    return F.normalize(torch.cat(parts, dim=1), dim=-1)


def _ranks(queries: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, N, d) x2 -> (top1, mrr), each (K,): rank of keys[i] for queries[i]."""
    k, n, _ = queries.shape
    block = max(1, SIMILARITY_BUDGET // max(k * n, 1))
    hits = torch.zeros(k, device=queries.device)
    reciprocal = torch.zeros(k, device=queries.device)
    for start in range(0, n, block):
        q = queries[:, start : start + block]  # (K, c, d)
        sim = torch.bmm(q, keys.transpose(1, 2))  # (K, c, N)
        # The partner's score is read from `sim` itself: recomputed any other way it can differ in
        # the last bit, and a partner scoring below its own entry would lift every rank by one.
        partner = torch.arange(start, start + q.shape[1], device=sim.device)
        true = sim.gather(-1, partner.view(1, -1, 1).expand(k, -1, 1))  # (K, c, 1)
        # Rank = number of keys scoring at least as high, the partner included: ties count against.
        rank = (sim >= true).sum(dim=-1).float()  # (K, c)
        hits += (rank == 1).float().sum(dim=1)
        reciprocal += (1.0 / rank).sum(dim=1)
    return hits / n, reciprocal / n


class Translator(Protocol):
    """What attribute scoring needs of a model: translation between its domains (a workspace, or
    the direct translators of the no-workspace ablation)."""

    @property
    def domain_names(self) -> list[str]: ...

    def translate(self, source: str, target: str, latent: torch.Tensor) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


@torch.no_grad()
def attribute_metrics(
    model: Translator,
    latents: Mapping[str, torch.Tensor],
    data: Path,
    split: str,
    skipped: dict[str, str],
) -> Metrics:
    """translation/{a}_to_{b}/{attribute error} per member, from the dataset's labels.

    Domains whose latents are not read as attributes by design are recorded in `skipped` with the
    reason; a specialist or probe whose files are damaged is an error, not a skip.
    """
    from ..data.format import load_dataset
    from ..domains.readout import Readout
    from ..errors import NoReadout

    labels = load_dataset(data).split(split).labels
    readout = Readout(data, next(model.parameters()).device)
    domains = [d for d in model.domain_names if d in latents]
    readable = []
    for b in domains:
        try:
            readout.errors(b, latents[b][:2].cpu(), labels[:2])
            readable.append(b)
        except NoReadout as exc:
            skipped[b] = str(exc)
    out: dict[str, list[float]] = {}
    for a in domains:
        for b in readable:
            if a == b:
                continue
            pred = model.translate(a, b, latents[a]).cpu()  # (K, N, dim_b)
            for k in range(pred.shape[0]):
                for name, value in readout.errors(b, pred[k], labels).items():
                    out.setdefault(f"translation/{a}_to_{b}/{name}", []).append(value)
    return {k: torch.tensor(v) for k, v in out.items()}


def with_attributes(
    model: Translator,
    latents: Mapping[str, torch.Tensor],
    metrics: Metrics,
    data: Path | None,
    split: str,
    skipped: dict[str, str] | None,
) -> Metrics:
    """`metrics` and, when `data` has a dataset.json, the attribute metrics, sorted by name on the
    CPU: every family scores attributes the same way, whatever its latent metrics."""
    if data is not None and (Path(data) / "dataset.json").is_file():
        metrics.update(
            attribute_metrics(model, latents, Path(data), split, {} if skipped is None else skipped)
        )
    return {k: v.cpu() for k, v in sorted(metrics.items())}


def per_member(metrics: Mapping[str, torch.Tensor]) -> list[dict[str, float]]:
    """{name: (K,)} -> K dicts {name: value}."""
    values = {k: v.detach().cpu().tolist() for k, v in metrics.items()}
    k = len(next(iter(values.values()))) if values else 0
    return [{name: float(v[i]) for name, v in values.items()} for i in range(k)]


def write_metrics(
    path: Path,
    split: str,
    members: list[dict[str, Any]],
    metrics: Metrics,
    skipped: dict[str, str] | None = None,
    not_applicable: Mapping[str, str] | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> None:
    """RUN/metrics.json: {"split", "checkpoint", "skipped", "not_applicable", "members": [{"member",
    "spec", "metrics"}]}, atomically; `checkpoint` says which step was scored. A not-applicable
    metric (e.g. retrieval without a shared space) is null in every member's metrics, never 0;
    `not_applicable` maps it to the reason. A NaN or infinite metric is refused: nothing is written."""
    rows: list[dict[str, float | None]] = [dict(r) for r in per_member(metrics)]
    labels = [f"{i} ({MemberSpec.from_json(spec).label()})" for i, spec in enumerate(members)]
    require_finite_metrics(
        rows, labels, "", f"{path} is not written; retrain the run (with a lower --lr if it diverged)"
    )
    for row in rows:
        row.update(dict.fromkeys(not_applicable or {}))
    atomic_write_json(
        path,
        {
            "split": split,
            "checkpoint": dict(checkpoint or {}),
            "skipped": dict(skipped or {}),
            "not_applicable": dict(not_applicable or {}),
            "members": [
                {"member": i, "spec": spec, "metrics": dict(sorted(row.items()))}
                for i, (spec, row) in enumerate(zip(members, rows, strict=True))
            ],
        },
    )
