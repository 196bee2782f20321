"""`gw translate` on own latents: there is no raw data to show, so the latents are printed.

The examples are the first n pairs of the split that hold every source domain and the target:
the target's true latent, then the translation and its mean squared error.
"""

from __future__ import annotations

import numpy as np
import typer

from .data.latents_format import load_domain_latents, load_pairs, read_info, select_pairs
from .errors import UserError
from .loading import TrainedWorkspace


def show_latent_translations(
    ws: TrainedWorkspace, sources: list[str], target: str, split: str, n: int
) -> None:
    """Print the first `n` translations of `split`'s pairs from `sources` (fused) into `target`."""
    info = read_info(ws.data)
    if split not in info.rows:
        raise UserError(
            f"--split {split!r}: {ws.data} has no such split; choose one of {', '.join(info.splits)}"
        )
    domains = [*sources, target]
    for d in domains:
        ws.domain(d)  # refuses a domain the workspace lacks, naming its domains
    chosen = select_pairs(load_pairs(ws.data, info, split), info, domains)
    rows = chosen[(chosen >= 0).all(axis=1)][:n]
    if not len(rows):
        raise UserError(
            f"split {split!r} has no pair holding {', '.join(domains)}; translate between paired domains"
        )
    latents = {d: load_domain_latents(ws.data, info, d, split)[rows[:, j]] for j, d in enumerate(domains)}
    translated = np.asarray(ws.decode(target, ws.fused_state({d: latents[d] for d in sources})))
    label = f"{'+'.join(sources)} → {target}"
    with np.printoptions(precision=3, suppress=True, linewidth=200):
        for i, (truth, pred) in enumerate(zip(latents[target], translated, strict=True)):
            mse = float(np.mean((truth - pred) ** 2))
            typer.echo(f"{i}: truth: {truth}\n   {label}: {pred} (mse {mse:.4g})")
