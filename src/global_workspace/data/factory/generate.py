"""The Factory generator: sampling, chunked rendering, captions, writing (format.py).

Labels, one row per image (LABEL_COLUMNS):
- x, y: the table's centre on the floor, metres, uniform in [-2, 2] (x East = image right,
  y North = image top, away from the camera);
- rotation: rad in [0, 2π), counter-clockwise seen from above; 0 = pointing North (to the top of
  the image), π/2 = pointing West (left);
- r, g, b: 0–255, drawn uniformly in 8-bit HLS with lightness ≥ 46 (as Simple Shapes).

Determinism: each split is cut into chunks of CHUNK examples; chunk i of split s draws its
attributes from `numpy_generator(seed, s, i)` and its caption wording from
`numpy_generator(seed, s, i, "captions")`. Workers render whole chunks into memory-mapped .npy
files, so the bytes written do not depend on how many workers there are.

Like simple_shapes.py this module imports neither torch nor the seeding module at import time:
spawned workers import it and start in well under a second.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap
from tqdm import tqdm

from ...errors import UserError
from ...fileio import atomic_directory, atomic_write_text
from ..colors import sample_hls_rgb
from ..format import SPLITS, Dataset, DatasetInfo, load_dataset, write_info
from ..simple_shapes import wrap_rotation
from . import scene
from .captions import NEAR_DISTANCE, make_factory_captions
from .render import SUPERSAMPLE, render_tables

NAME = "factory"
LABEL_COLUMNS = ["x", "y", "rotation", "r", "g", "b"]
CHUNK = 2048
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


@dataclass(frozen=True)
class ChunkTask:
    folder: Path  # the split's folder in the temporary dataset
    start: int
    stop: int
    attribute_seed: int
    caption_seed: int
    image_size: int


def generate_chunk(task: ChunkTask) -> list[str]:
    """Render one chunk into the split's memory-mapped files; return its captions in order."""
    labels = sample_labels(np.random.default_rng(task.attribute_seed), task.stop - task.start)
    captions = make_factory_captions(labels, np.random.default_rng(task.caption_seed))
    for name, values in (("images.npy", render_labels(labels, task.image_size)), ("labels.npy", labels)):
        array = open_memmap(task.folder / name, mode="r+")
        array[task.start : task.stop] = values
        array.flush()
        del array
    return captions


def check_arguments(counts: dict[str, int], image_size: int, workers: int) -> None:
    """UserError for unknown splits, counts ≤ 0, an image size out of range or workers < 1."""
    unknown = sorted(set(counts) - set(SPLITS))
    if unknown:
        raise UserError(f"unknown split(s) {', '.join(unknown)}; splits are {', '.join(SPLITS)}")
    for split, n in counts.items():
        if int(n) <= 0:
            raise UserError(f"--{split} must be a positive number of examples, got {n}")
    if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise UserError(
            f"--image-size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} pixels, got {image_size}"
        )
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")


def _tasks(tmp: Path, counts: dict[str, int], seed: int, image_size: int) -> Iterator[tuple[str, ChunkTask]]:
    from ...seeding import derive_seed  # imported here: it imports torch, which workers never need

    for split, n in counts.items():
        for index, start in enumerate(range(0, n, CHUNK)):
            task = ChunkTask(
                folder=tmp / split,
                start=start,
                stop=min(start + CHUNK, n),
                attribute_seed=derive_seed(seed, split, index),
                caption_seed=derive_seed(seed, split, index, "captions"),
                image_size=image_size,
            )
            yield split, task


def _run_chunks(tasks: list[ChunkTask], workers: int) -> Iterator[list[str]]:
    """Captions of each task, in task order; chunks rendered here or in `workers` spawned processes."""
    if workers == 1 or len(tasks) <= 1:
        yield from map(generate_chunk, tasks)
        return
    with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap(generate_chunk, tasks)


def generator_parameters(seed: int, image_size: int, counts: dict[str, int]) -> dict[str, object]:
    """What dataset.json records about how the data were made (enough to regenerate them)."""
    return {
        "generator": "global_workspace.data.factory",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "image_size": image_size,
        "counts": counts,
        "chunk": CHUNK,
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
    counts = {split: int(n) for split, n in counts.items()}
    check_arguments(counts, image_size, workers)
    out = Path(out)
    with atomic_directory(out, force, what="dataset") as tmp:
        for split, n in counts.items():
            (tmp / split).mkdir()
            open_memmap(
                tmp / split / "images.npy", mode="w+", dtype=np.uint8, shape=(n, image_size, image_size, 3)
            )
            open_memmap(
                tmp / split / "labels.npy", mode="w+", dtype=np.float32, shape=(n, len(LABEL_COLUMNS))
            )
        tasks = list(_tasks(tmp, counts, seed, image_size))
        captions: dict[str, list[str]] = {split: [] for split in counts}
        results = _run_chunks([task for _, task in tasks], workers)
        with tqdm(total=sum(counts.values()), unit="img", desc=NAME, disable=not progress) as bar:
            for (split, task), chunk_captions in zip(tasks, results, strict=True):
                captions[split] += chunk_captions
                bar.update(task.stop - task.start)
        for split, lines in captions.items():
            atomic_write_text(tmp / split / "captions.txt", "\n".join(lines) + "\n")
        info = DatasetInfo(
            name=NAME,
            seed=int(seed),
            image_size=image_size,
            splits=counts,
            label_columns=list(LABEL_COLUMNS),
            generator=generator_parameters(seed, image_size, counts),
        )
        write_info(tmp, info)
        load_dataset(tmp, expect_name=NAME)
    return load_dataset(out, expect_name=NAME)
