"""Scoring on own latents: every metric is computed on the pairs that hold both of its domains.

Row-aligned latents are scored as they are. With own latents, each two domains a, b are scored on
the split's pair rows where both are present (all groups holding them together), as row-aligned
latents of two domains; a metric that several of these views give (demi_cycle/{a}) is their mean
weighted by the views' rows. Attribute metrics need a dataset's labels, which own latents lack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from .data import LatentData
from .evaluate import Metrics, row_count

Score = Callable[[Mapping[str, torch.Tensor]], Metrics]


def pair_views(
    latents: Mapping[str, torch.Tensor], pairs: torch.Tensor, domains: Sequence[str]
) -> list[dict[str, torch.Tensor]]:
    """For each two domains with pairs in the split, their latents row-aligned on those pairs."""
    views = []
    for i, a in enumerate(domains):
        for j in range(i + 1, len(domains)):
            rows = pairs[(pairs[:, i] >= 0) & (pairs[:, j] >= 0)]
            if len(rows):
                views.append({a: latents[a][rows[:, i]], domains[j]: latents[domains[j]][rows[:, j]]})
    return views


def split_metrics(data: LatentData, split: str, score: Score) -> Metrics:
    """`score` of a split: on its latents as they are, or on each view of its pairs, merged."""
    latents = data.split(split)
    if data.pairs is None:
        return score(latents)
    sums: Metrics = {}
    counts: dict[str, int] = {}
    for view in pair_views(latents, data.pairs[split], list(data.specs)):
        n = row_count(view)
        for name, value in score(view).items():
            sums[name] = sums[name] + value * n if name in sums else value * n
            counts[name] = counts.get(name, 0) + n
    return {name: sums[name] / counts[name] for name in sorted(sums)}
