"""A tuning grid for the semi-supervision experiment, and the choice of a point on validation.

The paper chose the full model's loss coefficients per pair count as the argmin of a grid on the
validation loss (docs/design.md §12). `--grid` does that for every preset, and `--grid-lr` and
`--grid-wd` add learning rate and weight decay for every preset, so that `tr` gets the same tuning
budget as `full` (docs/design.md §13: a ratio that exists only because `tr` is under-tuned is not the
paper's claim).

A grid point of a preset is one value for each gridded coefficient the preset uses (a coefficient
it does not use stays off), one learning rate and one weight decay. Each point × pair count × seed
is one ensemble member (`MemberSpec.grid`). For every (preset, N), the point with the lowest mean
over seeds of the validation minimum (`VAL_MIN_MEAN`) is kept; test metrics never take part.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError
from ..workspace.presets import ALIASES, PRESETS, SHORT_NAMES, coefficient_names, point_label
from ..workspace.settings import WorkspaceConfig, drop_unset, format_domain_sizes, parse_domain_sizes
from .efficiency import VAL_MIN_MEAN

LR, WEIGHT_DECAY = "lr", "weight_decay"
"""Keys of a member's grid point besides its coefficients (and results.csv columns)."""
WIDTH, DEPTH = "width", "depth"
"""Keys of an architecture grid's point (`--grid-width`, `--grid-depth`): members of other sizes
train in other ensembles, as those of another lr do. A point of `--grid-domain-width` or
`--grid-domain-depth` sets a domain's own size under the key `width/{domain}` or `depth/{domain}`."""
ARCHITECTURE = (WIDTH, DEPTH)
DOMAIN_WIDTH, DOMAIN_DEPTH = "domain_width", "domain_depth"
"""results.csv columns and selection.json keys of a point's per-domain sizes, written `v=512,attr=64`
(`format_domain_sizes`); also the `Grid` fields of those axes."""
DOMAIN_SIZES = {WIDTH: DOMAIN_WIDTH, DEPTH: DOMAIN_DEPTH}
GRID_POINT = "grid_point"
"""results.csv column: the label of a member's grid point (`point_label`)."""
COEFFICIENT_PREFIX = "coefficient/"
"""results.csv columns of a gridded member's loss coefficients, `coefficient/{category}`."""


@dataclass(frozen=True)
class Grid:
    """The values to try: per coefficient category, and learning rates and weight decays."""

    coefficients: dict[str, list[float]]
    """Category -> values, in the order given on the command line."""
    lr: list[float]
    weight_decay: list[float]
    width: list[int] = field(default_factory=list)
    """Hidden widths to try; empty: the experiment's one width (and no `width` in the points)."""
    depth: list[int] = field(default_factory=list)
    """Layers per encoder and decoder to try; empty: the experiment's one depth."""
    domain_width: list[dict[str, int]] = field(default_factory=list)
    """Per-domain widths to try, each point a few domains' widths on top of the others' width."""
    domain_depth: list[dict[str, int]] = field(default_factory=list)
    """Per-domain depths to try, as `domain_width`."""

    def points(self, coefficients: Mapping[str, float]) -> list[dict[str, float]]:
        """The grid points of a preset with these weights: lr, weight decay, the architecture's
        gridded sizes (per-domain ones as `width/{domain}`) and the varied categories."""
        varied = [c for c in self.coefficients if coefficients.get(c, 0.0) > 0]
        sizes = [[{k: float(v)} for v in values] for k, values in ((WIDTH, self.width), (DEPTH, self.depth))]
        sizes += [
            [{f"{kind}/{d}": float(v) for d, v in point.items()} for point in points]
            for kind, points in ((WIDTH, self.domain_width), (DEPTH, self.domain_depth))
        ]
        axes = [
            [{LR: v} for v in self.lr],
            [{WEIGHT_DECAY: v} for v in self.weight_decay],
            *(axis for axis in sizes if axis),  # an axis not gridded sets nothing
            *([{c: v} for v in self.coefficients[c]] for c in varied),
        ]
        return [{k: v for part in parts for k, v in part.items()} for parts in itertools.product(*axes)]

    def to_json(self) -> dict[str, Any]:
        """The grid as stored in experiment.json; the architecture lists only where gridded, so
        that gridded experiments made before they existed keep their identity and resume."""
        return drop_unset(asdict(self), (*ARCHITECTURE, DOMAIN_WIDTH, DOMAIN_DEPTH))


def point_coefficients(base: Mapping[str, float], point: Mapping[str, float]) -> dict[str, float]:
    """A preset's weights with those of its grid point in place."""
    sizes = point_sizes(point)
    return {**base, **{c: v for c, v in point.items() if c not in (LR, WEIGHT_DECAY, *sizes)}}


def point_sizes(point: Mapping[str, float] | None) -> dict[str, int]:
    """The architecture sizes a grid point sets (`width`, `depth`, `width/{domain}`,
    `depth/{domain}`); empty outside an architecture grid."""
    if point is None:
        return {}
    return {k: int(v) for k, v in point.items() if k.partition("/")[0] in ARCHITECTURE}


