"""How a domain's raw data, true or decoded, is shown to a person: images as pictures, captions
and attribute rows as text (the report's translation strips, `gw translate`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.shapes import CLASS_NAMES


def attributes_text(values: np.ndarray, columns: Sequence[str]) -> str:
    """One attribute row in words: `egg, x=12, y=20, size=9.5, θ=45°, r=200, g=30, b=90`."""
    parts = []
    for c, v in zip(columns, values, strict=False):
        if c == "class" and np.isfinite(v) and 0 <= int(v) < len(CLASS_NAMES):
            parts.append(CLASS_NAMES[int(v)])
        elif c == "rotation" and np.isfinite(v):
            parts.append(f"θ={np.degrees(v):.0f}°")
        elif np.isfinite(v):
            parts.append(f"{c}={_number(float(v))}")
    return ", ".join(parts)


def _number(value: float) -> str:
    """Whole numbers from 10 up (pixels, colour levels); two significant digits below, so that
    small units (a position in metres) keep their meaning."""
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2g}"


def displayable(raw: Any, columns: Sequence[str]) -> list[Any]:
    """Per example: an image (H, W, 3) array, or a text (a caption, attributes in words)."""
    if isinstance(raw, np.ndarray) and raw.ndim == 4:
        return list(np.asarray(raw))  # a memory-mapped split becomes plain arrays
    if isinstance(raw, list):
        return [str(c) for c in raw]
    values = getattr(raw, "values", None)
    if values is not None:
        return [attributes_text(v, columns) for v in values]
    if isinstance(raw, np.ndarray) and raw.ndim == 2 and raw.shape[1] == len(columns):
        return [attributes_text(v, columns) for v in raw]  # label rows
    return [str(x) for x in raw]
