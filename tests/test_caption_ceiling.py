"""analysis/caption_ceiling.py: docs/results.md bounds `t → v` with it, so it must read captions right."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from test_trained_workspace import run_analysis

sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
from caption_ceiling import caption_labels


def test_a_caption_states_the_class_exactly_and_the_rest_within_its_bins(tiny_shapes: Path) -> None:
    truth = np.load(tiny_shapes / "test" / "labels.npy")
    stated = caption_labels(tiny_shapes, "test", len(truth))
    assert (stated[:, 0] == truth[:, 0]).all()
    assert np.abs(stated[:, 1:3] - truth[:, 1:3]).max() <= 3.5  # half the widest location cell
    assert np.abs(stated[:, 3] - truth[:, 3]).max() <= 1.5  # half the widest size bin
    heading = np.angle(np.exp(1j * (stated[:, 4] - truth[:, 4])))
    assert np.abs(heading).max() <= np.pi / 8 + 1e-6  # half an 8-way sector
    assert np.abs(stated[:, 5:] - truth[:, 5:]).mean() < 40  # the nearest named colour


def test_the_ceiling_prints_one_row_per_input(pretrained: Path) -> None:
    lines = run_analysis("caption_ceiling.py", pretrained, "--steps", "20", "--eval-every", "10")
    assert lines[0].startswith("256 train pairs, 20 steps; v's own reconstructions on test: shape ")
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [row[0] for row in rows] == ["| attributes", "| caption", "| t"]
    for row in rows:
        shape, colour = float(row[1]), float(row[3])
        assert 0.0 <= shape <= 1.0 and colour > 0.0
