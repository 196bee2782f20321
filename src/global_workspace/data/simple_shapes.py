"""The Simple Shapes generator: sampling (docs/design.md §1), sharded rendering, captions, writing.

Determinism: each split is cut into shards of SHARD examples, written by sharded.py; shard i of
split s draws its attributes from `numpy_generator(seed, s, i)` and its caption wording from
`numpy_generator(seed, s, i, "captions")`, so the bytes written do not depend on the workers.

This module imports neither torch nor the seeding module at import time: worker processes are
spawned and import it, and keeping them light keeps start-up well under a second.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .captions import make_captions
from .colors import sample_hls_rgb
from .format import Dataset
from .render import render
from .sharded import Generator, generate_dataset

NAME = "simple-shapes"
LABEL_COLUMNS = ["class", "x", "y", "size", "rotation", "r", "g", "b"]
SHARD = 4096
GENERATOR_VERSION = 1
MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 1024
TWO_PI32 = np.float32(2 * math.pi)


def wrap_rotation(rotation: np.ndarray) -> np.ndarray:
    """Angles as float32 in [0, 2π): a value that rounds up to 2π in float32 becomes 0."""
    wrapped = np.mod(np.asarray(rotation, dtype=np.float64), 2 * math.pi).astype(np.float32)
    wrapped[wrapped >= TWO_PI32] = 0.0
    return wrapped


def sample_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    """Attributes of n examples, float32 (n, 8) in LABEL_COLUMNS order (docs/design.md §1 ranges).

    class uniform in {0, 1, 2}; size in 7..14; x, y in 7..24; rotation uniform in [0, 2π)
    (stored as float32 and kept below 2π after rounding); colour uniform in 8-bit HLS.
    """
    labels = np.empty((n, 8), dtype=np.float32)
    labels[:, 0] = rng.integers(0, 3, size=n)
    labels[:, 1] = rng.integers(7, 25, size=n)
    labels[:, 2] = rng.integers(7, 25, size=n)
    labels[:, 3] = rng.integers(7, 15, size=n)
    labels[:, 4] = wrap_rotation(rng.uniform(0.0, 2 * math.pi, size=n))
    labels[:, 5:8] = sample_hls_rgb(rng, n)
    return labels


def render_labels(labels: np.ndarray, image_size: int = 32) -> np.ndarray:
    """uint8 (N, H, W, 3) images of label rows, exactly as the generator renders them."""
    lab = np.asarray(labels, dtype=np.float32).astype(np.float64)
    return render(
        lab[:, 0].astype(np.int64), lab[:, 1], lab[:, 2], lab[:, 3], lab[:, 4], lab[:, 5:8], image_size
    )


def generator() -> Generator:
    """This generator, built when called: its functions are read then (tests patch them)."""
    return Generator(
        NAME,
        LABEL_COLUMNS,
        "global_workspace.data.simple_shapes",
        GENERATOR_VERSION,
        (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
        sample_labels,
        render_labels,
        make_captions,
    )


def generate_simple_shapes(
    out: Path,
    counts: dict[str, int],
    seed: int,
    image_size: int = 32,
    workers: int = 1,
    force: bool = False,
    progress: bool = False,
) -> Dataset:
    """Write a Simple Shapes dataset to `out` (format.py) and return it, loaded and validated.

    `counts` maps split names to sizes. Nothing appears at `out` unless everything was written;
    an existing `out` is replaced only with `force`, and survives any failure.
    """
    info = generate_dataset(generator(), out, counts, seed, image_size, workers, force, progress, SHARD)
    return Dataset(Path(out), info)
