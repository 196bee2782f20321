"""analysis/val_min_readings.py: docs/results.md compares the two readings of the validation minimum
with it, so it must give the known values on hand-made checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_trained_workspace import run_analysis

HEADER = "member,preset,paired,seed,step,translation/a_to_b/latent_mse,translation/b_to_a/latent_mse\n"


def test_each_preset_reads_the_excess_of_the_minimum_of_the_mean(tmp_path: Path) -> None:
    (tmp_path / "experiment.json").write_text("{}")
    (tmp_path / "chunks" / "one").mkdir(parents=True)
    # tr: the directions bottom out at different checks (minima 1 and 1, means 1.5 and 1.5): +50%.
    # full: both at the same check: no excess.
    (tmp_path / "chunks" / "one" / "validation.csv").write_text(
        HEADER
        + "tr/paired=8/seed=0,tr,8,0,10,1.0,2.0\n"
        + "tr/paired=8/seed=0,tr,8,0,20,2.0,1.0\n"
        + "full/paired=8/seed=0,full,8,0,10,1.0,1.0\n"
        + "full/paired=8/seed=0,full,8,0,20,0.5,0.5\n"
    )
    rows = {line.split(" | ")[0].strip("| "): line for line in run_analysis("val_min_readings.py", tmp_path)}
    assert rows["tr"] == "| tr | 1 | 50.0% | 50.0% |"
    assert rows["full"] == "| full | 1 | 0.0% | 0.0% |"


def test_a_folder_without_checks_is_one_line(tmp_path: Path) -> None:
    script = Path(__file__).parents[1] / "analysis" / "val_min_readings.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True)
    assert done.returncode != 0 and done.stderr.strip().count("\n") == 0 and "no experiment" in done.stderr
