"""Grid points chosen by earlier experiments, trained again at another budget (`--points-from`).

A whole grid at a long budget costs hours of a core per point. Tuning on a shorter run and training
only the point each (preset, N) chose there keeps the tuning budget of every preset equal (each is
chosen the same way, on validation) while the long run trains one point per (preset, N).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from ...errors import UserError
from ..grid import chosen_points, select_points
from .candidates import Point, check_alike, check_same_sizes, gather_candidates
from .config import ExperimentConfig
from .resume import read_experiment


def with_points_from(config: ExperimentConfig, sources: Sequence[Path]) -> ExperimentConfig:
    """`config` training, for each of its (preset, N), only the grid point that the finished members
    of `sources` chose on validation (the same rule as a grid's own choice, `grid.select_points`,
    over all their members together)."""
    configs = {exp: read_experiment(exp) for exp in sources}
    for exp, source in configs.items():
        check_alike(exp, source, config, "--points-from")
    rows, points = gather_candidates(
        configs, lambda _, spec: spec.preset in config.presets and spec.paired in config.paired
    )
    chosen = chosen_points(select_points(rows)[1])
    carried: dict[str, dict[str, Point]] = {}
    named = ", ".join(str(p) for p in sources)
    for name in config.presets:
        for n in config.paired:
            if (name, n) not in chosen:
                raise UserError(
                    f"--points-from {named}: no finished member trained {name} with {n} pairs, so no "
                    f"point was chosen for it; add an experiment that did, or leave {n} out of --paired"
                )
            candidate = points[chosen[(name, n)]]
            check_same_sizes(
                candidate.exp,
                candidate.config,
                config,
                "--points-from",
                "give the sizes it used",
                candidate.point,
            )
            carried.setdefault(name, {})[str(n)] = dict(candidate.point)
    return dataclasses.replace(config, grid=None, points=carried, points_from=[str(p) for p in sources])
