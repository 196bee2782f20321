"""The figures `gw pretrain` leaves beside each specialist (matplotlib, no global pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def reconstruction_figure(originals: np.ndarray, reconstructions: np.ndarray, path: Path) -> None:
    """Two rows of uint8 images (N, H, W, 3): originals on top, reconstructions below."""
    n = len(originals)
    fig = Figure(figsize=(1.1 * n, 2.6))
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        for row, (images, label) in enumerate(((originals, "original"), (reconstructions, "decoded"))):
            ax = axes[row][i]
            ax.imshow(images[i], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(label)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def caption_figure(originals: list[str], decoded: list[str], path: Path) -> None:
    """Original captions and the captions decoded from their latents, one pair per line."""
    lines: list[tuple[str, str]] = []
    for orig, dec in zip(originals, decoded, strict=True):
        lines += [
            (f"original: {orig}", "black"),
            (f"decoded:  {dec}", "tab:blue" if dec == orig else "tab:red"),
        ]
    fig = Figure(figsize=(15, 0.25 * len(lines) + 0.5))
    ax = fig.subplots()
    ax.axis("off")
    for i, (text, colour) in enumerate(lines):
        ax.text(
            0.0,
            1.0 - (i + 0.5) / len(lines),
            text,
            family="monospace",
            fontsize=8,
            color=colour,
            transform=ax.transAxes,
            va="center",
        )
    fig.savefig(path, dpi=100)
