"""What each workspace size keeps of shape and colour when it translates into `v`.

Reads an experiment (trained with `--grid-width` / `--grid-depth`, or at one size) and prints one
markdown row per preset, grid point (ordered by width and depth) and pair count: medians over seeds
of the probe's shape accuracy and colour error on the translations into `v` (from `attr` and from
`t` where trained), each also as a ratio to the same probe read on the VAE's own reconstructions of
the test images (DATA/domains/v/metrics.json), the summed translation loss on test, and the
validation loss the grid selects on. The bar of a workspace that draws: with all pairs, shape ratio
at least 0.90 and colour ratio at most 2.

    PYTHONPATH=src python3 analysis/architecture_table.py EXPERIMENT
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import script_cli

from global_workspace.errors import UserError
from global_workspace.experiments.efficiency import VAL_MIN_MEAN
from global_workspace.experiments.semi_supervised.results_io import read_results_csv
from global_workspace.experiments.semi_supervised.resume import read_experiment
from global_workspace.fileio import read_json

SUM = "translation/sum/latent_mse"


def median(rows: list[dict[str, Any]], key: str) -> float:
    values = [float(r[key]) for r in rows if r.get(key) is not None]
    return float(np.median(values)) if values else math.nan


def main() -> None:
    parser = script_cli.parser(__doc__)
    parser.add_argument("experiment", type=Path, help="a finished `gw experiment semi-supervised` folder")
    parser.add_argument("--data", type=Path, help="its dataset folder, if it moved since the experiment")
    args = parser.parse_args()
    exp: Path = args.experiment
    if not (exp / "results.csv").is_file():
        raise UserError(f"{exp} holds no results.csv; finish the experiment first (rerun its command)")
    config = read_experiment(exp)
    data = args.data or Path(config.data)
    width, depth = config.width, config.depth
    rows = read_results_csv(exp / "results.csv")
    for r in rows:  # outside an architecture grid every member has the experiment's size
        r.setdefault("width", width)
        r.setdefault("depth", depth)
        r.setdefault("grid_point", f"width={width},depth={depth}")
    quality = read_json(data / "domains/v/metrics.json", "the v domain's metrics")
    recon_shape = float(quality["reconstruction/test/shape_accuracy"])
    recon_colour = float(quality["reconstruction/test/color_error"])
    print(f"v's own reconstructions on test: shape {recon_shape:.3f}, colour error {recon_colour:.4f}\n")
    sources = [d for d in ("attr", "t") if f"translation/{d}_to_v/shape_accuracy" in rows[0]]
    header = ["preset", "grid point", "N", "seeds"]
    for d in sources:
        header += [f"{d}→v shape", "ratio", f"{d}→v colour", "ratio"]
    header += ["summed test MSE", "validation"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    groups: dict[tuple[str, int, int, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        key = (r["preset"], int(r["width"]), int(r["depth"]), r["grid_point"], r["paired"])
        groups.setdefault(key, []).append(r)
    for (name, _, _, point, paired), group in sorted(groups.items()):
        cells = [name, point, str(paired), str(len(group))]
        for d in sources:
            shape = median(group, f"translation/{d}_to_v/shape_accuracy")
            colour = median(group, f"translation/{d}_to_v/color_error")
            cells += [f"{shape:.3f}", f"{shape / recon_shape:.2f}"]
            cells += [f"{colour:.4f}", f"{colour / recon_colour:.2f}"]
        cells += [f"{median(group, SUM):.3f}", f"{median(group, VAL_MIN_MEAN):.4f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    script_cli.run(main)
