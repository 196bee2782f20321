"""The worked example of own data (README "Your own data"): Simple Shapes cut into separate
collections, trained on and compared with the row-aligned run of the same sizes.

Same sizes: every domain's train collection holds COLLECTION examples, and each of v-t and v-attr
learns from PAIRS pairs.
  own          v, t and attr see disjoint examples, except the PAIRS true v-t pairs and the PAIRS
               true v-attr pairs (3 COLLECTION - 2 PAIRS distinct examples; `split_aligned`).
  row-aligned  all three see the same COLLECTION examples, PAIRS of them paired as v-t-attr
               triples (so t-attr has PAIRS pairs too, and only PAIRS images are paired).
Both are scored on the same whole test split (row-aligned, every example paired).

    PYTHONPATH=src python examples/own_data.py runs/example
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from global_workspace.data.split_aligned import split_aligned

Gw = Callable[[Sequence[object]], None]
DIRECTIONS = ("v_to_t", "t_to_v", "v_to_attr", "attr_to_v")


def gw(args: Sequence[object]) -> None:
    """`gw ARGS` in a child process, stopping the example on failure."""
    subprocess.run([sys.executable, "-m", "global_workspace", *map(str, args)], check=True)


def own_collections(data: Path, out: Path, collection: int, pairs: int, seed: int = 0) -> None:
    """Deal DATA's train examples into the own collections (see the module); val and test stay whole."""
    alone = {"v": collection - 2 * pairs, "t": collection - pairs, "attr": collection - pairs}
    split_aligned(data, out, alone, {("v", "t"): pairs, ("v", "attr"): pairs}, seed=seed)


def train_and_score(
    run_gw: Gw, data: Path, run: Path, paired: int, seeds: int, train: Sequence[object]
) -> None:
    """`gw train` an ensemble of `seeds` members over v, t, attr, then `gw evaluate` it on test."""
    domains = ["--domains", "v,t,attr", "--preset", "full", "--ensemble-seeds", seeds]
    run_gw(["train", data, *domains, "--paired", paired, *train, "--out", run, "--quiet"])
    run_gw(["evaluate", run])


def translation_mse(run: Path) -> dict[str, list[float]]:
    """Test translation latent MSE of each direction, one value per member."""
    members = json.loads((run / "metrics.json").read_text())["members"]
    return {d: [m["metrics"][f"translation/{d}/latent_mse"] for m in members] for d in DIRECTIONS}


def spread(values: np.ndarray) -> str:
    """Mean ± sample standard deviation over members."""
    x = np.asarray(values)
    return f"{x.mean():.4f} ± {x.std(ddof=1) if len(x) > 1 else 0.0:.4f}"


def table(own: Path, aligned: Path) -> str:
    """A markdown table per direction: both runs over their members, and their difference in
    pooled standard deviations (within ±1: they agree within the seed spread)."""
    a, b = translation_mse(own), translation_mse(aligned)
    lines = [
        "| test latent MSE | own collections | row-aligned | difference / pooled sd |",
        "|---|---|---|---|",
    ]
    for d in DIRECTIONS:
        x, y = np.asarray(a[d]), np.asarray(b[d])
        pooled = np.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2) if min(len(x), len(y)) > 1 else np.nan
        name = d.replace("_to_", " → ")
        lines.append(f"| {name} | {spread(x)} | {spread(y)} | {(x.mean() - y.mean()) / pooled:+.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="Folder to write the datasets and runs under.")
    parser.add_argument(
        "--train", type=int, default=30_000, help="Train examples to cut the collections from."
    )
    parser.add_argument("--collection", type=int, default=10_000, help="Train examples per domain.")
    parser.add_argument("--pairs", type=int, default=1_000, help="True pairs of v-t and of v-attr.")
    parser.add_argument("--seeds", type=int, default=5, help="Members (seeds 0, 1, ...) per run.")
    parser.add_argument("--steps", type=int, default=2_000, help="Training steps.")
    parser.add_argument("--batch-size", type=int, default=256, help="Rows per batch.")
    args = parser.parse_args()
    shapes, aligned, own = args.root / "shapes", args.root / "aligned", args.root / "own"
    sizes = ["--val", 2000, "--test", 2000, "--seed", 0]
    # Same seed: the two datasets' val and test splits are the same examples; their train splits differ.
    gw(["data", "simple-shapes", shapes, "--train", args.train, *sizes])
    gw(["data", "simple-shapes", aligned, "--train", args.collection, *sizes])
    gw(["pretrain", shapes, "--quiet"])  # the shipped v and t specialists: encoding only
    gw(["pretrain", aligned, "--quiet"])
    own_collections(shapes, own, args.collection, args.pairs)
    train = ["--steps", args.steps, "--batch-size", args.batch_size, "--device", "cpu"]
    train_and_score(gw, own, args.root / "run-own", 2 * args.pairs, args.seeds, train)
    train_and_score(gw, aligned, args.root / "run-aligned", args.pairs, args.seeds, train)
    print(table(args.root / "run-own", args.root / "run-aligned"))


if __name__ == "__main__":
    main()
