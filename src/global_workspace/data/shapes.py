"""The three Simple Shapes classes as convex polygons in the unit square, and their placement.

Conventions (docs/design.md §1): coordinates in pixels of the 32-pixel canvas, origin at the bottom
left, y up. A unit-square point q is placed at `p = (x, y) + size · R(θ) · (q − (0.5, 0.5))`,
R the counter-clockwise rotation, so every class points north at θ = 0 and west at θ = π/2.

The egg's four cubic Bézier curves are flattened into straight segments (8 per curve, 32 edges),
close enough that the error is a small fraction of the one-pixel antialiasing ramp (docs/results.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLASS_NAMES = ("diamond", "egg", "triangle")
CANVAS = 32.0  # positions and sizes are defined on a 32-pixel canvas
BEZIER_SEGMENTS = 8
SHARP_CORNER_DEG = 120.0  # corners with a smaller interior angle get a supporting line

_KITE = ((0.5, 0.0), (1.0, 0.3), (0.5, 1.0), (0.0, 0.3))
_TRIANGLE = ((0.5, 1.0), (0.2, 0.0), (0.8, 0.0))
_EGG_START = (0.5, 0.0)
_EGG_CURVES = (  # (control 1, control 2, end) of each cubic, starting from the previous end
    ((0.8, 0.0), (0.9, 0.1), (0.9, 0.3)),
    ((0.9, 0.5), (0.7, 1.0), (0.5, 1.0)),
    ((0.3, 1.0), (0.1, 0.5), (0.1, 0.3)),
    ((0.1, 0.1), (0.2, 0.0), (0.5, 0.0)),
)


def flatten_cubics(
    start: tuple[float, float],
    curves: tuple[tuple[tuple[float, float], ...], ...],
    segments: int = BEZIER_SEGMENTS,
) -> np.ndarray:
    """Vertices (K, 2) of the polyline through each cubic Bézier at `segments` equal parameter steps.

    The start point is not repeated at the front: the last vertex is the last curve's end.
    """
    t = np.linspace(0.0, 1.0, segments + 1)[1:, None]
    points = []
    p0 = np.asarray(start, dtype=np.float64)
    for c1, c2, end in curves:
        p1, p2, p3 = (np.asarray(c, dtype=np.float64) for c in (c1, c2, end))
        u = 1.0 - t
        points.append(u**3 * p0 + 3 * u**2 * t * p1 + 3 * u * t**2 * p2 + t**3 * p3)
        p0 = p3
    return np.concatenate(points)  # ends on the last curve's end point, the start of a closed path


def _counter_clockwise(vertices: np.ndarray) -> np.ndarray:
    x, y = vertices[:, 0], vertices[:, 1]
    area2 = float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    return vertices if area2 > 0 else vertices[::-1]


@dataclass(frozen=True)
class ShapeClass:
    """One class: its unit-square polygon and the half-planes whose intersection it is.

    A unit-square point q is inside when `normals @ q >= offsets` for every line; `normals`
    are unit inward normals, so `normals @ q − offsets` is a distance in unit-square units.
    The lines are the edges, then one supporting line at each sharp corner (see _make_class).
    """

    index: int
    name: str
    vertices: np.ndarray  # (K, 2) counter-clockwise
    normals: np.ndarray  # (E, 2) unit inward normals: edge k (vertex k to k+1), then corner lines
    offsets: np.ndarray  # (E,)

    @property
    def area(self) -> float:
        x, y = self.vertices[:, 0], self.vertices[:, 1]
        return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))

    @property
    def radius(self) -> float:
        """Largest distance from the box centre (0.5, 0.5) to the shape, unit-square units."""
        return float(np.max(np.linalg.norm(self.vertices - 0.5, axis=1)))

    @property
    def centroid(self) -> np.ndarray:
        """Area centroid in unit-square coordinates (not the box centre (0.5, 0.5))."""
        x, y = self.vertices[:, 0], self.vertices[:, 1]
        cross = x * np.roll(y, -1) - np.roll(x, -1) * y
        cx = np.sum((x + np.roll(x, -1)) * cross)
        cy = np.sum((y + np.roll(y, -1)) * cross)
        return np.array([cx, cy]) / (6.0 * self.area)


def _make_class(index: int, vertices: np.ndarray) -> ShapeClass:
    vertices = _counter_clockwise(np.asarray(vertices, dtype=np.float64))
    edges = np.roll(vertices, -1, axis=0) - vertices
    normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1)  # left of a CCW edge is inside
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    offsets = np.sum(normals * vertices, axis=1)
    inside = normals @ vertices.T - offsets[:, None]
    if np.any(inside < -1e-9):
        raise AssertionError(f"shape {CLASS_NAMES[index]} is not convex")
    # Supporting lines at sharp corners, perpendicular to the corner's bisector: they do not cut
    # the shape, but they stop the half-plane distance from overshooting past a sharp tip.
    before = np.roll(normals, 1, axis=0)  # edge k−1 ends at vertex k
    sharp = np.sum(before * normals, axis=1) < math.cos(math.radians(180 - SHARP_CORNER_DEG))
    bisectors = before[sharp] + normals[sharp]
    bisectors /= np.linalg.norm(bisectors, axis=1, keepdims=True)
    normals = np.concatenate([normals, bisectors])
    offsets = np.concatenate([offsets, np.sum(bisectors * vertices[sharp], axis=1)])
    return ShapeClass(index, CLASS_NAMES[index], vertices, normals, offsets)


SHAPES: tuple[ShapeClass, ...] = (
    _make_class(0, np.array(_KITE)),
    _make_class(1, flatten_cubics(_EGG_START, _EGG_CURVES)),
    _make_class(2, np.array(_TRIANGLE)),
)


def place(unit_points: np.ndarray, x: float, y: float, size: float, rotation: float) -> np.ndarray:
    """Unit-square points (K, 2) to canvas coordinates (K, 2), y up."""
    c, s = np.cos(rotation), np.sin(rotation)
    rot = np.array([[c, -s], [s, c]])
    return np.array([x, y]) + size * (np.asarray(unit_points) - 0.5) @ rot.T


def matplotlib_path(
    shape_class: int, x: float, y: float, size: float, rotation: float
) -> tuple[np.ndarray, list[int]]:
    """(vertices, codes) of a matplotlib Path of the placed shape in canvas coordinates.

    Polygons as line segments; the egg as its four true cubic Béziers (codes: 1 MOVETO,
    2 LINETO, 4 CURVE4, 79 CLOSEPOLY), so a vector renderer can be compared with ours.
    """
    if shape_class == 1:
        unit = np.array([_EGG_START, *(p for curve in _EGG_CURVES for p in curve)])
        codes = [1] + [4] * (len(unit) - 1)
    else:
        unit = np.array(_KITE if shape_class == 0 else _TRIANGLE)
        codes = [1] + [2] * (len(unit) - 1)
    vertices = place(unit, x, y, size, rotation)
    return np.vstack([vertices, vertices[:1]]), [*codes, 79]
