"""Grid points chosen by earlier experiments, trained again at another budget (`--points-from`).

A whole grid at a long budget costs hours of a core per point. Tuning on a shorter run and training
only the point each (preset, N) chose there keeps the tuning budget of every preset equal (each is
chosen the same way, on validation) while the long run trains one point per (preset, N).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import UserError
from ...workspace.presets import MemberSpec, point_label
from ..efficiency import add_val_min_mean
from ..grid import GRID_POINT, LR, WEIGHT_DECAY, select_points
from .config import ExperimentConfig
from .readings import add_summed_translation
from .results_io import chunk_members, read_chunk_rows
from .resume import finished_members, read_experiment

Point = dict[str, float]


def with_points_from(config: ExperimentConfig, sources: Sequence[Path]) -> ExperimentConfig:
    """`config` training, for each of its (preset, N), only the grid point that the finished members
    of `sources` chose on validation (the same rule as a grid's own choice, `grid.select_points`,
    over all their members together)."""
    candidates: list[dict[str, Any]] = []
    points: dict[str, tuple[Path, ExperimentConfig, Point]] = {}
    for exp in sources:
        source = read_experiment(exp)
        _check_alike(exp, source, config)
        for spec, row in _finished(exp):
            if spec.preset not in config.presets or spec.paired not in config.paired:
                continue
            point = spec.grid or {LR: source.train.lr, WEIGHT_DECAY: source.train.weight_decay}
            key = f"{point_label(point)} in {exp}"  # one point of two experiments: two candidates
            points[key] = (exp, source, point)
            candidates.append({**row, GRID_POINT: key, LR: point[LR], WEIGHT_DECAY: point[WEIGHT_DECAY]})
    add_summed_translation(candidates)
    add_val_min_mean(candidates)
    selected = select_points(candidates)[1]["selected"]
    chosen = {(s["preset"], int(s["paired"])): s[GRID_POINT] for s in selected}
    carried: dict[str, dict[str, Point]] = {}
    named = ", ".join(str(p) for p in sources)
    for name in config.presets:
        for n in config.paired:
            if (name, n) not in chosen:
                raise UserError(
                    f"--points-from {named}: no finished member trained {name} with {n} pairs, so no "
                    f"point was chosen for it; add an experiment that did, or leave {n} out of --paired"
                )
            exp, source, point = points[chosen[(name, n)]]
            _check_same_architecture(exp, source, config, point)
            carried.setdefault(name, {})[str(n)] = dict(point)
    return dataclasses.replace(config, grid=None, points=carried, points_from=[str(p) for p in sources])


def _finished(exp: Path) -> list[tuple[MemberSpec, dict[str, Any]]]:
    """(spec, row) of every member in a finished chunk of `exp`."""
    folders = sorted({folder for folder, _ in finished_members(exp).values()})
    pairs = [zip(chunk_members(folder), read_chunk_rows(folder), strict=True) for folder in folders]
    return [pair for chunk in pairs for pair in chunk]


def _check_alike(exp: Path, source: ExperimentConfig, config: ExperimentConfig) -> None:
    """Refuse a source whose validation loss is of other directions, or whose presets weigh their
    losses otherwise: its choice would not be one for these members."""
    if sorted(source.domains) != sorted(config.domains):
        raise UserError(
            f"--points-from {exp}: it trained {','.join(source.domains)}, this experiment "
            f"{','.join(config.domains)}; carry points only between experiments of the same domains"
        )
    theirs, ours = source.preset_values(), config.preset_values()
    for name in set(theirs) & set(ours):
        if theirs[name].coefficients != ours[name].coefficients:
            raise UserError(
                f"--points-from {exp}: its {name} weighs {theirs[name].coefficients}, this experiment's "
                f"{ours[name].coefficients}; give both the same weights (--define)"
            )


def _check_same_architecture(
    exp: Path, source: ExperimentConfig, config: ExperimentConfig, point: Point
) -> None:
    """Refuse a point chosen for networks of other sizes than this experiment would build for it."""
    dims = dict.fromkeys(config.domains, 1)
    theirs, ours = source.workspace(dims, point), config.workspace(dims, point)
    if theirs != ours:
        raise UserError(
            f"--points-from {exp}: it trained networks of workspace {theirs.workspace_dim}, width "
            f"{theirs.width}, depth {theirs.depth}, this experiment {ours.workspace_dim}, {ours.width}, "
            f"{ours.depth} (or other per-domain sizes); give the sizes it used"
        )
