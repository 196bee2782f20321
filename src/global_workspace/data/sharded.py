"""The sharded, deterministic, multi-worker dataset writer shared by the generators.

Each split is cut into shards of `shard` examples; shard i of split s gets the attribute seed
`derive_seed(seed, s, i)` and the caption seed `derive_seed(seed, s, i, "captions")`. A
generator's sampler, renderer and captioner fill one shard of the split's memory-mapped .npy files
(`render_shard`) and give its captions, so the bytes written do not depend on how many workers
there are.

Like the generators this module imports neither torch nor the seeding module at import time:
spawned workers import it and start in well under a second.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap
from tqdm import tqdm

from ..errors import UserError
from ..fileio import allocated_memmap, atomic_write_text
from ..locking import locked_atomic_directory
from .format import SPLITS, DatasetInfo, load_dataset, write_info


@dataclass(frozen=True)
class ShardTask:
    folder: Path  # the split's folder in the temporary dataset
    start: int
    stop: int
    attribute_seed: int
    caption_seed: int
    image_size: int


ShardFunction = Callable[[ShardTask], list[str]]


def render_shard(
    task: ShardTask,
    sample: Callable[[np.random.Generator, int], np.ndarray],
    render: Callable[[np.ndarray, int], np.ndarray],
    caption: Callable[[np.ndarray, np.random.Generator], list[str]],
) -> list[str]:
    """Sample, render and caption one shard into the split's memory-mapped files; return its
    captions in order, with a generator's own sampler, renderer and captioner."""
    labels = sample(np.random.default_rng(task.attribute_seed), task.stop - task.start)
    captions = caption(labels, np.random.default_rng(task.caption_seed))
    images = render(labels, task.image_size)
    for name, values in (("images.npy", images), ("labels.npy", labels)):
        array = open_memmap(task.folder / name, mode="r+")
        array[task.start : task.stop] = values
        array.flush()
        del array
    return captions


def check_arguments(
    counts: dict[str, int], image_size: int, workers: int, min_image_size: int, max_image_size: int
) -> None:
    """UserError for unknown splits, counts ≤ 0, an image size out of range or workers < 1."""
    unknown = sorted(set(counts) - set(SPLITS))
    if unknown:
        raise UserError(f"unknown split(s) {', '.join(unknown)}; splits are {', '.join(SPLITS)}")
    for split, n in counts.items():
        if int(n) <= 0:
            raise UserError(f"--{split} must be a positive number of examples, got {n}")
    if not min_image_size <= image_size <= max_image_size:
        raise UserError(
            f"--image-size must be between {min_image_size} and {max_image_size} pixels, got {image_size}"
        )
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")


def _tasks(
    tmp: Path, counts: dict[str, int], seed: int, image_size: int, shard: int
) -> Iterator[tuple[str, ShardTask]]:
    from ..seeding import derive_seed  # imported here: it imports torch, which workers never need

    for split, n in counts.items():
        for index, start in enumerate(range(0, n, shard)):
            task = ShardTask(
                folder=tmp / split,
                start=start,
                stop=min(start + shard, n),
                attribute_seed=derive_seed(seed, split, index),
                caption_seed=derive_seed(seed, split, index, "captions"),
                image_size=image_size,
            )
            yield split, task


def _run_shards(render_shard: ShardFunction, tasks: list[ShardTask], workers: int) -> Iterator[list[str]]:
    """Captions of each task, in task order; shards rendered here or in `workers` spawned processes."""
    if workers == 1 or len(tasks) <= 1:
        yield from map(render_shard, tasks)
        return
    with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap(render_shard, tasks)


def write_sharded_dataset(
    out: Path,
    info: DatasetInfo,
    render_shard: ShardFunction,
    shard: int,
    workers: int,
    force: bool,
    progress: bool,
) -> None:
    """Write the dataset `info` describes to `out`, rendering shards with `render_shard` (a module-level
    function, so spawned workers can import it), then load and validate it.

    Nothing appears at `out` unless everything was written; an existing `out` is replaced only with
    `force`, and survives any failure.
    """
    size = info.image_size
    with locked_atomic_directory(out, force, "dataset", "dataset.json", "choose another OUT") as tmp:
        for split, n in info.splits.items():
            (tmp / split).mkdir()
            allocated_memmap(tmp / split / "images.npy", np.uint8, (n, size, size, 3))
            allocated_memmap(tmp / split / "labels.npy", np.float32, (n, len(info.label_columns)))
        tasks = list(_tasks(tmp, info.splits, info.seed, size, shard))
        captions: dict[str, list[str]] = {split: [] for split in info.splits}
        results = _run_shards(render_shard, [task for _, task in tasks], workers)
        with tqdm(total=sum(info.splits.values()), unit="img", desc=info.name, disable=not progress) as bar:
            for (split, task), shard_captions in zip(tasks, results, strict=True):
                captions[split] += shard_captions
                bar.update(task.stop - task.start)
        for split, lines in captions.items():
            atomic_write_text(tmp / split / "captions.txt", "\n".join(lines) + "\n")
        write_info(tmp, info)
        load_dataset(tmp, expect_name=info.name)  # validated before it replaces anything


@dataclass(frozen=True)
class Generator:
    """What tells one dataset generator from another, for `generate_dataset`."""

    name: str
    label_columns: list[str]
    module: str  # recorded in dataset.json
    version: int
    image_sizes: tuple[int, int]  # smallest and largest image size it renders
    # Module-level functions, so that spawned workers can import them (`render_shard`):
    sample: Callable[[np.random.Generator, int], np.ndarray]
    render: Callable[[np.ndarray, int], np.ndarray]
    caption: Callable[[np.ndarray, np.random.Generator], list[str]]


def generate_dataset(
    generator: Generator,
    out: Path,
    counts: dict[str, int],
    seed: int,
    image_size: int,
    workers: int,
    force: bool,
    progress: bool,
    shard: int,
    details: dict[str, object] | None = None,
) -> DatasetInfo:
    """Check a generator's arguments, describe its dataset and write it (`write_sharded_dataset`):
    the part every generator shares; `details` adds its own facts to dataset.json's record."""
    counts = {split: int(n) for split, n in counts.items()}
    check_arguments(counts, image_size, workers, *generator.image_sizes)
    info = DatasetInfo(
        name=generator.name,
        seed=int(seed),
        image_size=image_size,
        splits=counts,
        label_columns=list(generator.label_columns),
        generator={
            "generator": generator.module,
            "generator_version": generator.version,
            "seed": int(seed),
            "image_size": image_size,
            "counts": counts,
            "chunk": shard,  # the stored key keeps its first name
            **(details or {}),
        },
    )
    render = functools.partial(
        render_shard, sample=generator.sample, render=generator.render, caption=generator.caption
    )
    write_sharded_dataset(Path(out), info, render, shard, workers, force, progress)
    return info
