"""analysis/colour_reading.py: docs/results.md splits the VAE's colour error with it, so its readings
must be what they claim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_trained_workspace import run_analysis


def test_every_reading_is_printed_against_the_probes_own(pretrained: Path) -> None:
    lines = run_analysis("colour_reading.py", pretrained, "--examples", "0")
    rows = {r[0].strip("| "): r for r in (line.split(" | ") for line in lines if line.startswith("| "))}
    assert rows["real"][2].strip(" |") == "1.00"
    names = [
        "real, blurred 0.3 px",
        "real, blurred 0.4 px",
        "reconstructions",
        "real shapes, reconstructed colour",
        "reconstructed shapes, true colour",
        "interior pixels (no probe)",
    ]
    for name in names:
        assert float(rows[name][1]) > 0.0


def test_a_dataset_without_the_vae_is_one_line(tiny_shapes: Path) -> None:
    script = Path(__file__).parents[1] / "analysis" / "colour_reading.py"
    done = subprocess.run([sys.executable, str(script), str(tiny_shapes)], capture_output=True, text=True)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("colour_reading.py: ")
