"""`gw pretrain --init NAME=FOLDER`: a specialist trains on from saved weights (fine-tuning)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from safetensors.torch import load_file, save_file

from global_workspace.data.simple_shapes import generate_simple_shapes
from global_workspace.domains.ship import export_shipped
from global_workspace.domains.visual import ConvVAE

FINE_TUNE = ["--steps", "v=6", "--lr", "v=1e-4", "--batch-size", "64", "--device", "cpu", "--quiet"]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v.float() for k, v in load_file(str(folder / "weights.safetensors")).items()}


def _distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Between two VAEs' learned weights (BatchNorm's running statistics left out)."""
    learned = [k for k in a if "running_" not in k and "num_batches" not in k]
    return float(sum((a[k] - b[k]).pow(2).sum() for k in learned) ** 0.5)


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, *words: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("gw: error:"), err
    assert "Traceback" not in "\n".join(err)
    for word in words:
        assert word in err[-1], err[-1]


@pytest.fixture
def fresh_copy(tiny_shapes: Path, tmp_path: Path) -> Path:
    data = tmp_path / "shapes"
    shutil.copytree(tiny_shapes, data)
    return data


def test_the_visual_vae_trains_on_from_the_weights_it_is_given_and_keeps_their_probe(
    pretrained: Path, fresh_copy: Path, tmp_path: Path
) -> None:
    start = pretrained / "domains" / "v"
    assert run_cli(["pretrain", str(fresh_copy), "--domains", "v", "--init", f"v={start}", *FINE_TUNE]) == 0
    tuned = fresh_copy / "domains" / "v"
    before, after = _weights(start), _weights(tuned)
    torch.manual_seed(0)
    fresh = {k: v.float() for k, v in ConvVAE(32, 12, [32, 64, 128, 256]).state_dict().items()}
    moved = _distance(after, before)
    assert 0 < moved < 0.05 * _distance(fresh, before)  # trained, and from the given weights
    probe_before, probe_after = _weights(start / "probe"), _weights(tuned / "probe")
    assert all(torch.equal(probe_before[k], probe_after[k]) for k in probe_before)
    record = json.loads((tuned / "config.json").read_text())["pretrain"]
    assert record["trained"] == {"v": 6} and record["lr"] == {"v": 1e-4}
    assert record["init"]["folder"] == str(start)
    assert set(record["init"]["weights"]) == {"weights.safetensors", "probe/weights.safetensors"}
    assert record["init"]["pretrain"]["trained"] == {"v": 80, "probe": 40, "blur": 20}  # the start's record
    metrics = json.loads((tuned / "metrics.json").read_text())
    assert "reconstruction/test/color_error" in metrics
    # Shipped, the set's manifest keeps the chain: this run's steps and rate, and its start's record.
    test = tmp_path / "test"
    generate_simple_shapes(test, {"train": 8, "val": 8, "test": 32}, seed=8)
    export_shipped(fresh_copy, test, tmp_path / "set", ("v",), "tuned")
    trained = json.loads((tmp_path / "set" / "manifest.json").read_text())["training"]["domains"]["v"]
    assert trained["steps"] == {"v": 6} and trained["lr"] == {"v": 1e-4}
    assert trained["init"]["pretrain"]["trained"] == {"v": 80, "probe": 40, "blur": 20}


def test_a_rerun_with_other_starting_weights_or_rates_is_refused(
    pretrained: Path, fresh_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = pretrained / "domains" / "v"
    args = ["pretrain", str(fresh_copy), "--domains", "v", "--init", f"v={start}"]
    assert run_cli([*args, *FINE_TUNE]) == 0
    capsys.readouterr()
    assert run_cli([*args, *FINE_TUNE]) == 0
    assert "reusing" in capsys.readouterr().err
    other = tmp_path / "other_v"
    shutil.copytree(start, other)
    weights = load_file(str(other / "weights.safetensors"))
    first = next(iter(weights))
    weights[first] = weights[first] + 1.0

    save_file(weights, str(other / "weights.safetensors"))
    code = run_cli(["pretrain", str(fresh_copy), "--domains", "v", "--init", f"v={other}", *FINE_TUNE])
    _one_line_error(capsys, code, "other starting weights", "--force")
    slower = [*FINE_TUNE[:2], "--lr", "v=1e-5", *FINE_TUNE[4:]]
    _one_line_error(capsys, run_cli([*args, *slower]), "learning rates", "--force")


@pytest.mark.parametrize(
    ("init", "extra", "words"),
    [
        ("t={pretrained}/domains/t", ["--domains", "t"], ("'t'", "cannot train on from saved weights")),
        ("v={pretrained}/domains/attr", ["--domains", "v"], ("kind 'attr'", "not 'v'")),
        ("v={pretrained}/nowhere", ["--domains", "v"], ("no specialist there",)),
        ("v={pretrained}/domains/v", ["--domains", "attr"], ("--domains does not train",)),
        ("v", ["--domains", "v"], ("NAME=FOLDER",)),
    ],
)
def test_a_starting_point_that_cannot_be_used_is_one_line(
    pretrained: Path,
    fresh_copy: Path,
    capsys: pytest.CaptureFixture[str],
    init: str,
    extra: list[str],
    words: tuple[str, ...],
) -> None:
    code = run_cli(
        ["pretrain", str(fresh_copy), "--init", init.format(pretrained=pretrained), *extra, "--quiet"]
    )
    _one_line_error(capsys, code, "--init" if "NAME" in words[0] else "", *words)
    assert not (fresh_copy / "domains").exists()


def test_a_run_folder_given_as_a_starting_point_is_named_as_no_specialist(
    fresh_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "holds a specialist of kind None"."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": "x", "workspace": {}, "members": []}))
    code = run_cli(["pretrain", str(fresh_copy), "--domains", "v", "--init", f"v={run}", "--quiet"])
    _one_line_error(capsys, code, "is not a specialist's", "written by gw pretrain")


