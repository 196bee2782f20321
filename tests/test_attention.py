"""Attention: the key–query selector, corruption, selector training on a frozen workspace, and
`gw experiment attention` end to end with its bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_line_error, tree_bytes
from workspace_fixtures import one_thread  # noqa: F401

from global_workspace.attention.corruption import Corruption, CorruptionConfig
from global_workspace.attention.experiment import (
    AttentionData,
    AttentionSettings,
    train_classifier,
    train_selector,
)
from global_workspace.attention.selector import KeyQuerySelector, SelectorConfig, attend
from global_workspace.cli import main
from global_workspace.domains.latents import DOMAIN_FORMAT_VERSION
from global_workspace.errors import UserError
from global_workspace.workspace.model import GlobalWorkspace
from global_workspace.workspace.settings import WorkspaceConfig

DIMS = {"a": 4, "b": 7, "c": 3}  # latent sizes differ from each other and from the workspace


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(dims: dict[str, int], k: int = 2) -> GlobalWorkspace:
    return GlobalWorkspace(WorkspaceConfig(domains=dims, workspace_dim=6, width=16, depth=2), list(range(k)))


def _selector(dims: dict[str, int], steps: int, k: int = 2) -> KeyQuerySelector:
    return KeyQuerySelector(dims, 6, list(range(k)), SelectorConfig(steps=steps, head_size=5))


def _latents(dims: dict[str, int], rows: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {d: torch.randn(rows, n, generator=gen) for d, n in dims.items()}


# ---------------------------------------------------------------------------------------------
# Selector


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_weights_sum_to_one_and_do_not_depend_on_domain_order(steps: int) -> None:
    model, selector = _model(DIMS), _selector(DIMS, steps)
    u = _latents(DIMS, 9)
    state, alpha = attend(model, selector, u)
    assert state.shape == (2, 9, 6) and set(alpha) == set(DIMS)
    total = sum(alpha.values())
    assert isinstance(total, torch.Tensor)
    torch.testing.assert_close(total, torch.ones(2, 9))
    assert all((a >= 0).all() for a in alpha.values())
    reordered = {d: u[d] for d in reversed(list(DIMS))}
    state2, alpha2 = attend(model, selector, reordered)
    for d in DIMS:
        torch.testing.assert_close(alpha[d], alpha2[d])
    torch.testing.assert_close(state, state2)


@pytest.mark.parametrize("steps", [1, 2])
def test_gradients_reach_keys_and_query(steps: int) -> None:
    model, selector = _model(DIMS), _selector(DIMS, steps)
    state, alpha = attend(model, selector, _latents(DIMS, 5))
    (state.pow(2).sum() + (alpha["a"] * torch.arange(5.0)).sum()).backward()
    grads = [selector.query.weight.grad] + [selector.keys[d].weight.grad for d in DIMS]
    for grad in grads:
        assert grad is not None and grad.abs().sum() > 0


def test_batch_size_one_and_a_subset_of_domains() -> None:
    model, selector = _model(DIMS), _selector(DIMS, 2)
    state, alpha = attend(model, selector, _latents({"a": 4, "c": 3}, 1))
    assert state.shape == (2, 1, 6) and set(alpha) == {"a", "c"}
    torch.testing.assert_close(alpha["a"] + alpha["c"], torch.ones(2, 1))


def test_steps_refine_the_query_and_one_domain_is_refused() -> None:
    model = _model(DIMS)
    one, two = _selector(DIMS, 1), _selector(DIMS, 2)
    u = _latents(DIMS, 6)
    enc = {d: model.encode(d, x) for d, x in u.items()}
    first, second = two(u, enc)
    torch.testing.assert_close(first["a"], one(u, enc)[0]["a"])  # same seeds: step 1 is the one-step selector
    assert not torch.allclose(first["a"], second["a"])
    with pytest.raises(UserError, match="two domains"):
        KeyQuerySelector({"a": 3}, 6, [0], SelectorConfig())
    with pytest.raises(UserError, match="step"):
        SelectorConfig(steps=0)


# ---------------------------------------------------------------------------------------------
# Corruption


def test_one_sided_corruption_hits_one_domain_per_example() -> None:
    dims = {"a": 4, "b": 7}
    clean = _latents(dims, 200)
    corruption = Corruption(
        CorruptionConfig(noise="random", scale_low=0.2, scale_high=0.8), dims, 0, torch.device("cpu")
    )
    noisy, scales = corruption.one_sided(clean, torch.Generator().manual_seed(1))
    hit = torch.stack([scales[d] > 0 for d in dims])
    assert torch.all(hit.sum(dim=0) == 1)
    assert 60 < int(hit[0].sum()) < 140
    s = torch.stack([scales[d] for d in dims]).sum(dim=0)
    assert s.min() >= 0.2 and s.max() <= 0.8
    for j, d in enumerate(dims):
        delta = noisy[d] - clean[d]
        assert torch.all(delta[~hit[j]] == 0)
        # The added vector is 5 × scale × (zero mean, unit std) noise.
        unit = delta[hit[j]] / (5 * scales[d][hit[j]]).unsqueeze(1)
        torch.testing.assert_close(unit.mean(dim=1), torch.zeros(int(hit[j].sum())), atol=1e-5, rtol=0)
        torch.testing.assert_close(unit.std(dim=1), torch.ones(int(hit[j].sum())), atol=1e-4, rtol=0)


def test_fixed_noise_is_one_vector_and_two_sided_scales_are_independent() -> None:
    dims = {"a": 4, "b": 7}
    clean = _latents(dims, 50)
    gen = torch.Generator().manual_seed(0)
    fixed = Corruption(CorruptionConfig(noise="fixed"), dims, 3, torch.device("cpu"))
    noisy = fixed.two_sided(clean, {"a": 0.5, "b": 0.0}, gen)
    delta = noisy["a"] - clean["a"]
    torch.testing.assert_close(delta, delta[:1].expand_as(delta))
    assert torch.equal(noisy["b"], clean["b"])
    random = Corruption(CorruptionConfig(noise="random"), dims, 3, torch.device("cpu"))
    noisy = random.two_sided(clean, {"a": 0.1, "b": 1.0}, gen)
    da, db = noisy["a"] - clean["a"], noisy["b"] - clean["b"]
    assert not torch.allclose(da, da[:1].expand_as(da))
    torch.testing.assert_close(da.std(dim=1), torch.full((50,), 0.5), atol=1e-4, rtol=0)
    torch.testing.assert_close(db.std(dim=1), torch.full((50,), 5.0), atol=1e-3, rtol=0)


def test_bad_corruption_settings_are_user_errors() -> None:
    with pytest.raises(UserError, match="scale"):
        CorruptionConfig(scale_low=-0.1)
    with pytest.raises(UserError, match="empty"):
        CorruptionConfig(scale_low=0.8, scale_high=0.2)
    with pytest.raises(UserError, match="unknown noise"):
        CorruptionConfig(noise="gaussian")
    corruption = Corruption(CorruptionConfig(), {"a": 3}, 0, torch.device("cpu"))
    with pytest.raises(UserError, match="scale"):
        corruption.two_sided({"a": torch.zeros(2, 3)}, {"a": -1.0}, torch.Generator())
    for value in (math.inf, math.nan):
        with pytest.raises(UserError, match="scale"):
            corruption.two_sided({"a": torch.zeros(2, 3)}, {"a": value}, torch.Generator())
        with pytest.raises(UserError, match="selector_lr must be a finite number above 0"):
            AttentionSettings(selector_lr=value)
        with pytest.raises(UserError, match="grid_max must be a finite number"):
            AttentionSettings(grid_max=value)


# ---------------------------------------------------------------------------------------------
# Training a selector on a frozen workspace


def _class_data(rows: int, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Two domains that both show the class: a = one-hot + noise, b = a fixed nonlinear map of it."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(3, (rows,), generator=gen)
    a = torch.nn.functional.one_hot(labels, 3).float() * 2 - 1
    a = torch.cat([a, 0.3 * torch.randn(rows, 2, generator=gen)], dim=1)
    proj = torch.randn(5, 6, generator=torch.Generator().manual_seed(99))
    return {"a": a, "b": torch.tanh(a @ proj)}, labels


def test_trained_selector_avoids_a_domain_of_pure_noise_and_leaves_the_workspace_alone() -> None:
    dims = {"a": 5, "b": 6}
    model = _model(dims, k=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train, train_labels = _class_data(2000, 0)
    test, test_labels = _class_data(300, 1)
    data = AttentionData(train, train_labels, test, test_labels)
    settings = AttentionSettings(
        classifier_steps=150, selector_steps=250, batch_size=128, head_size=8, scale_low=0.5
    )
    device = torch.device("cpu")
    classifier, _ = train_classifier(model, data, settings, device)
    frozen_classifier = {k: v.clone() for k, v in classifier.state_dict().items()}
    corruption = Corruption(settings.corruption("random"), dims, 0, device)
    selector, _ = train_selector(model, classifier, data, 2, corruption, settings, device)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for k, v in classifier.state_dict().items():
        assert torch.equal(v, frozen_classifier[k]), k
    gen = torch.Generator().manual_seed(5)
    for noisy, clean in (("a", "b"), ("b", "a")):
        latents = dict(test)
        latents[noisy] = 5 * torch.randn(test[noisy].shape, generator=gen)  # the domain replaced by noise
        with torch.no_grad():
            _, alpha = attend(model, selector, latents)
        assert float(alpha[clean].mean()) > 0.75, (noisy, float(alpha[clean].mean()))


# ---------------------------------------------------------------------------------------------
# `gw experiment attention` end to end


@pytest.fixture(scope="module")
def trained_run(tiny_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny workspace run over `attr` and `x`, a fixed nonlinear map of it."""
    from global_workspace.domains.pretrain import PretrainConfig, pretrain
    from global_workspace.workspace.presets import MemberSpec
    from global_workspace.workspace.run import make_config, train_workspace
    from global_workspace.workspace.settings import TrainConfig

    root = tmp_path_factory.mktemp("attention")
    data = root / "data"
    shutil.copytree(tiny_shapes, data)
    pretrain(data, PretrainConfig(domains=("attr",), progress=False))
    attr_dim = json.loads((data / "domains/attr/config.json").read_text())["latent_dim"]
    proj = np.random.default_rng(0).normal(size=(attr_dim, 9)) / math.sqrt(attr_dim)
    folder = data / "domains" / "x"
    (folder / "latents").mkdir(parents=True)
    config = {"name": "x", "kind": "synthetic", "latent_dim": 9, "loss": {"categorical": 0},
              "format_version": DOMAIN_FORMAT_VERSION}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    for split in ("train", "val", "test"):
        attr = np.load(data / "domains/attr/latents" / f"{split}.npy")
        np.save(folder / "latents" / f"{split}.npy", np.tanh(attr @ proj).astype(np.float32))
    members = [MemberSpec.from_preset("full", seed=s, paired=256) for s in (0, 1)]
    train = TrainConfig(steps=30, batch_size=32, eval_every=0)
    run = root / "run"
    config_run = make_config(data, ["attr", "x"], members, train, width=8, depth=2)
    train_workspace(config_run, run, "cpu", progress=False, tensorboard=False)
    return run


