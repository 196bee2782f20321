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

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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


def window_size(shape_class: int, max_size: float, image_size: int) -> int:
    """Side of a square pixel window that holds every partly covered pixel of shapes up to max_size."""
    reach = SHAPES[shape_class].radius * max_size * image_size / CANVAS + 1.0
    return min(image_size, math.ceil(2 * reach) + 1)


def window_origin(centre: np.ndarray, window: int, image_size: int) -> np.ndarray:
    """First pixel index of each window: centred on the shape, then moved inside the image.

    A shape overhanging the border loses only pixels that do not exist, so the moved window
    still holds every pixel it covers.
    """
    start = np.floor(centre - window / 2).astype(np.int64)
    return np.clip(start, 0, image_size - window)


def coverage(
    shape_class: int,
    x: np.ndarray,
    y: np.ndarray,
    size: np.ndarray,
    rotation: np.ndarray,
    image_size: int,
    window: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of each pixel covered by the shape, in a window around each shape.

    Returns (coverage float32 (n, w, w) in [0, 1], first row (n,), first column (n,)); rows
    count from the top. Without `window`, the window is the whole image.
    """
    n = len(x)
    window = image_size if window is None else window
    scale = image_size / CANVAS
    row0 = window_origin((CANVAS - np.asarray(y, dtype=np.float64)) * scale, window, image_size)
    col0 = window_origin(np.asarray(x, dtype=np.float64) * scale, window, image_size)
    out = np.empty((n, window, window), dtype=np.float32)
    if n == 0:
        return out, row0, col0
    a, b, c = edge_coefficients(shape_class, x, y, size, rotation, image_size)
    offsets = np.arange(window, dtype=np.float64) + 0.5
    cols = (a[:, :, None] * (col0[:, None, None] + offsets) + (c[:, :, None] + 0.5)).astype(np.float32)
    rows = (b[:, :, None] * (row0[:, None, None] + offsets)).astype(np.float32)  # (n, E, w)
    scratch = np.empty((min(n, BLOCK), window, window), dtype=np.float32)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        dist = out[start:stop]
        tmp = scratch[: stop - start]
        np.add(cols[start:stop, 0, None, :], rows[start:stop, 0, :, None], out=dist)
        for e in range(1, cols.shape[1]):
            np.add(cols[start:stop, e, None, :], rows[start:stop, e, :, None], out=tmp)
            np.minimum(dist, tmp, out=dist)
        np.clip(dist, 0.0, 1.0, out=dist)
    return out, row0, col0


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
    images = np.zeros((n, image_size, image_size, 3), dtype=np.uint8)
    colour = np.asarray(rgb, dtype=np.float32)
    for shape_class in range(len(SHAPES)):
        (idx,) = np.nonzero(classes == shape_class)
        if len(idx) == 0:
            continue
        window = window_size(shape_class, float(np.max(size[idx])), image_size)
        cov, row0, col0 = coverage(shape_class, x[idx], y[idx], size[idx], rotation[idx], image_size, window)
        pixels = cov[:, None, :, :] * colour[idx, :, None, None]  # (n, 3, w, w)
        pixels += 0.5  # round half up: values are non-negative
        # (N, H − w + 1, W − w + 1, 3, w, w): every w×w window of every image, as a view
        windows = sliding_window_view(images, (window, window), axis=(1, 2), writeable=True)
        windows[idx, row0, col0] = pixels.astype(np.uint8)
    return images


def render_matplotlib(labels: np.ndarray, image_size: int = 32) -> np.ndarray:
    """The same scenes drawn one by one by matplotlib's Agg renderer, uint8 (N, H, W, 3).

    A plain reference for tests and the benchmark: the egg is drawn from its true Bézier
    curves (not our flattened polygon), with matplotlib's own antialiasing.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    from .shapes import matplotlib_path

    fig = Figure(figsize=(1, 1), dpi=image_size, facecolor="black")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, CANVAS)
    ax.set_ylim(0, CANVAS)
    ax.set_axis_off()
    ax.set_facecolor("black")
    out = np.empty((len(labels), image_size, image_size, 3), dtype=np.uint8)
    for i, (cls, x, y, size, rotation, r, g, b) in enumerate(np.asarray(labels, dtype=np.float64)):
        vertices, codes = matplotlib_path(int(cls), x, y, size, rotation)
        patch = PathPatch(
            MplPath(vertices, codes),
            facecolor=(r / 255, g / 255, b / 255),
            edgecolor="none",
            antialiased=True,
        )
        ax.add_patch(patch)
        canvas.draw()
        out[i] = np.asarray(canvas.buffer_rgba())[:, :, :3]
        patch.remove()
    return out
