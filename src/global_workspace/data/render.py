"""A vectorised, antialiased rasteriser for convex shapes, many images at once.

Every class is a convex polygon, the intersection of half-planes (its edges, plus supporting
lines at sharp corners, shapes.py). For a pixel centre, the minimum over lines of the signed
distance to each line (positive inside) is the exact distance to the boundary inside the
polygon and a close under-estimate outside near a corner. Coverage is `clamp(0.5 + d, 0, 1)`:
a one-pixel linear ramp across an edge, which is what box-filtered antialiasing gives for an
edge crossing a pixel square-on (tests compare with matplotlib's exact-area antialiasing).

The distance to line e is affine in the pixel centre (u, v) (u = column, v = row from the top):
`d_e = a_e · u + b_e · v + c_e`, so it splits into a per-column and a per-row term, and each
line costs one broadcast add and one minimum over the pixels. Two choices make that fast:
- only a square window around each shape is computed (the rest of the image stays black);
- distances are integers in 1/256 pixel (int16), laid out (row, column, image) so the inner
  loop runs over many images at once. Rounding the per-row and per-column terms costs at most
  1/128 pixel of distance, below the 1/255 step of an 8-bit colour channel.
Integer arithmetic is exact and the float steps before it are element-wise IEEE operations, so
the bytes do not depend on the batch split.

Image size: positions and sizes are defined on the 32-pixel canvas; rendering at another
`image_size` scales every coordinate by image_size / 32 (the shape keeps its place and
proportion, and edges stay one output pixel wide).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .shapes import CANVAS, SHAPES

FIXED = 256  # distances and coverage in 1/256 pixel; FIXED * 255 fits in uint16
BLOCK = 1024  # images per inner block: (w, w, BLOCK) int16 stays in cache


def edge_coefficients(
    shape_class: int, x: np.ndarray, y: np.ndarray, size: np.ndarray, rotation: np.ndarray, image_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image and line, (a, b, c) of `d = a·u + b·v + c` in output pixels; each (n, E) float64."""
    shape = SHAPES[shape_class]
    scale = image_size / CANVAS
    cos, sin = np.cos(rotation)[:, None], np.sin(rotation)[:, None]
    nx, ny = shape.normals[None, :, 0], shape.normals[None, :, 1]
    mx = cos * nx - sin * ny  # the inward normal rotated by θ, canvas axes (y up)
    my = sin * nx + cos * ny
    k = shape.normals @ np.array([0.5, 0.5]) - shape.offsets  # distance of the box centre, unit units
    c = scale * (-mx * x[:, None] + my * (CANVAS - y[:, None]) + size[:, None] * k[None, :])
    return mx, -my, c


def window_size(shape_class: int, size: np.ndarray, image_size: int) -> np.ndarray:
    """Side of a square pixel window holding every partly covered pixel of a shape of each size."""
    reach = SHAPES[shape_class].radius * np.asarray(size) * image_size / CANVAS + 1.0
    return np.minimum(image_size, np.ceil(2 * reach).astype(np.int64) + 1)


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
    """Covered fraction of each pixel of a window around each shape, in 1/FIXED.

    Returns (coverage (w, w, n) integers in [0, FIXED], first row (n,), first column (n,)); rows
    count from the top. Without `window`, the window is the whole image.
    """
    n = len(x)
    w = image_size if window is None else window
    scale = image_size / CANVAS
    row0 = window_origin((CANVAS - np.asarray(y, dtype=np.float64)) * scale, w, image_size)
    col0 = window_origin(np.asarray(x, dtype=np.float64) * scale, w, image_size)
    # |d| <= w/2 + w/2 + limit after the clip below; int16 holds it up to w = 63
    dtype = np.int16 if FIXED * (3 * w + 1) < np.iinfo(np.int16).max else np.int32
    out = np.empty((w, w, n), dtype=dtype)
    if n == 0:
        return out, row0, col0
    a, b, c = edge_coefficients(shape_class, x, y, size, rotation, image_size)  # (n, E)
    # distance at the window centre; a line farther than w + 1 from it is inside (or outside) the
    # whole window either way, so clipping there changes no pixel and bounds every sum
    limit = w + 1.0
    middle = np.clip(a * (col0[:, None] + w / 2) + b * (row0[:, None] + w / 2) + c, -limit, limit)
    # pixel centres from the window's middle, and per line (E, 1, n) contiguous along images, the
    # axis the inner loops run along; float32 is ample for distances of a few hundred 1/256 px
    offsets = (np.arange(w)[None, :, None] + 0.5 - w / 2).astype(np.float32)
    a, b, middle = (np.ascontiguousarray(v.T, dtype=np.float32)[:, None, :] for v in (a, b, middle + 0.5))
    scratch = np.empty((w, w, min(n, BLOCK)), dtype=dtype)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        cols = np.rint(FIXED * (a[:, :, start:stop] * offsets + middle[:, :, start:stop])).astype(dtype)
        rows = np.rint(FIXED * (b[:, :, start:stop] * offsets)).astype(dtype)  # (E, w, block)
        dist, tmp = out[:, :, start:stop], scratch[:, :, : stop - start]
        np.add(rows[0, :, None, :], cols[0, None, :, :], out=dist)
        for e in range(1, len(cols)):
            np.add(rows[e, :, None, :], cols[e, None, :, :], out=tmp)
            np.minimum(dist, tmp, out=dist)
        np.clip(dist, 0, FIXED, out=dist)
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
    """Images uint8 (N, H, W, 3): each shape filled with its colour rgb (N, 3) over black.

    A pixel is round(coverage · colour), coverage in 1/FIXED, computed exactly in integers.
    """
    n = len(classes)
    images = np.zeros((n, image_size, image_size, 3), dtype=np.uint8)
    colour = np.rint(np.asarray(rgb, dtype=np.float64)).astype(np.uint16)
    # Images are grouped by class and by window side, which depends on the image's own size only,
    # so an image's pixels do not depend on the rest of the batch.
    for shape_class in range(len(SHAPES)):
        windows_of = window_size(shape_class, np.asarray(size, dtype=np.float64), image_size)
        for w in np.unique(windows_of[classes == shape_class]).tolist():
            (idx,) = np.nonzero((classes == shape_class) & (windows_of == w))
            cov, row0, col0 = coverage(shape_class, x[idx], y[idx], size[idx], rotation[idx], image_size, w)
            cov16 = cov.astype(np.uint16).transpose(2, 0, 1)[:, None, :, :]  # (n, 1, w, w)
            pixels = cov16 * colour[idx, :, None, None] + FIXED // 2  # (n, 3, w, w), at most 65408
            pixels >>= 8  # / FIXED
            # (N, H − w + 1, W − w + 1, 3, w, w): every w×w window of every image, as a view
            windows = sliding_window_view(images, (w, w), axis=(1, 2), writeable=True)
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
