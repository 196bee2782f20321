"""The finished members of earlier experiments as candidates of one choice on validation.

Both `--points-from` (carried.py) and `gw experiment combine` (combined.py) rank members that other
experiments trained by the grid's own rule (`grid.select_points`). A member's candidate point is its
grid point, or the lr and weight decay of an experiment without a grid, and it is labelled with the
experiment it came from: the same point trained by two experiments is two candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import UserError
from ...workspace.presets import MemberSpec, point_label
from ..efficiency import add_val_min_mean
from ..grid import GRID_POINT, LR, WEIGHT_DECAY
from .config import ExperimentConfig
from .readings import add_summed_translation
from .results_io import chunk_members, read_chunk_rows
from .resume import finished_members

Point = dict[str, float]


@dataclass(frozen=True)
class Candidate:
    """Where a candidate point was trained: its experiment, that experiment's settings, the point."""

    exp: Path
    config: ExperimentConfig
    point: Point


def gather_candidates(
    sources: Mapping[Path, ExperimentConfig], wanted: Callable[[Path, MemberSpec], bool]
) -> tuple[list[dict[str, Any]], dict[str, Candidate]]:
    """(the rows of the finished members of `sources` (folder -> its settings) that `wanted(exp,
    spec)` keeps, each with its candidate label in `grid_point` and the readings `select_points`
    ranks by; label -> Candidate). The caller checks the sources alike first (`check_alike`)."""
    rows: list[dict[str, Any]] = []
    points: dict[str, Candidate] = {}
    for exp, source in sources.items():
        for spec, row in finished_rows(exp):
            if not wanted(exp, spec):
                continue
            point = spec.grid or {LR: source.train.lr, WEIGHT_DECAY: source.train.weight_decay}
            label = f"{point_label(point)} in {exp}"
            points[label] = Candidate(exp, source, point)
            rows.append({**row, GRID_POINT: label, LR: point[LR], WEIGHT_DECAY: point[WEIGHT_DECAY]})
    add_summed_translation(rows)
    add_val_min_mean(rows)
    return rows, points


def finished_rows(exp: Path) -> list[tuple[MemberSpec, dict[str, Any]]]:
    """(spec, row) of every member in a finished chunk of `exp`."""
    folders = sorted({folder for folder, _ in finished_members(exp).values()})
    pairs = [zip(chunk_members(folder), read_chunk_rows(folder), strict=True) for folder in folders]
    return [pair for chunk in pairs for pair in chunk]


def check_alike(
    exp: Path,
    source: ExperimentConfig,
    like: ExperimentConfig,
    option: str,
    presets: Collection[str] | None = None,
) -> None:
    """Refuse a source whose validation loss is of other directions, or whose presets (those named
    in `presets`, or all) weigh their losses otherwise: its members would not be candidates for the
    same choice."""
    if sorted(source.domains) != sorted(like.domains):
        raise UserError(
            f"{option} {exp}: it trained {','.join(source.domains)}, not {','.join(like.domains)}; "
            "choose only among experiments of the same domains"
        )
    theirs, ours = source.preset_values(), like.preset_values()
    for name in set(theirs) & set(ours) & set(theirs if presets is None else presets):
        if theirs[name].coefficients != ours[name].coefficients:
            raise UserError(
                f"{option} {exp}: its {name} weighs {theirs[name].coefficients}, not "
                f"{ours[name].coefficients}; give every experiment the same weights (--define)"
            )


def check_same_sizes(
    exp: Path,
    source: ExperimentConfig,
    like: ExperimentConfig,
    option: str,
    fix: str,
    point: Point | None = None,
) -> None:
    """Refuse a source that built networks of other sizes (at `point`, for a grid's) than `like`
    would build: its members would not be candidates for the same choice."""
    dims = dict.fromkeys(like.domains, 1)
    theirs, ours = source.workspace(dims, point), like.workspace(dims, point)
    if theirs != ours:
        raise UserError(
            f"{option} {exp}: it trained networks of workspace {theirs.workspace_dim}, width "
            f"{theirs.width}, depth {theirs.depth}, not {ours.workspace_dim}, {ours.width}, {ours.depth} "
            f"(or other per-domain sizes); {fix}"
        )
