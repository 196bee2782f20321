"""Simple Shapes generation speed: our generator versus a straightforward matplotlib rendering.

    python benchmarks/bench_data.py [--n 100000] [--workers 2] [--mpl-n 500]

Ours: `generate_simple_shapes` end to end (sampling, rendering, captions, writing the .npy
files and captions.txt) at 32×32. Matplotlib: the same attributes drawn one by one with
`render_matplotlib` (Agg, antialiased patches), images only, no captions, nothing written.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from global_workspace.data.render import render_matplotlib
from global_workspace.data.simple_shapes import generate_simple_shapes, sample_labels


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--n", type=int, default=100_000, help="training examples for our generator")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--mpl-n", type=int, default=500, help="examples for matplotlib")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate_simple_shapes(
            Path(tmp) / "shapes", {"train": args.n, "val": 1000, "test": 1000}, seed=0, workers=args.workers
        )
        ours = (args.n + 2000) / (time.perf_counter() - start)

    labels = sample_labels(np.random.default_rng(0), args.mpl_n)
    start = time.perf_counter()
    render_matplotlib(labels)
    theirs = args.mpl_n / (time.perf_counter() - start)

    print(f"cpu cores: {os.cpu_count()}, workers: {args.workers}")
    print(f"ours (images + labels + captions, written): {ours:,.0f} images/s ({args.n + 2000:,} images)")
    print(f"matplotlib (images only, in memory):       {theirs:,.0f} images/s ({args.mpl_n:,} images)")
    print(f"ratio: {ours / theirs:,.0f}x")


if __name__ == "__main__":
    main()