def test_force_never_replaces_the_folder_it_trains_on_from(
    fresh_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training on from DATA/domains/v into DATA/domains/v would lose the starting weights it records."""
    v = ["pretrain", str(fresh_copy), "--domains", "v", "--quiet"]
    assert run_cli(v) == 0  # the shipped VAE, encoding only
    folder = fresh_copy / "domains" / "v"
    before = {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    code = run_cli([*v, "--init", f"v={folder}", "--steps", "v=1", "--force"])
    _one_line_error(capsys, code, "domain 'v' folder", "is the --init v folder")
    assert {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("lr", "words"),
    [("v=fast", ("cannot read --lr",)), ("vae=1e-3", ("unknown model 'vae'",)), ("v=0", ("positive",))],
)
def test_a_bad_learning_rate_is_one_line(
    tiny_shapes: Path, capsys: pytest.CaptureFixture[str], lr: str, words: tuple[str, ...]
) -> None:
    _one_line_error(capsys, run_cli(["pretrain", str(tiny_shapes), "--lr", lr, "--quiet"]), *words)
    assert not (tiny_shapes / "domains").exists()


def test_naming_the_probe_in_steps_trains_a_new_one(pretrained: Path, fresh_copy: Path) -> None:
    start = pretrained / "domains" / "v"
    steps = "v=3,probe=3,blur=2"
    args = ["--steps", steps, "--lr", "v=1e-4", "--batch-size", "64", "--device", "cpu", "--quiet"]
    assert run_cli(["pretrain", str(fresh_copy), "--domains", "v", "--init", f"v={start}", *args]) == 0
    before, after = _weights(start / "probe"), _weights(fresh_copy / "domains" / "v" / "probe")
    assert not all(torch.equal(before[k], after[k]) for k in before)
    record = json.loads((fresh_copy / "domains" / "v" / "config.json").read_text())["pretrain"]
    assert record["trained"] == {"v": 3, "probe": 3, "blur": 2}


def test_zero_vae_steps_keep_the_starting_vae_and_train_only_a_new_probe(
    pretrained: Path, fresh_copy: Path
) -> None:
    tuned, probe_before, probe_after = _keeping_the_vae(pretrained, fresh_copy, "v=0,probe=3,blur=0")
    assert not all(torch.equal(probe_before[k], probe_after[k]) for k in probe_before)
    assert json.loads((tuned / "config.json").read_text())["pretrain"]["trained"] == {"v": 0, "probe": 3}


def test_naming_blur_trains_the_kept_probe_on_and_keeps_the_vae(pretrained: Path, fresh_copy: Path) -> None:
    """The shipped set's recipe: the VAE as it is, its probe trained on under blur (from its own
    weights, not from a fresh start)."""
    tuned, probe_before, probe_after = _keeping_the_vae(pretrained, fresh_copy, "v=0,blur=3")
    zeros = {k: torch.zeros_like(w) for k, w in probe_before.items()}
    assert 0 < _distance(probe_after, probe_before) < 0.05 * _distance(probe_before, zeros)  # near its start
    assert json.loads((tuned / "config.json").read_text())["pretrain"]["trained"] == {"v": 0, "blur": 3}
    metrics = json.loads((tuned / "metrics.json").read_text())
    assert "blur/loss" in metrics and "quality/color_error_ratio" in metrics


def _keeping_the_vae(
    pretrained: Path, data: Path, steps: str
) -> tuple[Path, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """`gw pretrain DATA --domains v --init v=<pretrained v> --steps STEPS` (v=0): the VAE must come
    out bit-identical; returns the new domain folder and the probe's weights before and after."""
    start = pretrained / "domains" / "v"
    args = ["--steps", steps, "--batch-size", "64", "--device", "cpu", "--quiet"]
    assert run_cli(["pretrain", str(data), "--domains", "v", "--init", f"v={start}", *args]) == 0
    tuned = data / "domains" / "v"
    before, after = _weights(start), _weights(tuned)
    assert all(torch.equal(before[k], after[k]) for k in before)
    return tuned, _weights(start / "probe"), _weights(tuned / "probe")


@pytest.mark.parametrize(
    ("steps", "words"),
    [("v=0,probe=3", ("--steps v=0", "no --init v")), ("probe=0", ("probe=0", "at least 1", "v=0 only"))],
)
def test_zero_steps_without_a_start_to_keep_are_one_line(
    tiny_shapes: Path, capsys: pytest.CaptureFixture[str], steps: str, words: tuple[str, ...]
) -> None:
    code = run_cli(["pretrain", str(tiny_shapes), "--domains", "v", "--steps", steps, "--quiet"])
    _one_line_error(capsys, code, *words)
    assert not (tiny_shapes / "domains").exists()
