"""The package's own shipped specialists: intact, pickle-free, and good on fresh data.

The tiny dataset (seed 7) was never seen by their training (seed 0), so it is fresh data here.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from safetensors.torch import load_file

from global_workspace.data.format import load_dataset
from global_workspace.data.simple_shapes import render_labels
from global_workspace.domains.probe import Probe
from global_workspace.domains.shipped import SHIPPED_ROOT, ShippedSet, find_shipped, shipped_sets
from global_workspace.domains.text import TextDomain
from global_workspace.domains.visual import VisualDomain


@pytest.fixture(scope="module")
def shipped(tiny_shapes: Path) -> ShippedSet:
    found, why = find_shipped(load_dataset(tiny_shapes), "v")
    assert found is not None, why
    return found


def test_every_file_matches_its_hash_and_loads_without_pickle(shipped: ShippedSet) -> None:
    assert [s.name for s in shipped_sets()] == ["simple-shapes-32"]
    assert {"v", "t"} <= set(shipped.kinds)
    files = {str(f.relative_to(shipped.folder)) for f in shipped.folder.rglob("*") if f.is_file()}
    assert files == {*shipped.manifest["files"], "manifest.json"}
    assert all(f.endswith((".json", ".safetensors")) for f in files)
    for kind in shipped.kinds:
        shipped.verify(kind)
    for name in files:
        if name.endswith(".safetensors"):
            assert load_file(str(shipped.folder / name))
    size = sum((shipped.folder / f).stat().st_size for f in files)
    assert size <= 25 * 2**20
    assert SHIPPED_ROOT in shipped.folder.parents


def _hue(rgb: np.ndarray) -> float:
    return colorsys.rgb_to_hls(*(rgb / 255.0))[0] * 360.0


def test_a_purple_shape_comes_back_purple_and_keeps_its_shape(shipped: ShippedSet) -> None:
    vae = shipped.load("v", "v")
    assert isinstance(vae, VisualDomain)
    labels = np.array(
        [[c, 16, 16, 12, r, 150, 40, 170] for c in range(3) for r in (0.0, 1.0, 2.5)], dtype=np.float32
    )
    images = render_labels(labels)
    recon = vae.decode(vae.encode(images))
    for original, back in zip(images, recon, strict=True):
        mask = original.max(axis=-1) > 60
        true_colour, colour = original[mask].mean(axis=0), back[mask].astype(np.float64).mean(axis=0)
        difference = abs(_hue(colour) - _hue(true_colour))
        assert min(difference, 360 - difference) < 20, (true_colour, colour)
        assert colour.max() - colour.min() > 60  # saturated, not grey
    probe = Probe.load(shipped.folder / "v" / "probe", "cpu")
    decoded = vae.decode_float(vae.encode(images))
    assert (probe.predict(decoded).column("class") == labels[:, 0]).mean() >= 8 / 9


def test_reconstructions_of_fresh_images_keep_shape_and_colour(
    shipped: ShippedSet, tiny_shapes: Path, tmp_path: Path
) -> None:
    vae = shipped.load("v", "v")
    assert isinstance(vae, VisualDomain)
    probe = Probe.load(shipped.folder / "v" / "probe", "cpu")
    metrics = vae.evaluate(load_dataset(tiny_shapes), probe, tmp_path, split="test")
    assert metrics["probe/test/shape_accuracy"] >= 0.95
    assert metrics["quality/shape_accuracy_ratio"] >= 0.9
    assert metrics["quality/color_error_ratio"] <= 2.5  # a VAE that loses hue reads far above


def test_captions_decode_to_the_right_class_and_colour(
    shipped: ShippedSet, tiny_shapes: Path, tmp_path: Path
) -> None:
    text = shipped.load("t", "t")
    assert isinstance(text, TextDomain)
    scores = text.evaluate(load_dataset(tiny_shapes), tmp_path)
    assert scores["caption/test/parse_rate"] >= 0.95
    assert scores["caption/test/class_accuracy"] >= 0.95
    assert scores["caption/test/color_name_accuracy"] >= 0.85


def test_the_listing_names_each_specialists_command_and_its_measured_bars(
    shipped: ShippedSet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["specialists", "list"]) == 0
    out = capsys.readouterr().out
    for kind in shipped.kinds:
        command = " ".join(shipped.manifest["training"]["domains"][kind]["command"])
        assert f"  {kind}: trained by `{command}`" in out
    ratio = shipped.manifest["quality"]["v"]["quality/color_error_ratio"]
    assert f"quality/color_error_ratio {ratio:.4g}" in out
    assert "caption/test/parse_rate" in out and "on 5000 test examples of seed 1" in out
