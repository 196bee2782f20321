"""The Simple Shapes generator: sampling (REFERENCE §1), chunked rendering, captions, writing.

Determinism: each split is cut into chunks of CHUNK examples; chunk i of split s draws its
attributes from `numpy_generator(seed, s, i)` and its caption wording from
`numpy_generator(seed, s, i, "captions")`. Workers render whole chunks into memory-mapped
.npy files, so the bytes written do not depend on how many workers there are.

This module imports neither torch nor the seeding module at import time: worker processes are
spawned and import it, and keeping them light keeps start-up well under a second.
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

from ..errors import UserError
from ..fileio import atomic_directory, atomic_write_text
from .captions import make_captions
from .colors import sample_hls_rgb
from .format import SPLITS, Dataset, DatasetInfo, load_dataset, write_info
from .render import render

NAME = "simple-shapes"
LABEL_COLUMNS = ["class", "x", "y", "size", "rotation", "r", "g", "b"]
CHUNK = 4096
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
    """Attributes of n examples, float32 (n, 8) in LABEL_COLUMNS order (REFERENCE §1 ranges).

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
    n = task.stop - task.start
    labels = sample_labels(np.random.default_rng(task.attribute_seed), n)
    captions = make_captions(labels, np.random.default_rng(task.caption_seed))
    images = open_memmap(task.folder / "images.npy", mode="r+")
    images[task.start : task.stop] = render_labels(labels, task.image_size)
    images.flush()
    del images
    label_file = open_memmap(task.folder / "labels.npy", mode="r+")
    label_file[task.start : task.stop] = labels
    label_file.flush()
    del label_file
    return captions


def _check_arguments(counts: dict[str, int], image_size: int, workers: int) -> None:
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
    from ..seeding import derive_seed  # imported here: it imports torch, which workers never need

    for split, n in counts.items():
        for index, start in enumerate(range(0, n, CHUNK)):
            yield (
                split,
                ChunkTask(
                    folder=tmp / split,
                    start=start,
                    stop=min(start + CHUNK, n),
                    attribute_seed=derive_seed(seed, split, index),
                    caption_seed=derive_seed(seed, split, index, "captions"),
                    image_size=image_size,
                ),
            )


def _run_chunks(tasks: list[ChunkTask], workers: int) -> Iterator[list[str]]:
    """Captions of each task, in task order; chunks rendered in this process or in `workers` others."""
    if workers == 1 or len(tasks) <= 1:
        yield from map(generate_chunk, tasks)
        return
    with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap(generate_chunk, tasks)


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
    counts = {split: int(n) for split, n in counts.items()}
    _check_arguments(counts, image_size, workers)
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
        with tqdm(total=sum(counts.values()), unit="img", desc="simple-shapes", disable=not progress) as bar:
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
            generator={
                "generator": "global_workspace.data.simple_shapes",
                "generator_version": GENERATOR_VERSION,
                "seed": int(seed),
                "image_size": image_size,
                "counts": counts,
                "chunk": CHUNK,
            },
        )
        write_info(tmp, info)
        load_dataset(tmp, expect_name=NAME)  # validated before it replaces anything
    return Dataset(out, info)
