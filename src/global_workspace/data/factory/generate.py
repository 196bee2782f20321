"""The Factory generator: sampling, sharded rendering, captions, writing (format.py).

Labels, one row per image (LABEL_COLUMNS):
- x, y: the table's centre on the floor, metres, uniform in [-2, 2] (x East = image right,
  y North = image top, away from the camera);
- rotation: rad in [0, 2π), counter-clockwise seen from above; 0 = pointing North (to the top of
  the image), π/2 = pointing West (left);
- r, g, b: 0–255, drawn uniformly in 8-bit HLS with lightness ≥ 46 (as Simple Shapes).

Determinism: each split is cut into shards of SHARD examples, written by sharded.py; shard i of
split s draws its attributes from `numpy_generator(seed, s, i)` and its caption wording from
`numpy_generator(seed, s, i, "captions")`, so the bytes written do not depend on the workers.

Like simple_shapes.py this module imports neither torch nor the seeding module at import time:
spawned workers import it and start in well under a second.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..colors import sample_hls_rgb
from ..format import Dataset, load_dataset
from ..sharded import Generator, generate_dataset
from ..simple_shapes import wrap_rotation
from . import scene
from .captions import NEAR_DISTANCE, make_factory_captions
from .render import SUPERSAMPLE, render_tables

NAME = "factory"
LABEL_COLUMNS = ["x", "y", "rotation", "r", "g", "b"]
SHARD = 2048
GENERATOR_VERSION = 1
MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 512


def sample_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    """Attributes of n tables, float32 (n, 6) in LABEL_COLUMNS order (ranges in the module docstring)."""
    lo, hi = scene.FLOOR_RANGE
    labels = np.empty((n, 6), dtype=np.float32)
    labels[:, 0] = rng.uniform(lo, hi, size=n)
    labels[:, 1] = rng.uniform(lo, hi, size=n)
    labels[:, 2] = wrap_rotation(rng.uniform(0.0, 2 * math.pi, size=n))
    labels[:, 3:6] = sample_hls_rgb(rng, n)
    return labels


def render_labels(labels: np.ndarray, image_size: int = 64) -> np.ndarray:
    """uint8 (N, H, W, 3) images of label rows, exactly as the generator renders them."""
    lab = np.asarray(labels, dtype=np.float32).reshape(-1, 6).astype(np.float64)
    return render_tables(image_size, lab[:, 0], lab[:, 1], lab[:, 2], lab[:, 3:6])


def generator() -> Generator:
    """This generator, built when called: its functions are read then (tests patch them)."""
    return Generator(
        NAME,
        LABEL_COLUMNS,
        "global_workspace.data.factory",
        GENERATOR_VERSION,
        (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
        sample_labels,
        render_labels,
        make_factory_captions,
    )


def generator_details() -> dict[str, object]:
    """What dataset.json records about the scene beyond every generator's record (to regenerate it)."""
    return {
        "supersample": SUPERSAMPLE,
        "units": {"x": "metres, East", "y": "metres, North", "rotation": "rad, counter-clockwise, 0 = North"},
        "floor_range": list(scene.FLOOR_RANGE),
        "landmarks": {lm.name: list(lm.anchor) for lm in scene.LANDMARKS},
        "near_distance": NEAR_DISTANCE,
        "camera": {
            "eye": list(scene.CAMERA_EYE),
            "target": list(scene.CAMERA_TARGET),
            "fov_deg": scene.CAMERA_FOV_DEG,
        },
        "light_dir": list(scene.LIGHT_DIR),
    }


def generate_factory(
    out: Path,
    counts: dict[str, int],
    seed: int,
    image_size: int = 64,
    workers: int = 1,
    force: bool = False,
    progress: bool = False,
) -> Dataset:
    """Write a Factory dataset to `out` (format.py) and return it, loaded and validated.

    `counts` maps split names to sizes. Nothing appears at `out` unless everything was written;
    an existing `out` is replaced only with `force`, and survives any failure.
    """
    generate_dataset(
        generator(), out, counts, seed, image_size, workers, force, progress, SHARD, generator_details()
    )
    return load_dataset(Path(out), expect_name=NAME)
