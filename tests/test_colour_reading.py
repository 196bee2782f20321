"""analysis/colour_reading.py and probe_under_blur.py: docs/results.md splits the VAE's colour error
with them, so their readings must be what they claim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from test_trained_workspace import run_analysis

from global_workspace.data.simple_shapes import generate_simple_shapes

sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
from colour_reading import blurred


def test_the_blur_keeps_flat_colour_and_spreads_a_point_by_its_sigma() -> None:
    flat = torch.full((1, 3, 8, 8), 0.4)
    assert torch.allclose(blurred(flat, 0.4), flat)
    point = torch.zeros(1, 3, 5, 5)
    point[0, :, 2, 2] = 1.0
    spread = blurred(point, 0.4)
    assert torch.isclose(spread.sum(), torch.tensor(3.0))
    assert spread[0, 0, 2, 2] > spread[0, 0, 2, 1] > spread[0, 0, 1, 1] > 0
    assert blurred(point, 0.8)[0, 0, 2, 2] < spread[0, 0, 2, 2]  # wider blur, lower peak


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


def test_the_probe_tuned_under_blur_is_scored_beside_its_start(pretrained: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    generate_simple_shapes(fresh, {"train": 8, "val": 8, "test": 16}, seed=5)
    vae = pretrained / "domains" / "v"
    args = ("--vae", vae, "--steps", "3", "--batch-size", "16", "--out", tmp_path / "tuned")
    lines = run_analysis("probe_under_blur.py", pretrained, fresh, *args)
    rows = {r[0].strip("| "): r for r in (line.split(" | ") for line in lines if line.startswith("| "))}
    assert "reconstruction/test/color_error" in rows and "quality/color_error_ratio" in rows
    assert (tmp_path / "tuned" / "weights.safetensors").is_file()