TINY = ["--classifier-steps", "20", "--selector-steps", "10", "--batch-size", "32", "--grid-points", "3",
        "--test-rows", "40", "--device", "cpu", "--quiet"]  # fmt: skip


def _exit_code(*args: object) -> object:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code


def test_attention_experiment_end_to_end(trained_run: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    assert _exit_code("experiment", "attention", trained_run, "--out", exp, *TINY) in (0, None)
    results = json.loads((exp / "results.json").read_text())
    assert results["domains"] == ["attr", "x"] and results["members"] == 2
    assert results["checkpoint"] == {"step": 30, "steps": 30, "finished": True}
    assert set(results["table"]) == {"fixed", "random"}
    for noise in ("fixed", "random"):
        assert set(results["table"][noise]) == {"equal", "one-step", "two-step", "oracle"}
        assert results["table"][noise]["oracle"]["attention_on_corrupted"] == 0
        for scores in results["table"][noise].values():
            assert 0 <= scores["shape_accuracy"] <= 1 and len(scores["shape_accuracy_members"]) == 2
    assert {"equal", "alone/attr", "alone/x"} == set(results["clean"])
    grid = results["grid"]
    assert np.asarray(grid["shape_accuracy"]).shape == (3, 3)
    assert set(grid["attention"]) == {"attr", "x"}
    total = np.asarray(grid["attention"]["attr"]) + np.asarray(grid["attention"]["x"])
    np.testing.assert_allclose(total, 1.0, atol=1e-5)
    assert set(results["line"]["corrupted"]) == {"attr", "x"}
    html = (exp / "report.html").read_text()
    assert "data:image/png;base64" in html and "two-step" in html
    assert (exp / "figures" / "heatmap.svg").is_file() and (exp / "command.txt").is_file()
    # An existing EXP is refused without --force.
    assert _exit_code("experiment", "attention", trained_run, "--out", exp, *TINY) == 2


def test_a_run_that_stopped_early_is_named_as_such(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = json.loads((run / "config.json").read_text())
    config["train"]["steps"] = 60  # the run's checkpoint, step 30, is then an interrupted one's
    (run / "config.json").write_text(json.dumps(config))
    assert _exit_code("experiment", "attention", run, "--out", tmp_path / "exp", *TINY) in (0, None)
    assert "the run stopped at step 30 of 60" in capsys.readouterr().err
    results = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert results["checkpoint"] == {"step": 30, "steps": 60, "finished": False}
    assert "stopped at step 30 of 60" in (tmp_path / "exp" / "report.html").read_text()


def test_attention_bad_input(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def error(*args: object) -> str:
        assert _exit_code("experiment", "attention", *args, *TINY) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gw: error:") and "\n" not in err
        return err

    untrained = tmp_path / "untrained"
    untrained.mkdir()
    assert "train" in error(untrained, "--out", tmp_path / "e1")
    (untrained / "experiment.json").write_text("{}")
    assert "is an experiment folder" in error(untrained, "--out", tmp_path / "e1")
    assert "does not exist" in error(tmp_path / "missing", "--out", tmp_path / "e2")
    assert "two domains" in error(trained_run, "--out", tmp_path / "e3", "--domains", "attr")
    assert "no domain" in error(trained_run, "--out", tmp_path / "e4", "--domains", "attr,v")
    assert "scale" in error(trained_run, "--out", tmp_path / "e5", "--scale-low", "-0.5")
    assert not any((tmp_path / f"e{i}").exists() for i in range(1, 6))


@pytest.mark.parametrize("out", ["run", "run/attention", "data", "."])
def test_force_never_deletes_the_run_or_the_dataset_it_reads(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    """EXP is RUN, lies inside it, is RUN's dataset or holds them: refused even with --force."""
    shutil.copytree(trained_run.parent, tmp_path, dirs_exist_ok=True)  # run and data, privately
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["data"] = str(tmp_path / "data")
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    before = tree_bytes(tmp_path)
    args = ["experiment", "attention", tmp_path / "run", "--out", tmp_path / out, *TINY, "--force"]
    assert _exit_code(*args) == 2
    assert "that this command reads" in one_line_error(capsys)
    assert tree_bytes(tmp_path) == before