def _domain_sizes(sizes: Mapping[str, int], kind: str) -> dict[str, int]:
    """{"width/v": 512} -> {"v": 512}: the per-domain sizes of `kind` (`width` or `depth`)."""
    return {k.partition("/")[2]: v for k, v in sizes.items() if k.startswith(f"{kind}/")}


def point_workspace(base: WorkspaceConfig, point: Mapping[str, float] | None) -> WorkspaceConfig:
    """`base` with the sizes a grid point sets: its width and depth, and its domains' own sizes
    on top of `base`'s."""
    sizes = point_sizes(point)
    return dataclasses.replace(
        base,
        width=sizes.get(WIDTH, base.width),
        depth=sizes.get(DEPTH, base.depth),
        domain_width={**base.domain_width, **_domain_sizes(sizes, WIDTH)},
        domain_depth={**base.domain_depth, **_domain_sizes(sizes, DEPTH)},
    )


def size_columns(point: Mapping[str, float] | None) -> dict[str, int | str]:
    """A point's sizes in results.csv and selection.json: `width`, `depth`, and `domain_width`,
    `domain_depth` written `v=512,attr=64`; only those the grid varies."""
    sizes = point_sizes(point)
    columns: dict[str, int | str] = {k: sizes[k] for k in ARCHITECTURE if k in sizes}
    for kind, column in DOMAIN_SIZES.items():
        if own := _domain_sizes(sizes, kind):
            columns[column] = format_domain_sizes(own)
    return columns


def known_categories() -> list[str]:
    """Coefficient categories a grid may name: those of any built-in preset."""
    return sorted({c for p in PRESETS.values() for c in p.coefficients})


def parse_values(option: str, text: str, positive: bool) -> list[float]:
    """`0.1,1` -> [0.1, 1.0]; each a finite number (> 0 if `positive`, else >= 0), none twice."""
    values: list[float] = []
    for item in (i.strip() for i in text.split(",")):
        try:
            value = float(item)
        except ValueError:
            raise UserError(f"{option} {text!r}: {item!r} is not a number") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "> 0" if positive else ">= 0"
            raise UserError(f"{option} {text!r}: every value must be a finite number {bound}, got {item!r}")
        if value in values:
            raise UserError(f"{option} {text!r} gives {item} twice")
        values.append(value)
    return values


def parse_coefficient_grid(text: str) -> dict[str, list[float]]:
    """`dcy=0.1,1;cy=0.1,1` -> {"demi_cycle": [0.1, 1.0], "cycle": [0.1, 1.0]}."""
    known = known_categories()
    grid: dict[str, list[float]] = {}
    for item in (i.strip() for i in text.split(";")):
        if not item:
            continue
        name, sep, values = item.partition("=")
        category = ALIASES.get(name.strip(), name.strip())
        if not sep or not values.strip():
            raise UserError(
                f"--grid {text!r}: write NAME=V1,V2;NAME=V1,V2 (e.g. dcy=0.1,1;cy=0.1,1), not {item!r}"
            )
        if category not in known:
            names = ", ".join(coefficient_names(known))
            raise UserError(f"--grid {text!r}: unknown coefficient {name.strip()!r}; use one of {names}")
        if category in grid:
            raise UserError(f"--grid {text!r} names {name.strip()!r} twice")
        grid[category] = parse_values(f"--grid {name.strip()}", values, positive=False)
    if not grid:
        raise UserError(f"--grid {text!r} names no coefficient; write e.g. dcy=0.1,1;cy=0.1,1")
    return grid


def parse_sizes(option: str, text: str) -> list[int]:
    """`32,256` -> [32, 256]; each a whole number >= 1, none twice."""
    sizes: list[int] = []
    for item in (i.strip() for i in text.split(",")):
        try:
            size = int(item)
        except ValueError:
            size = 0
        if size < 1:
            raise UserError(f"{option} {text!r}: every value must be a whole number >= 1, got {item!r}")
        if size in sizes:
            raise UserError(f"{option} {text!r} gives {item} twice")
        sizes.append(size)
    return sizes


def parse_domain_points(option: str, text: str, domains: Sequence[str]) -> list[dict[str, int]]:
    """`v=256/v=512,attr=64` -> [{"v": 256}, {"v": 512, "attr": 64}]: grid points separated by `/`,
    each a few domains' sizes (`parse_domain_sizes`); none empty, none twice."""
    points: list[dict[str, int]] = []
    for item in (i.strip() for i in text.split("/")):
        if not item:
            raise UserError(
                f"{option} {text!r} has an empty point; write points as DOMAIN=SIZE,... separated by / "
                "(e.g. v=256/v=512,attr=64)"
            )
        point = parse_domain_sizes(f"{option} {text!r}: point", item, domains)
        if point in points:
            raise UserError(f"{option} {text!r} gives {item} twice")
        points.append(point)
    return points


