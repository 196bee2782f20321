"""Which members share an ensemble (a chunk), and which rank trains which chunk."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from typing import Any

from ...workspace.presets import MemberSpec, step_cost
from ...workspace.settings import TrainConfig, WorkspaceConfig
from ..grid import LR, WEIGHT_DECAY, point_sizes
from .config import ExperimentConfig


def chunk_id(members: Sequence[MemberSpec]) -> str:
    text = "|".join(m.label() for m in members)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def plan_chunks(
    members: Sequence[MemberSpec], config: ExperimentConfig, parts: int = 1
) -> list[list[MemberSpec]]:
    """Split members into ensembles: one per preset (or, mixing presets, one per model family) and,
    in a grid, per learning rate, weight decay (the optimiser's, shared by an ensemble) and
    architecture, at most
    max_members each, and at least `parts` chunks when there are that many members."""
    keys = [_ensemble_key(m, config.mix_presets) for m in members]
    groups = [[m for m, k in zip(members, keys, strict=True) if k == key] for key in dict.fromkeys(keys)]
    limit = config.max_members
    total = sum(len(g) for g in groups)
    if parts > 1 and total:
        limit = min(limit, max(1, math.ceil(total / parts)))
    chunks = []
    for g in groups:
        pieces = math.ceil(len(g) / limit)
        size = math.ceil(len(g) / pieces)
        chunks += [g[i : i + size] for i in range(0, len(g), size)]
    return chunks


def _ensemble_key(member: MemberSpec, mix_presets: bool) -> tuple[Any, ...]:
    """Members with the same key may share an ensemble: a model family when mixing presets (one
    ensemble per family, families.py), else a preset; and a grid point's lr, weight decay and sizes."""
    group = member.family if mix_presets else member.preset
    if member.grid is None:
        return (group,)
    return (group, member.grid[LR], member.grid[WEIGHT_DECAY], *sorted(point_sizes(member.grid).items()))


def chunk_workspace(
    members: Sequence[MemberSpec], config: ExperimentConfig, latent_dims: dict[str, int]
) -> WorkspaceConfig:
    """The architecture of an ensemble: the experiment's, with its grid point's sizes (plan_chunks
    puts only members of one architecture together)."""
    if len({tuple(sorted(point_sizes(m.grid).items())) for m in members}) > 1:
        raise ValueError("an ensemble's members must share their width and depth")
    return config.workspace(latent_dims, members[0].grid)


def chunk_train_config(members: Sequence[MemberSpec], train: TrainConfig) -> TrainConfig:
    """The optimiser settings of an ensemble: the experiment's, with its grid point's lr and
    weight decay (plan_chunks puts only members that share them together)."""
    grids = {(m.grid[LR], m.grid[WEIGHT_DECAY]) for m in members if m.grid is not None}
    if not grids:
        return train
    if len(grids) > 1 or any(m.grid is None for m in members):
        raise ValueError("an ensemble's members must share their learning rate and weight decay")
    lr, weight_decay = grids.pop()
    return dataclasses.replace(train, lr=lr, weight_decay=weight_decay)


def assign_chunks(
    chunks: Sequence[Sequence[MemberSpec]], world: int, config: ExperimentConfig
) -> list[list[int]]:
    """Chunk indices per rank, so that ranks finish together: the costliest chunk (estimated by
    `member_cost`) goes first, each to the least loaded rank. Ties go to the lower index, so every
    rank computes the same plan without talking to the others."""
    costs = [sum(member_cost(m, config) for m in chunk) for chunk in chunks]
    loads = [0.0] * world
    plan: list[list[int]] = [[] for _ in range(world)]
    for i in sorted(range(len(chunks)), key=lambda i: (-costs[i], i)):
        rank = min(range(world), key=lambda r: (loads[r], r))
        loads[rank] += costs[i]
        plan[rank].append(i)
    return [sorted(indices) for indices in plan]


REFERENCE_SIZE = 32**2 * 5
"""width² × depth of the reference's networks: the unit of `member_cost`'s size term."""


def member_cost(member: MemberSpec, config: ExperimentConfig) -> float:
    """A rough relative cost per step: its losses' (`step_cost`) times its size, whose hidden
    layers grow about as width² × depth (averaged over the domains, which may differ); the 1
    stands for the work that does not grow with it."""
    size = config.workspace(dict.fromkeys(config.domains, 1), member.grid)
    hidden = [size.width_of(d) ** 2 * size.depth_of(d) for d in config.domains]
    return step_cost(member.coefficients) * (1.0 + sum(hidden) / len(hidden) / REFERENCE_SIZE)
