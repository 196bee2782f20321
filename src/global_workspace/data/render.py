"""A vectorised, antialiased rasteriser for convex shapes, many images at once.

Every class is a convex polygon, the intersection of its edges' half-planes. For a pixel centre,
the minimum over edges of the signed distance to each edge's line (positive inside) is the
exact signed distance inside the polygon and a close under-estimate of the distance outside
near a corner. Coverage is `clamp(0.5 + d, 0, 1)`: a one-pixel linear ramp across the edge,
which is what box-filtered antialiasing gives for a straight edge crossing a pixel.

The distance to edge e is affine in the pixel centre (u, v) (u = column, v = row from the top):
`d_e = a_e · u + b_e · v + c_e`, so it splits into a per-column term and a per-row term and one
broadcast add per edge. Arithmetic is float32 after the angle's cos/sin are taken in float64,
and every operation is element-wise, so results are the same whatever the batch split.

Image size: positions and sizes are defined on the 32-pixel canvas; rendering at another
`image_size` scales every coordinate by image_size / 32 (the shape keeps its place and
proportion, and edges stay one output pixel wide).
"""

from __future__ import annotations

import numpy as np

from .shapes import CANVAS, SHAPES

BLOCK = 512  # images per inner block: (BLOCK, H, W) float32 stays in cache at 32×32


def edge_coefficients(
    shape_class: int, x: np.ndarray, y: np.ndarray, size: np.ndarray, rotation: np.ndarray, image_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image and edge, (a, b, c) of `d = a·u + b·v + c` in output pixels; each (n, E) float64."""
    shape = SHAPES[shape_class]
    scale = image_size / CANVAS
    cos, sin = np.cos(rotation)[:, None], np.sin(rotation)[:, None]
    nx, ny = shape.normals[None, :, 0], shape.normals[None, :, 1]
    mx = cos * nx - sin * ny  # the inward normal rotated by θ, canvas axes (y up)
    my = sin * nx + cos * ny
    k = shape.normals @ np.array([0.5, 0.5]) - shape.offsets  # distance of the box centre, unit units
    c = scale * (-mx * x[:, None] + my * (CANVAS - y[:, None]) + size[:, None] * k[None, :])
    return mx, -my, c


def coverage(
    shape_class: int,
    x: np.ndarray,
    y: np.ndarray,
    size: np.ndarray,
    rotation: np.ndarray,
    image_size: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Fraction of each pixel covered by the shape, float32 (n, H, W) in [0, 1], rows from the top."""
    n = len(x)
    if out is None:
        out = np.empty((n, image_size, image_size), dtype=np.float32)
    if n == 0:
        return out
    a, b, c = edge_coefficients(shape_class, x, y, size, rotation, image_size)
    centres = np.arange(image_size, dtype=np.float64) + 0.5
    cols = (a[:, :, None] * centres + (c[:, :, None] + 0.5)).astype(np.float32)  # (n, E, W)
    rows = (b[:, :, None] * centres).astype(np.float32)  # (n, E, H)
    scratch = np.empty((min(n, BLOCK), image_size, image_size), dtype=np.float32)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        dist = out[start:stop]
        tmp = scratch[: stop - start]
        np.add(cols[start:stop, 0, None, :], rows[start:stop, 0, :, None], out=dist)
        for e in range(1, cols.shape[1]):
            np.add(cols[start:stop, e, None, :], rows[start:stop, e, :, None], out=tmp)
            np.minimum(dist, tmp, out=dist)
        np.clip(dist, 0.0, 1.0, out=dist)
    return out


def render(
    classes: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    size: np.ndarray,
    rotation: np.ndarray,
    rgb: np.ndarray,
    image_size: int = 32,
) -> np.ndarray:
    """Images uint8 (N, H, W, 3): each shape filled with its colour rgb (N, 3) over black."""
    n = len(classes)
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    colour = np.asarray(rgb, dtype=np.float32)
    for shape_class in range(len(SHAPES)):
        (idx,) = np.nonzero(classes == shape_class)
        if len(idx) == 0:
            continue
        cov = coverage(shape_class, x[idx], y[idx], size[idx], rotation[idx], image_size)
        pixels = cov[:, :, :, None] * colour[idx, None, None, :]
        pixels += 0.5  # round half up: values are non-negative
        images[idx] = pixels.astype(np.uint8)
    return images
