"""A picture of a dataset: a grid of examples, each with its caption under it."""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import atomic_write_bytes, refuse_existing
from .format import load_dataset

CELL_INCHES = (1.9, 2.5)  # width, height of one example with its caption
CAPTION_WIDTH = 30  # characters per caption line
TITLE_CHARS_PER_INCH = 11  # of a 10-point title, so that a narrow grid wraps its title instead of cutting it
TITLE_LINE_INCHES = 0.18


def grid_png(images: np.ndarray, captions: list[str], title: str = "", cols: int | None = None) -> bytes:
    """PNG bytes of images (N, H, W, 3) in a grid of `cols` columns (default: near-square),
    captions wrapped under them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(images)
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    width = cols * CELL_INCHES[0]
    title = textwrap.fill(title, max(20, int(width * TITLE_CHARS_PER_INCH)))
    title_inches = (0.22 + TITLE_LINE_INCHES * title.count("\n")) if title else 0.0
    height = rows * CELL_INCHES[1] + 0.18 + title_inches
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 / height, va="top")
    for i in range(rows * cols):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(images[i], interpolation="nearest")
        caption = textwrap.fill(captions[i], CAPTION_WIDTH)
        ax.text(0.5, -0.04, caption, transform=ax.transAxes, fontsize=5.5, ha="center", va="top")
    top = 1 - (0.18 + title_inches if title else 0.1) / height
    fig.subplots_adjust(left=0.01, right=0.99, top=top, bottom=0.75 / height, hspace=0.6)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def show_dataset(dataset_path: Path, out: Path, split: str = "val", n: int = 64, force: bool = False) -> None:
    """Write a PNG grid of the first `n` examples of a split, with their captions, to `out`."""
    if n <= 0:
        raise UserError(f"--n must be a positive number of examples, got {n}")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise UserError(f"{out} must end in .png")
    refuse_existing(out, force, what="picture")
    data = load_dataset(dataset_path).split(split)
    n = min(n, len(data))
    title = f"{dataset_path} [{split}], first {n} of {len(data)}"
    atomic_write_bytes(out, grid_png(np.asarray(data.images[:n]), data.captions[:n], title))