def parse_grid(
    coefficients: str,
    lr: str,
    weight_decay: str,
    default_lr: float,
    default_weight_decay: float,
    width: str = "",
    depth: str = "",
    domain_width: str = "",
    domain_depth: str = "",
    domains: Sequence[str] = (),
) -> Grid | None:
    """The grid of `--grid`, `--grid-lr`, `--grid-wd`, `--grid-width`, `--grid-depth`,
    `--grid-domain-width` and `--grid-domain-depth` (whose points name some of `domains`); None
    when none of them is given."""
    texts = (coefficients, lr, weight_decay, width, depth, domain_width, domain_depth)
    if not any(t.strip() for t in texts):
        return None
    return Grid(
        coefficients=parse_coefficient_grid(coefficients) if coefficients.strip() else {},
        lr=parse_values("--grid-lr", lr, positive=True) if lr.strip() else [default_lr],
        weight_decay=parse_values("--grid-wd", weight_decay, positive=False)
        if weight_decay.strip()
        else [default_weight_decay],
        width=parse_sizes("--grid-width", width) if width.strip() else [],
        depth=parse_sizes("--grid-depth", depth) if depth.strip() else [],
        domain_width=parse_domain_points("--grid-domain-width", domain_width, domains)
        if domain_width.strip()
        else [],
        domain_depth=parse_domain_points("--grid-domain-depth", domain_depth, domains)
        if domain_depth.strip()
        else [],
    )


def check_grid(grid: Grid, weights: Mapping[str, Mapping[str, float]]) -> None:
    """Refuse a grid coefficient that no preset uses (a typo would tune nothing) and a point that
    switches every loss of a preset off."""
    for category in grid.coefficients:
        if not any(w.get(category, 0.0) > 0 for w in weights.values()):
            raise UserError(
                f"--grid varies {SHORT_NAMES.get(category, category)}, which none of the presets "
                f"{', '.join(weights)} uses"
            )
    for name, base in weights.items():
        for point in grid.points(base):
            if not any(point_coefficients(base, point).values()):
                raise UserError(f"--grid point {point_label(point)} switches every loss of {name} off")


def select_points(rows: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(the rows of each (preset, N)'s chosen grid point, selection.json).

    The chosen point has the lowest mean over seeds of `VAL_MIN_MEAN`; a point where a seed has no
    finite value ranks last. A preset without a validation translation loss (`cont`) keeps its first
    point. Test metrics are read only to report how the choice scores."""
    chosen_rows: list[dict[str, Any]] = []
    selected = []
    for (preset, paired), group in _groups(rows).items():
        by_point: dict[str, list[Mapping[str, Any]]] = {}
        for r in group:
            by_point.setdefault(str(r[GRID_POINT]), []).append(r)
        scores = {label: _mean_over_seeds(members, VAL_MIN_MEAN) for label, members in by_point.items()}
        label = min(
            scores, key=lambda k: (math.inf if scores[k] is None else scores[k], list(scores).index(k))
        )
        first = by_point[label][0]
        selected.append(
            {
                "preset": preset,
                "paired": paired,
                GRID_POINT: label,
                LR: first[LR],
                WEIGHT_DECAY: first[WEIGHT_DECAY],
                **{k: int(first[k]) for k in ARCHITECTURE if k in first},
                **{k: str(first[k]) for k in (DOMAIN_WIDTH, DOMAIN_DEPTH) if k in first},
                "coefficients": {
                    k[len(COEFFICIENT_PREFIX) :]: v
                    for k, v in first.items()
                    if k.startswith(COEFFICIENT_PREFIX)
                },
                "validation": scores[label],
                "test": _mean_over_seeds(by_point[label], "translation/sum/latent_mse"),
                "points": [{GRID_POINT: k, "validation": v} for k, v in scores.items()],
                "note": ""
                if scores[label] is not None
                else "no validation translation loss; first point kept",
            }
        )
        chosen_rows += [dict(r) for r in by_point[label]]
    selection = {
        "metric": VAL_MIN_MEAN,
        "aggregate_over_seeds": "mean",
        "rule": "per (preset, pair count), the grid point with the lowest mean over seeds of the metric, "
        "which is read on the validation split (in an architecture grid its width and depth too, so "
        "the points of one curve may differ in size); `test` is the chosen point's mean summed test "
        "translation loss, for reference only",
        "selected": selected,
    }
    return chosen_rows, selection


def chosen_points(selection: Mapping[str, Any]) -> dict[tuple[str, int], str]:
    """(preset, N) -> label of the chosen grid point, from selection.json."""
    return {(s["preset"], int(s["paired"])): s[GRID_POINT] for s in selection["selected"]}


def _groups(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], list[Mapping[str, Any]]]:
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((str(r["preset"]), int(r["paired"])), []).append(r)
    return groups


def _mean_over_seeds(rows: Sequence[Mapping[str, Any]], metric: str) -> float | None:
    """The mean of `metric` over rows; None when a row lacks a finite value."""
    values = [r.get(metric) for r in rows]
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return None
    return float(np.mean([float(v) for v in values]))  # type: ignore[arg-type]
