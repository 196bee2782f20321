"""`gw pretrain` end to end on the tiny dataset: files, reload, freezing, readout, bad inputs.

One module-scoped run (tiny step counts) serves every test; tests that damage files work on
copies. The whole run happens with network connections refused, so the text path (MiniLM) is
shown to work offline.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PRETRAIN_ARGS as ARGS
from conftest import run_cli
from torch import nn

from global_workspace.data.format import load_dataset
from global_workspace.domains.attr import AttrDomain
from global_workspace.domains.latents import DOMAIN_FORMAT_VERSION, load_latents
from global_workspace.domains.readout import Readout, read_attributes
from global_workspace.domains.store import load_domain
from global_workspace.domains.text import TextDomain
from global_workspace.domains.visual import VisualDomain
from global_workspace.errors import UserError


def test_writes_every_file(pretrained: Path) -> None:
    dataset = load_dataset(pretrained)
    for name, dim in (("v", 12), ("attr", 11), ("t", 64)):
        folder = pretrained / "domains" / name
        config = json.loads((folder / "config.json").read_text())
        assert config["name"] == name and config["kind"] == name
        assert config["latent_dim"] == dim
        assert config["format_version"] == DOMAIN_FORMAT_VERSION
        assert json.loads((folder / "metrics.json").read_text())["total_seconds"] > 0
        for split, n in dataset.info.splits.items():
            latents = np.load(folder / "latents" / f"{split}.npy")
            assert latents.dtype == np.float32 and latents.shape == (n, dim)
            assert np.isfinite(latents).all()
    assert json.loads((pretrained / "domains" / "attr" / "config.json").read_text())["loss"] == {
        "categorical": 3
    }
    for name in ("v", "t"):
        folder = pretrained / "domains" / name
        assert (folder / "weights.safetensors").is_file()
        assert (folder / "logs" / "log.csv").is_file() and any((folder / "logs" / "tb").iterdir())
    assert (pretrained / "domains" / "v" / "reconstructions.png").is_file()
    assert (pretrained / "domains" / "v" / "probe" / "weights.safetensors").is_file()
    assert (pretrained / "domains" / "t" / "captions.png").is_file()
    metrics = json.loads((pretrained / "domains" / "v" / "metrics.json").read_text())
    assert {"probe/test/shape_accuracy", "reconstruction/test/color_error", "quality/meets_bar"} <= set(
        metrics
    )
    metrics = json.loads((pretrained / "domains" / "t" / "metrics.json").read_text())
    assert {"caption/test/parse_rate", "caption/test/color_name_accuracy", "quality/meets_bar"} <= set(
        metrics
    )


@pytest.mark.parametrize("name", ["v", "attr", "t"])
def test_reload_gives_identical_latents_and_encode_is_deterministic(pretrained: Path, name: str) -> None:
    domain = load_domain(pretrained, name, "cpu")
    split = load_dataset(pretrained).split("test")
    saved = load_latents(pretrained, name, "test")
    first = domain.encode(domain.raw(split))
    assert first.dtype == torch.float32 and tuple(first.shape) == saved.shape
    np.testing.assert_array_equal(first.numpy(), saved)
    np.testing.assert_array_equal(domain.encode(domain.raw(split)).numpy(), first.numpy())


def test_decode_returns_the_domain_format(pretrained: Path) -> None:
    split = load_dataset(pretrained).split("test")
    v = load_domain(pretrained, "v")
    assert isinstance(v, VisualDomain)
    images = v.decode(v.encode(split.images[:5]))
    assert images.dtype == np.uint8 and images.shape == (5, 32, 32, 3)
    t = load_domain(pretrained, "t")
    assert isinstance(t, TextDomain)
    captions = t.decode(t.encode(split.captions[:5]))
    assert len(captions) == 5 and all(isinstance(c, str) for c in captions)
    attr = load_domain(pretrained, "attr")
    assert isinstance(attr, AttrDomain)
    back = attr.decode(attr.encode(split.labels))
    np.testing.assert_allclose(back.values, split.labels, atol=1e-3)


def test_frozen_specialists_receive_no_gradient(pretrained: Path) -> None:
    split = load_dataset(pretrained).split("train")
    v = load_domain(pretrained, "v")
    t = load_domain(pretrained, "t")
    assert isinstance(v, VisualDomain) and isinstance(t, TextDomain)
    head = nn.Linear(v.latent_dim + t.latent_dim, 3)
    images = torch.from_numpy(np.array(split.images[:8])).permute(0, 3, 1, 2).float() / 255
    v_latent, _ = v.vae.encode(images)  # inside the graph on purpose, not through encode()
    t_latent = t.encode(split.captions[:8])
    loss = head(torch.cat([v_latent, t_latent], dim=1)).pow(2).sum()
    loss.backward()
    assert head.weight.grad is not None
    for module in (v.vae, t.vae, t.decoder):
        assert not module.training
        assert all(not p.requires_grad and p.grad is None for p in module.parameters())


def _linear_fit(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    def design(x: np.ndarray) -> np.ndarray:
        return np.hstack([x, np.ones((len(x), 1))])

    a = design(train_x)
    w = np.linalg.solve(a.T @ a + 1e-2 * np.eye(a.shape[1]), a.T @ train_y)
    return design(test_x) @ w


@pytest.mark.parametrize(
    ("name", "min_accuracy", "max_position_ratio"), [("attr", 0.99, 0.01), ("v", 0.45, 0.6), ("t", 0.9, 0.95)]
)
def test_linear_readout_recovers_class_and_position(
    pretrained: Path, name: str, min_accuracy: float, max_position_ratio: float
) -> None:
    """A ridge readout fitted on the train latents and scored on them (256 examples, 13-33 weights
    per output): class accuracy (chance 1/3) and position error relative to predicting the mean
    (about 7 px). At this scale (80-100 steps) the image latent already holds position well and
    class a little; the text latent holds class, and position only weakly in a linear way (its
    captions name grid cells); metrics.json of a real run scores the decoded captions instead."""
    train = load_dataset(pretrained).split("train")
    x = load_latents(pretrained, name, "train")
    onehot = np.eye(3)[train.labels[:, 0].astype(int)]
    accuracy = np.mean(_linear_fit(x, onehot, x).argmax(1) == train.labels[:, 0])
    position = train.labels[:, 1:3]
    error = np.mean(np.hypot(*(_linear_fit(x, position, x) - position).T))
    baseline = np.mean(np.hypot(*(position - position.mean(axis=0)).T))
    assert accuracy >= min_accuracy
    assert error <= max_position_ratio * baseline


def test_readout_reads_every_domain(pretrained: Path) -> None:
    dataset = load_dataset(pretrained)
    labels = dataset.split("test").labels
    readout = Readout(pretrained, "cpu")
    for name in ("attr", "v", "t"):
        latents = load_latents(pretrained, name, "test")
        attributes = readout.attributes(name, latents)
        assert attributes.values.shape == labels.shape
        errors = readout.errors(name, latents, labels)
        assert {
            "shape_accuracy",
            "position_error_px",
            "size_error_px",
            "rotation_error_deg",
            "color_error",
        } <= set(errors)
        assert ("parse_rate" in errors) == (name == "t")
    assert readout.domain("v") is readout.domain("v")  # loaded once
    exact = readout.errors("attr", load_latents(pretrained, "attr", "test"), labels)
    assert (
        exact["shape_accuracy"] == 1.0 and exact["position_error_px"] < 1e-3 and exact["color_error"] < 1e-3
    )
    one_shot = read_attributes(pretrained, "attr", load_latents(pretrained, "attr", "test")[:4], "cpu")
    np.testing.assert_allclose(one_shot.values, labels[:4], atol=1e-3)
    with pytest.raises(UserError, match="latent size"):
        readout.attributes("v", np.zeros((2, 5), dtype=np.float32))


def test_rerun_reuses_and_force_retrains(
    pretrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "copy"
    shutil.copytree(pretrained, data)
    before = (data / "domains" / "attr" / "config.json").stat().st_mtime_ns
    assert run_cli(["pretrain", str(data), "--domains", "attr,v", *ARGS]) == 0
    assert "reusing" in capsys.readouterr().err
    assert (data / "domains" / "attr" / "config.json").stat().st_mtime_ns == before
    assert run_cli(["pretrain", str(data), "--domains", "attr", "--force", *ARGS]) == 0
    assert (data / "domains" / "attr" / "config.json").stat().st_mtime_ns != before
    np.testing.assert_array_equal(load_latents(data, "attr", "val"), load_latents(pretrained, "attr", "val"))


@pytest.mark.parametrize("damage", ["flip a byte", "delete"])
def test_a_damaged_weights_file_is_never_reused(
    damage: str, pretrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The weights' hashes in config.json are checked before a domain is reused."""
    data = tmp_path / "copy"
    shutil.copytree(pretrained, data)
    weights = data / "domains" / "v" / "probe" / "weights.safetensors"
    if damage == "delete":
        weights.unlink()
    else:
        raw = bytearray(weights.read_bytes())
        raw[-1] ^= 0xFF
        weights.write_bytes(bytes(raw))
    code = run_cli(["pretrain", str(data), "--domains", "v", *ARGS])
    _one_line_error(capsys, code, "probe/weights.safetensors", "missing or damaged", "--force")


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, *words: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("gw: error:"), err
    assert "Traceback" not in "\n".join(err)
    for word in words:
        assert word in err[-1]


