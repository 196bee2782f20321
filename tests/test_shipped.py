"""Shipped specialists: export, default use by `gw pretrain`, checks of every file, fallbacks.

A set exported from the tiny pretrained dataset stands in for the package's own here (it trains
in seconds); test_shipped_quality.py checks the package's real set.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from global_workspace.data.format import load_dataset
from global_workspace.data.simple_shapes import generate_simple_shapes
from global_workspace.domains import shipped as shipped_module
from global_workspace.domains.latents import load_latents
from global_workspace.domains.ship import export_shipped
from global_workspace.domains.shipped import find_shipped, sha256_of
from global_workspace.domains.store import load_domain
from global_workspace.domains.visual import VisualDomain
from global_workspace.errors import UserError


class Trained(Exception):
    """Raised instead of training, to show which path `gw pretrain` took without paying for it."""


@pytest.fixture(scope="module")
def shipped_root(pretrained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shipped")
    fresh = root.parent / "fresh"
    generate_simple_shapes(fresh, {"train": 8, "val": 8, "test": 32}, seed=8)
    export_shipped(pretrained, fresh, root / "tiny", ("v", "t"), "tiny-set")
    return root


@pytest.fixture
def use_root(shipped_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the tiny set, installed as the package's shipped sets."""
    root = tmp_path / "shipped"
    shutil.copytree(shipped_root, root)
    monkeypatch.setattr(shipped_module, "SHIPPED_ROOT", root)
    return root / "tiny"


def _no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fit(*args: object) -> dict[str, float]:
        raise Trained

    monkeypatch.setattr(VisualDomain, "fit", fit)


def test_manifest_records_hashes_training_and_quality(shipped_root: Path, pretrained: Path) -> None:
    manifest = json.loads((shipped_root / "tiny" / "manifest.json").read_text())
    assert manifest["precision"] == "float16"
    assert manifest["dataset"]["image_size"] == 32 and manifest["dataset"]["name"] == "simple-shapes"
    for relative, entry in manifest["files"].items():
        assert sha256_of(shipped_root / "tiny" / relative) == entry["sha256"]
    assert "v/probe/weights.safetensors" in manifest["domains"]["v"]["files"]
    assert manifest["training"]["domains"]["v"]["steps"] == {"v": 80, "probe": 40, "blur": 20}
    assert manifest["training"]["data"]["train"] == 256 and manifest["evaluation"]["data"]["seed"] == 8
    assert "quality/shape_accuracy_ratio" in manifest["quality"]["v"]
    assert "caption/test/exact_match" in manifest["quality"]["t"]


def test_export_refuses_to_measure_on_the_training_seed(pretrained: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="another seed"):
        export_shipped(pretrained, pretrained, tmp_path / "out", ("v",), "x")


@pytest.mark.parametrize(("kinds", "name", "message"), [
    (("v",), "", "name the set plainly"),
    (("v",), "../x", "name the set plainly"),
    (("v", "v"), "x", "name each specialist to ship once"),
    ((), "x", "name each specialist to ship once"),
])  # fmt: skip
def test_export_refuses_a_name_that_is_no_name_and_a_specialist_named_twice(
    pretrained: Path, tmp_path: Path, kinds: tuple[str, ...], name: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        export_shipped(pretrained, pretrained, tmp_path / "out", kinds, name)
    assert not (tmp_path / "out").exists()


def test_export_never_replaces_its_inputs_or_a_folder_of_other_files(
    shipped_root: Path, pretrained: Path, tmp_path: Path
) -> None:
    """`--force` replaces only an earlier shipped set: never a dataset it reads, nor user files."""
    fresh = shipped_root.parent / "fresh"
    before = sorted(p.name for p in pretrained.iterdir())
    for out, message in [
        (pretrained, "is the dataset"),
        (pretrained / "set", "lies inside the dataset"),
        (pretrained.parent, "holds the dataset"),
        (fresh, "is the --fresh dataset"),
    ]:
        with pytest.raises(UserError, match=message):
            export_shipped(pretrained, fresh, out, ("v",), "x", force=True)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("important")
    with pytest.raises(UserError, match="is not a shipped specialists"):
        export_shipped(pretrained, fresh, notes, ("v",), "x", force=True)
    assert (notes / "todo.txt").read_text() == "important"
    assert sorted(p.name for p in pretrained.iterdir()) == before


def test_pretrain_uses_the_shipped_set(
    use_root: Path, tiny_shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_shapes, data)
    assert run_cli(["pretrain", str(data), "--domains", "v,t", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("using the shipped specialist 'tiny-set'") == 2 and "--from-scratch" in err
    for kind in ("v", "t"):
        record = json.loads((data / "domains" / kind / "config.json").read_text())["pretrain"]
        assert record["shipped"] == "tiny-set"
        domain = load_domain(data, kind)
        encoded = domain.encode(domain.raw(load_dataset(data).split("val"))).numpy()
        np.testing.assert_array_equal(encoded, load_latents(data, kind, "val"))
    assert (data / "domains" / "v" / "probe" / "weights.safetensors").is_file()
    # Asking to train a domain that holds the shipped weights needs --force.
    code = run_cli(["pretrain", str(data), "--domains", "v", "--from-scratch", "--quiet"])
    assert code == 2 and "holds the shipped specialist" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["missing", "truncated", "altered"])
def test_damaged_shipped_file_is_one_line(
    use_root: Path, tiny_shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    weights = use_root / "v" / "weights.safetensors"
    if damage == "missing":
        weights.unlink()
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        content = bytearray(weights.read_bytes())
        content[-1] ^= 1
        weights.write_bytes(bytes(content))
    data = tmp_path / "data"
    shutil.copytree(tiny_shapes, data)
    assert run_cli(["pretrain", str(data), "--domains", "v", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gw: error: shipped specialist file") and str(weights) in err[-1]
    assert "--from-scratch" in err[-1] and "reinstall" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (data / "domains" / "v").exists()


def test_other_datasets_and_from_scratch_train(
    use_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_training(monkeypatch)
    small = tmp_path / "small"
    generate_simple_shapes(small, {"train": 8, "val": 8, "test": 8}, seed=3, image_size=16)
    with pytest.raises(Trained):
        run_cli(["pretrain", str(small), "--domains", "v", "--quiet"])
    err = capsys.readouterr().err
    assert "training on cpu (the shipped specialists were trained on another dataset" in err
    assert "image_size 16, shipped 32" in err
    same = tmp_path / "same"
    generate_simple_shapes(same, {"train": 8, "val": 8, "test": 8}, seed=3)
    assert find_shipped(load_dataset(same), "v")[0] is not None
    for args, why in ((["--from-scratch"], "--from-scratch"), (["--seed", "0"], "--seed given")):
        with pytest.raises(Trained):
            run_cli(["pretrain", str(same), "--domains", "v", "--quiet", *args])
        assert f"training on cpu ({why})" in capsys.readouterr().err
