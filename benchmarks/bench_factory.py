"""Images per second of the Factory generator, against a straightforward renderer in the same run.

    python benchmarks/bench_factory.py [--n 20000] [--workers 2] [--image-size 64]

Prints three figures, each as wall-clock images/s and as images per CPU-second (the CPU time of
this process and its workers; on a machine shared with other jobs the wall-clock rate falls,
the CPU-time rate much less):
- `generate_factory` end to end (sampling, rendering, captions, writing .npy files) with
  `--workers` processes, process start-up included;
- the batched renderer alone in this process (one core);
- the baseline: the plain ray tracer (render.render_reference) rendering whole images one at a
  time, vectorised over pixels but not over images and without the cached background or the
  window around the table: what a first straightforward numpy implementation does.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from global_workspace.data.factory.generate import generate_factory, render_labels, sample_labels
from global_workspace.data.factory.render import background, render_reference


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else math.inf


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class _Clock:
    def __enter__(self) -> _Clock:
        self.wall, self.cpu = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, _cpu_seconds() - self.cpu

    def report(self, what: str, n: int) -> float:
        wall, cpu = _rate(n, self.wall), _rate(n, self.cpu)
        print(f"{what}, {n} images: {wall:,.1f} images/s wall clock, {cpu:,.1f} per CPU-second")
        return cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000, help="training images generated end to end")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--baseline-n", type=int, default=40, help="images for the baseline renderer")
    args = parser.parse_args()
    size = args.image_size
    print(f"cores visible: {os.cpu_count()}; image size {size}; workers {args.workers}")

    with tempfile.TemporaryDirectory() as tmp, _Clock() as clock:
        out = Path(tmp) / "factory"
        generate_factory(out, {"train": args.n}, seed=0, image_size=size, workers=args.workers)
    per_cpu = clock.report(f"generate_factory, {args.workers} workers", args.n)
    print(f"  = {per_cpu * args.workers:,.0f} images/s on {args.workers} cores given to it alone")

    labels = sample_labels(np.random.default_rng(0), 4096)
    background(size)  # built once per process, as in the generator
    with _Clock() as clock:
        render_labels(labels, size)
    batched = clock.report("batched renderer, 1 process", len(labels))

    base = labels[: args.baseline_n].astype(np.float64)
    with _Clock() as clock:
        for x, y, rotation, r, g, b in base:
            render_reference(size, x, y, rotation, (r, g, b))
    baseline = clock.report("baseline (whole-image ray tracer, one image at a time), 1 process", len(base))
    print(f"speed-up of the batched renderer over the baseline (per CPU-second): {batched / baseline:,.0f}x")


if __name__ == "__main__":
    main()
