"""Scoring captions: parse them with the dataset's caption parser and compare with the truth.

Two views of a decoded caption:
- `caption_attributes`: approximate attributes in the dataset's units (cell and bin centres, the
  colour name's RGB), NaN for a caption that does not parse; what `attribute_errors` compares.
- `caption_scores`: the categories a caption states against those of the true labels. Simple
  Shapes: class, size bin, colour name, location cell (3×3 grid, whatever the wording) and 8-way
  rotation sector. Factory: colour name, region cell (3×3), 8-way direction and landmark.
A caption that does not parse counts as wrong on every category.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import captions as shapes
from ..data.colors import COLOR_NAMES, nearest_color
from ..data.factory import captions as factory
from ..errors import NoReadout
from .attr import Attributes

Categories = dict[str, object]


@dataclass(frozen=True)
class CaptionGrammar:
    """How one dataset's captions are read back."""

    parse: Callable[[str], Any]
    """Caption -> parsed object; ValueError for text outside the grammar."""
    columns: tuple[str, ...]
    """Label columns of `approximate`'s rows."""
    approximate: Callable[[Any], np.ndarray]
    categories: Callable[[Any], Categories]
    truth: Callable[[np.ndarray], list[Categories]]
    """Label rows (in `columns` order) -> the categories a correct caption states."""


def _shapes_categories(p: shapes.CaptionAttributes) -> Categories:
    return {
        "class": p.shape,
        "size_bin": p.size_bin,
        "color_name": p.color,
        "location_cell": (p.coarse_x, p.coarse_y),
        "rotation_sector": p.rotation_sector8,
    }


def _shapes_truth(labels: np.ndarray) -> list[Categories]:
    size = shapes.size_bin(labels[:, 3])
    cx, _ = shapes.location_bins(labels[:, 1])
    cy, _ = shapes.location_bins(labels[:, 2])
    sector, _ = shapes.rotation_sectors(labels[:, 4])
    colour = nearest_color(np.rint(labels[:, 5:8]))
    return [
        {
            "class": int(labels[i, 0]),
            "size_bin": int(size[i]),
            "color_name": COLOR_NAMES[int(colour[i])],
            "location_cell": (int(cx[i]), int(cy[i])),
            "rotation_sector": int(sector[i]),
        }
        for i in range(len(labels))
    ]


def _factory_categories(p: factory.FactoryCaption) -> Categories:
    return {
        "color_name": p.color,
        "location_cell": (p.region_x, p.region_y),
        "rotation_sector": p.direction,
        "landmark": p.landmark,
    }


GRAMMARS: dict[str, CaptionGrammar] = {
    "simple-shapes": CaptionGrammar(
        parse=shapes.parse_caption,
        columns=("class", "x", "y", "size", "rotation", "r", "g", "b"),
        approximate=lambda p: p.approximate_labels(),
        categories=_shapes_categories,
        truth=_shapes_truth,
    ),
    "factory": CaptionGrammar(
        parse=factory.parse_factory_caption,
        columns=("x", "y", "rotation", "r", "g", "b"),
        approximate=factory.approximate_labels,
        categories=_factory_categories,
        truth=lambda labels: [_factory_categories(c) for c in factory.describe(labels)],
    ),
}


def grammar(dataset_name: str) -> CaptionGrammar:
    if dataset_name not in GRAMMARS:
        raise NoReadout(f"captions of dataset {dataset_name!r} have no parser; known: {', '.join(GRAMMARS)}")
    return GRAMMARS[dataset_name]


def parse_all(captions: list[str], dataset_name: str) -> list[Any | None]:
    """Parse each caption with the dataset's grammar; None where the parser refuses it."""
    parse = grammar(dataset_name).parse
    out: list[Any | None] = []
    for text in captions:
        try:
            out.append(parse(text))
        except ValueError:
            out.append(None)
    return out


def caption_attributes(parsed: list[Any | None], dataset_name: str, label_columns: list[str]) -> Attributes:
    """Approximate attributes (N, len(label_columns)); NaN rows for unparsed captions."""
    g = grammar(dataset_name)
    values = np.full((len(parsed), len(label_columns)), np.nan)
    where = [(j, label_columns.index(c)) for j, c in enumerate(g.columns) if c in label_columns]
    for i, p in enumerate(parsed):
        if p is not None:
            row = g.approximate(p)
            for j, col in where:
                values[i, col] = row[j]
    valid = np.array([p is not None for p in parsed], dtype=bool)
    return Attributes(tuple(label_columns), values, valid, from_captions=True)


def caption_scores(
    parsed: list[Any | None], dataset_name: str, labels: np.ndarray, label_columns: list[str]
) -> dict[str, float]:
    """parse_rate and `{category}_accuracy` for each category the grammar states."""
    g = grammar(dataset_name)
    rows = np.asarray(labels, dtype=np.float64)[:, [label_columns.index(c) for c in g.columns]]
    truth = g.truth(rows)
    out = {"parse_rate": float(np.mean([p is not None for p in parsed])) if parsed else float("nan")}
    keys = list(truth[0]) if truth else []
    for key in keys:
        hits = [p is not None and g.categories(p)[key] == t[key] for p, t in zip(parsed, truth, strict=True)]
        out[f"{key}_accuracy"] = float(np.mean(hits))
    return out
