"""The attribute domain `attr`: a dataset's label columns as a normalised vector (docs/design.md §2).

For Simple Shapes the latent is exactly the 11 numbers of the reference, each in [-1, 1]:
one-hot class (3), x, y, size, cos θ, sin θ, r, g, b with x' = 2(x - 7)/18 - 1 (same for y),
size' = 2(size - 7)/7 - 1, c' = 2c/255 - 1. Other datasets (Factory: x, y, rotation, r, g, b, no
class) get the same treatment from their label columns, with ranges taken from the train split.

Nothing is trained; decoding inverts the maps back to the dataset's units (`Attributes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.format import Dataset, Split
from ..errors import UserError
from .base import Domain
from .latent_loss import LatentLoss
from .registry import register_domain

CLASS_COLUMNS = ("class", "shape", "category")
ROTATION_COLUMNS = ("rotation", "theta", "angle")
LINEAR_COLUMNS = ("x", "y", "size", "r", "g", "b")
"""Continuous columns in the order they enter the vector (rotation goes after size)."""

REFERENCE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "simple-shapes": {
        "x": (7.0, 25.0),
        "y": (7.0, 25.0),
        "size": (7.0, 14.0),
        "r": (0.0, 255.0),
        "g": (0.0, 255.0),
        "b": (0.0, 255.0),
    }
}
"""Fixed normalisation of the reference (docs/design.md §2); other datasets use train min/max."""


@dataclass(frozen=True)
class Attributes:
    """Attributes of N examples in the dataset's own units, one column per label column.

    values: float64 (N, len(columns)); the class column holds 0, 1, 2, ...; rotation in radians
    in [0, 2π); NaN where an attribute is unknown (a caption that did not parse, a column this
    source cannot produce). valid: bool (N,), False for an example that could not be read at all.
    """

    columns: tuple[str, ...]
    values: np.ndarray
    valid: np.ndarray
    from_captions: bool = False
    """Read from decoded captions: the errors then include the parse rate."""

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    @classmethod
    def concat(cls, parts: list[Attributes]) -> Attributes:
        return cls(
            parts[0].columns,
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.valid for p in parts]),
            parts[0].from_captions,
        )


def attribute_errors(pred: Attributes, labels: np.ndarray, label_columns: list[str]) -> dict[str, float]:
    """Compare predicted attributes with true label rows (N, C) in the dataset's units.

    - shape_accuracy: fraction of examples whose class is right (an unreadable one counts as
      wrong); absent when the dataset has no class column.
    - position_error_px: mean Euclidean distance between predicted and true (x, y).
    - size_error_px: mean absolute size difference (absent without a size column).
    - rotation_error_deg: mean absolute angular difference, in [0, 180].
    - color_error: mean Euclidean distance between predicted and true (r, g, b) in 0–255 units,
      divided by 255: 0 is exact, √3 the largest possible; 0.1 is about 15 units on each channel.
    - parse_rate (attributes read from captions only): fraction of captions that parsed.
    The continuous errors average over the examples whose attribute is known (not NaN); one that
    no example allows (no caption parsed) is left out, since it cannot be measured.
    """
    labels = np.asarray(labels, dtype=np.float64)
    if labels.shape != pred.values.shape:
        raise ValueError(f"labels {labels.shape} and predictions {pred.values.shape} differ in shape")
    roles = column_roles(list(label_columns))

    def both(role: str) -> tuple[np.ndarray, np.ndarray]:
        i = list(label_columns).index(roles[role])
        return pred.values[:, i], labels[:, i]

    out: dict[str, float] = {}

    def put_mean(key: str, err: np.ndarray) -> None:
        ok = np.isfinite(err)
        if ok.any():
            out[key] = float(err[ok].mean())

    if "class" in roles:
        p, t = both("class")
        out["shape_accuracy"] = float(np.mean(np.where(np.isfinite(p), p, -1) == t))
    if "x" in roles and "y" in roles:
        (px, tx), (py, ty) = both("x"), both("y")
        put_mean("position_error_px", np.hypot(px - tx, py - ty))
    if "size" in roles:
        p, t = both("size")
        put_mean("size_error_px", np.abs(p - t))
    if "rotation" in roles:
        p, t = both("rotation")
        diff = np.abs(np.mod(p - t + np.pi, 2 * np.pi) - np.pi)
        put_mean("rotation_error_deg", np.degrees(diff))
    if all(c in roles for c in ("r", "g", "b")):
        pairs = [both(c) for c in ("r", "g", "b")]
        dist = np.sqrt(sum((p - t) ** 2 for p, t in pairs)) / 255.0
        put_mean("color_error", dist)
    if pred.from_captions and len(pred):
        out["parse_rate"] = float(pred.valid.mean())
    return out


def column_roles(label_columns: list[str]) -> dict[str, str]:
    """Canonical role ("class", "x", ..., "rotation", "r") -> the dataset's column name."""
    roles: dict[str, str] = {}
    for col in label_columns:
        low = col.lower()
        if low in CLASS_COLUMNS:
            roles["class"] = col
        elif low in ROTATION_COLUMNS:
            roles["rotation"] = col
        elif low in LINEAR_COLUMNS:
            roles[low] = col
    return roles


