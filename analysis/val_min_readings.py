"""Two readings of "the minimum validation translation loss over training" for every member.

The experiment records each direction's minimum over the validation checks and averages them
(`val_min/translation/mean/latent_mse`, the reading issue 23 specifies). Had the paper's code logged
one translation loss, the mean of both directions, and taken its minimum, the figure would be the
minimum over checks of the mean, which is never lower. This prints, per preset, how far apart the
two readings lie (the relative excess of the minimum of the mean), from the experiment's chunk
validation files:

    PYTHONPATH=src python3 analysis/val_min_readings.py EXPERIMENT
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import script_cli

from global_workspace.errors import UserError


def readings(exp: Path) -> dict[str, tuple[str, float, float]]:
    """member -> (preset, mean over directions of each minimum, minimum over checks of the mean)."""
    files = sorted(exp.glob("chunks/*/validation.csv"))
    if not (exp / "experiment.json").is_file() or not files:
        raise UserError(f"{exp} is no experiment with validation checks (chunks/*/validation.csv)")
    checks: dict[str, list[dict[str, str]]] = defaultdict(list)
    for file in files:
        with file.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                checks[row["member"]].append(row)
    out = {}
    for member, rows in checks.items():
        names = [k for k in rows[0] if k.startswith("translation/") and k.endswith("/latent_mse")]
        values = np.array([[float(r[n]) for n in names] for r in rows])  # (checks, directions)
        out[member] = (rows[0]["preset"], float(values.min(axis=0).mean()), float(values.mean(axis=1).min()))
    return out


def main() -> None:
    parser = script_cli.parser(__doc__)
    parser.add_argument("experiment", type=Path)
    args = parser.parse_args()
    by_preset: dict[str, list[float]] = defaultdict(list)
    for preset, per_direction, of_mean in readings(args.experiment).values():
        by_preset[preset].append(of_mean / per_direction - 1)
    print("| preset | members | median excess | largest excess |")
    print("|---|---|---|---|")
    for preset, excess in by_preset.items():
        print(f"| {preset} | {len(excess)} | {np.median(excess):.1%} | {max(excess):.1%} |")


if __name__ == "__main__":
    script_cli.run(main)