def test_missing_and_corrupted_dataset(
    tmp_path: Path, tiny_shapes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _one_line_error(capsys, run_cli(["pretrain", str(tmp_path / "nowhere"), *ARGS]), "does not exist")
    (tmp_path / "run").mkdir()  # a folder, but no dataset: it said only "dataset.json is missing"
    _one_line_error(capsys, run_cli(["pretrain", str(tmp_path / "run"), *ARGS]), "is no dataset", "gw data")
    data = tmp_path / "broken"
    shutil.copytree(tiny_shapes, data)
    (data / "train" / "labels.npy").write_bytes(b"not a numpy file")
    _one_line_error(capsys, run_cli(["pretrain", str(data), *ARGS]), "labels.npy")
    assert not (data / "domains").exists()


def test_unknown_domain(pretrained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, run_cli(["pretrain", str(pretrained), "--domains", "v,audio", *ARGS]), "audio")
    with pytest.raises(UserError, match="has not been pretrained"):
        load_domain(pretrained, "audio")


def test_latent_file_of_the_wrong_shape(
    pretrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "copy"
    shutil.copytree(pretrained, data)
    bad = data / "domains" / "v" / "latents" / "val.npy"
    np.save(bad, np.zeros((64, 5), dtype=np.float32))
    content = bad.read_bytes()
    _one_line_error(capsys, run_cli(["pretrain", str(data), "--domains", "v", *ARGS]), "latent size 12")
    assert bad.read_bytes() == content  # reported, not overwritten


def test_model_from_another_version(
    pretrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "copy"
    shutil.copytree(pretrained, data)
    config_file = data / "domains" / "t" / "config.json"
    config = json.loads(config_file.read_text())
    config["format_version"] = DOMAIN_FORMAT_VERSION + 1
    config_file.write_text(json.dumps(config))
    _one_line_error(capsys, run_cli(["pretrain", str(data), "--domains", "t", *ARGS]), "another version")
    with pytest.raises(UserError, match="another version"):
        load_domain(data, "t")
    assert json.loads(config_file.read_text()) == config  # nothing overwritten

    config["format_version"] = DOMAIN_FORMAT_VERSION
    config["settings"]["hidden"] = 64  # weights no longer fit the model the config builds
    config_file.write_text(json.dumps(config))
    with pytest.raises(UserError, match="do not match"):
        load_domain(data, "t")
    (data / "domains" / "v" / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupted"):
        load_domain(data, "v")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--batch-size", "0"], ("--batch-size must be at least 1",)),
        (["--steps", "0"], ("--steps", "at least 1")),
        (["--steps", "v=-5"], ("--steps", "at least 1")),
        (["--steps", "v=5,probe=3,v=6"], ("--steps", "sets 'v' twice")),
        (["--init", "v=a", "--init", "v=b"], ("--init 'v' is given twice",)),
        (["--device", "tpu"], ("unknown device",)),
        (["--device", "cudafoo"], ("unknown device", "cuda:N")),
    ],
)
def test_bad_options_are_one_line(
    tiny_shapes: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: tuple[str, ...]
) -> None:
    _one_line_error(capsys, run_cli(["pretrain", str(tiny_shapes), "--quiet", *args]), *words)
    assert not (tiny_shapes / "domains").exists()


def test_rerun_with_other_settings_is_refused(
    pretrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "copy"
    shutil.copytree(pretrained, data)
    v_config = data / "domains" / "v" / "config.json"
    record = json.loads(v_config.read_text())["pretrain"]
    assert record["trained"] == {"v": 80, "probe": 40, "blur": 20} and record["seed"] == 0
    stamp = v_config.stat().st_mtime_ns
    shutil.rmtree(data / "domains" / "attr")
    code = run_cli(["pretrain", str(data), "--domains", "attr,v", "--seed", "7", "--steps", "999", "--quiet"])
    _one_line_error(capsys, code, "'v'", "seed 0, v=80 steps, probe=40 steps", "seed 7", "--force")
    assert not (data / "domains" / "attr").exists()  # checked before anything trained
    for same in (["--steps", "v=80", "--seed", "0"], ["--batch-size", "64"], []):
        assert run_cli(["pretrain", str(data), "--domains", "v", "--quiet", *same]) == 0
        assert "reusing" in capsys.readouterr().err
    # attr trains nothing, so no setting can differ from the ones it was made with.
    assert run_cli(["pretrain", str(data), "--domains", "attr", "--quiet"]) == 0
    assert run_cli(["pretrain", str(data), "--domains", "attr", "--seed", "7", "--quiet"]) == 0
    assert "reusing" in capsys.readouterr().err
    assert v_config.stat().st_mtime_ns == stamp
    # A record from before `trained` existed: its seed, batch size and named step counts still count.
    config = json.loads(v_config.read_text())
    del config["pretrain"]["trained"]
    v_config.write_text(json.dumps(config))
    code = run_cli(["pretrain", str(data), "--domains", "v", "--batch-size", "32", "--quiet"])
    _one_line_error(capsys, code, "batch size 64", "batch size 32")
    code = run_cli(["pretrain", str(data), "--domains", "v", "--steps", "probe=41", "--quiet"])
    _one_line_error(capsys, code, "probe=40 steps", "probe=41 steps")