def attribute_layout(dataset: Dataset) -> dict[str, Any]:
    """The settings of an AttrDomain for `dataset`: its columns, how many classes, which ranges."""
    info = dataset.info
    roles = column_roles(info.label_columns)
    if not roles:
        raise UserError(
            f"dataset {dataset.path} has no attribute columns this library knows "
            f"(columns {info.label_columns}); the attr domain cannot describe it"
        )
    train = dataset.split("train").labels
    n_classes = 0
    if "class" in roles:
        classes = train[:, info.label_columns.index(roles["class"])]
        n_classes = 3 if info.name == "simple-shapes" else int(np.max(classes)) + 1
    fixed = REFERENCE_RANGES.get(info.name, {})
    ranges = {}
    for role in LINEAR_COLUMNS:
        if role not in roles:
            continue
        if role in fixed:
            ranges[role] = list(fixed[role])
        else:
            values = train[:, info.label_columns.index(roles[role])]
            lo, hi = float(np.min(values)), float(np.max(values))
            ranges[role] = [lo, hi if hi > lo else lo + 1.0]
    return {"label_columns": list(info.label_columns), "n_classes": n_classes, "ranges": ranges}


@register_domain
class AttrDomain(Domain):
    """Label rows -> normalised vector (class one-hot, continuous values, cos/sin of rotation)."""

    kind = "attr"

    def __init__(
        self,
        name: str | None = None,
        label_columns: list[str] | None = None,
        n_classes: int = 0,
        ranges: dict[str, list[float]] | None = None,
    ) -> None:
        super().__init__(name)
        self._setup(list(label_columns or []), int(n_classes), ranges or {})

    def _setup(self, label_columns: list[str], n_classes: int, ranges: dict[str, list[float]]) -> None:
        self.label_columns = label_columns
        self.roles = column_roles(label_columns)
        self.n_classes = n_classes
        self.ranges = {k: (float(v[0]), float(v[1])) for k, v in ranges.items()}
        self.before: list[str] = [r for r in ("x", "y", "size") if r in self.ranges]
        self.after: list[str] = [r for r in ("r", "g", "b") if r in self.ranges]
        self.has_rotation = "rotation" in self.roles
        self.latent_dim = n_classes + len(self.before) + 2 * self.has_rotation + len(self.after)
        self.loss = LatentLoss(categorical=n_classes)

    def config(self) -> dict[str, Any]:
        return {
            "label_columns": list(self.label_columns),
            "n_classes": self.n_classes,
            "ranges": {k: list(v) for k, v in self.ranges.items()},
        }

    def fit(self, dataset: Dataset, settings: Any) -> dict[str, float]:
        """Nothing to learn: read the columns and (outside Simple Shapes) the train ranges."""
        layout = attribute_layout(dataset)
        self._setup(layout["label_columns"], layout["n_classes"], layout["ranges"])
        return {}

    def raw(self, split: Split) -> np.ndarray:
        return np.asarray(split.labels, dtype=np.float32)

    def encode(self, raw: Any) -> torch.Tensor:
        """Label rows (N, C), C = len(label_columns) in the dataset's units -> (N, latent_dim)."""
        labels = np.asarray(raw, dtype=np.float64)
        if not self.label_columns:
            raise UserError("the attr domain has not been set up from a dataset; run `gw pretrain` first")
        if labels.ndim != 2 or labels.shape[1] != len(self.label_columns):
            raise UserError(
                f"attr.encode expects labels (N, {len(self.label_columns)}), got shape {labels.shape}"
            )
        col = {role: labels[:, self.label_columns.index(name)] for role, name in self.roles.items()}
        parts: list[np.ndarray] = []
        if self.n_classes:
            classes = col["class"]
            bad = ~np.isin(classes, np.arange(self.n_classes))
            if bad.any():
                raise UserError(
                    f"attr.encode: class {classes[bad][0]:g} (row {int(np.argmax(bad))}) is not one of the "
                    f"{self.n_classes} classes 0..{self.n_classes - 1} this domain was set up with; "
                    "fix the labels"
                )
            parts.append(np.eye(self.n_classes)[classes.astype(np.int64)])
        parts += [self._scale(col[r], r)[:, None] for r in self.before]
        if self.has_rotation:
            parts += [np.cos(col["rotation"])[:, None], np.sin(col["rotation"])[:, None]]
        parts += [self._scale(col[r], r)[:, None] for r in self.after]
        return torch.from_numpy(np.concatenate(parts, axis=1).astype(np.float32))

    def decode(self, latent: torch.Tensor) -> Attributes:
        """(N, latent_dim) vectors (a prediction or the truth) -> attributes in the dataset's units.

        Columns the vector does not describe (none for the datasets here) are NaN, and so is the
        class of a row whose class block holds NaN or infinity: argmax would read it as class 0,
        right by chance, where attribute_errors must count it wrong.
        """
        z = latent.detach().to("cpu", torch.float64).numpy()
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise UserError(f"attr.decode expects (N, {self.latent_dim}) latents, got {tuple(z.shape)}")
        out: dict[str, np.ndarray] = {}
        at = self.n_classes
        if self.n_classes:
            block = z[:, :at]
            out["class"] = np.where(np.isfinite(block).all(axis=1), block.argmax(axis=1), np.nan)
        for role in self.before:
            out[role] = self._unscale(z[:, at], role)
            at += 1
        if self.has_rotation:
            out["rotation"] = np.mod(np.arctan2(z[:, at + 1], z[:, at]), 2 * math.pi)
            at += 2
        for role in self.after:
            out[role] = self._unscale(z[:, at], role)
            at += 1
        values = np.full((len(z), len(self.label_columns)), np.nan)
        for role, v in out.items():
            values[:, self.label_columns.index(self.roles[role])] = v
        return Attributes(tuple(self.label_columns), values, np.ones(len(z), dtype=bool))

    def _scale(self, values: np.ndarray, role: str) -> np.ndarray:
        lo, hi = self.ranges[role]
        return 2.0 * (values - lo) / (hi - lo) - 1.0

    def _unscale(self, values: np.ndarray, role: str) -> np.ndarray:
        lo, hi = self.ranges[role]
        return (values + 1.0) / 2.0 * (hi - lo) + lo
