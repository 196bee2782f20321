"""Images per second of the Factory generator, against a straightforward renderer in the same run.

    python benchmarks/bench_factory.py [--n 20000] [--workers 2] [--image-size 64]

Prints three figures:
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
import tempfile
import time
from pathlib import Path

import numpy as np

from global_workspace.data.factory.generate import generate_factory, render_labels, sample_labels
from global_workspace.data.factory.render import background, render_reference


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else math.inf


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

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate_factory(
            Path(tmp) / "factory", {"train": args.n}, seed=0, image_size=size, workers=args.workers
        )
        end_to_end = _rate(args.n, time.perf_counter() - start)
    print(f"generate_factory, {args.workers} workers, {args.n} images: {end_to_end:,.0f} images/s")

    labels = sample_labels(np.random.default_rng(0), 4096)
    background(size)  # built once per process, as in the generator
    start = time.perf_counter()
    render_labels(labels, size)
    batched = _rate(len(labels), time.perf_counter() - start)
    print(f"batched renderer, 1 core, {len(labels)} images: {batched:,.0f} images/s")

    base = labels[: args.baseline_n].astype(np.float64)
    start = time.perf_counter()
    for x, y, rotation, r, g, b in base:
        render_reference(size, x, y, rotation, (r, g, b))
    baseline = _rate(len(base), time.perf_counter() - start)
    what = "baseline (whole-image ray tracer, one image at a time), 1 core"
    print(f"{what}, {len(base)} images: {baseline:,.1f} images/s")
    print(f"speed-up of the batched renderer over the baseline (1 core each): {batched / baseline:,.0f}x")


if __name__ == "__main__":
    main()
