"""Damaged files, odd paths and odd values that used to end in a traceback, a box or a silent
mistake (issue 27, items 8 and 10): each is now one line `gw: error: …`, exit 2, or does what it says."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_line_error, run_cli
from safetensors.torch import load_file, save_file
from workspace_fixtures import linear_pair, one_thread  # noqa: F401

from global_workspace.data.format import load_dataset
from global_workspace.domains.store import load_domain
from global_workspace.errors import UserError
from global_workspace.fileio import atomic_directory, read_npz
from global_workspace.workspace.checkpoint import current_checkpoint
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.run import evaluate_run, make_config, train_workspace
from global_workspace.workspace.settings import TrainConfig
from global_workspace.workspace.trainer import NonFiniteLoss

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = ["--domains", "a,b", "--paired", "40", "--steps", "6", "--batch-size", "32", "--width", "8",
         "--depth", "2", "--eval-every", "3", "--device", "cpu", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linear_pair(tmp_path_factory.mktemp("latents") / "data", n=300)


@pytest.fixture
def run(data: Path, tmp_path: Path) -> Path:
    """A small finished run, copied per test so each may damage it."""
    out = tmp_path / "run"
    assert run_cli(["train", str(data), *TRAIN, "--out", str(out)]) == 0
    return out


def _error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    capsys.readouterr()
    assert run_cli([str(a) for a in args]) == 2
    return one_line_error(capsys)


def test_pair_counts_and_members_out_of_range_say_the_range(
    data: Path, run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = ["train", data, *TRAIN[:2], "--steps", "6", "--device", "cpu", "--quiet"]
    assert "--paired -1 must be >= 0" in _error(capsys, *train, "--paired", "-1", "--out", run.parent / "x")
    err = _error(capsys, *train, "--paired", "301", "--out", run.parent / "y")
    assert "has 300 pairs at most" in err
    err = _error(capsys, "translate", run, "--from", "a", "--to", "b", "--member", "5", "--device", "cpu")
    assert "choose one from 0 to 0 (--member" in err


def test_a_click_usage_error_is_one_line(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Typer used to draw a five-line box for these."""
    err = _error(capsys, "train", data, "--width", "wide")
    assert "'--width'" in err and "gw train --help" in err
    assert "Missing argument" in _error(capsys, "train")
    assert "No such command" in _error(capsys, "nonsense")


def test_ctrl_c_says_interrupted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Typer turned Ctrl-C into a silent exit 130."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("global_workspace.data.simple_shapes.generate_simple_shapes", interrupted)
    argv = ["data", "simple-shapes", str(tmp_path / "d"), "--train", "8", "--val", "8", "--test", "8"]
    assert run_cli(argv) == 130
    assert capsys.readouterr().err.strip() == "gw: interrupted"


def test_sigterm_stops_like_ctrl_c_and_leaves_no_lock_or_temporary_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGTERM (kill, a scheduler's time limit) ended the process where it stood: no last line, and
    its lock file and temporary folder stayed."""

    held: list[str] = []

    def terminated(*args: object, **kwargs: object) -> None:
        held.extend(os.listdir(tmp_path))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises here
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr("global_workspace.data.sharded.render_shard", terminated)  # inside the lock
    argv = ["data", "simple-shapes", str(tmp_path / "d"), "--train", "8", "--val", "8", "--test", "8"]
    assert run_cli([*argv, "--workers", "1"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip().endswith("\ngw: terminated")  # after the progress bar
    assert any(name.endswith(".lock") for name in held) and os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the test process's own handler is back


def test_a_plugin_that_fails_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken_plugin.py").write_text("raise ValueError('bad config in my plugin')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        err = _error(capsys, "--plugin", "broken_plugin", "data", "--help")
    finally:
        sys.modules.pop("broken_plugin", None)
    assert "ValueError: bad config in my plugin" in err and "python -c 'import broken_plugin'" in err


@pytest.mark.parametrize("command", ["train", "experiment", "data", "show", "pretrain"])
def test_an_impossible_path_is_one_line(
    command: str, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name longer than the file system allows (and any other refusal of the system)."""
    long = tmp_path / ("x" * 300)
    argv = {
        "train": ["train", data, *TRAIN, "--out", long],
        "experiment": ["experiment", "semi-supervised", data, "--domains", "a,b", "--paired", "8",
                       "--presets", "tr", "--seeds", "1", "--steps", "2", "--out", long],
        "data": ["data", "simple-shapes", long, "--train", "8", "--val", "8", "--test", "8"],
        "show": ["data", "show", data, "--out", f"{long}.png"],
        "pretrain": ["pretrain", long],
    }[command]  # fmt: skip
    assert "File name too long" in _error(capsys, *argv)


def test_a_dataset_larger_than_the_disk_is_refused_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _error(capsys, "data", "simple-shapes", tmp_path / "d", "--train", "99999999999999")
    assert "needs about" in err and "GB free" in err
    assert not any(tmp_path.iterdir())


def test_damaged_run_configuration_is_one_line(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = json.loads((run / "config.json").read_text())
    width = config["workspace"]["width"]
    (run / "config.json").write_text("[1, 2]")
    assert "not a JSON object" in _error(capsys, "evaluate", run, "--device", "cpu")
    config["workspace"]["width"] = -3
    (run / "config.json").write_text(json.dumps(config))
    assert "width -3" in _error(capsys, "evaluate", run, "--device", "cpu")
    # Each of these was a traceback or was read silently (a size "12" as 12, 12.5 as 12, steps -5).
    edits = {
        ("workspace", "width"): ("12", "width must be a whole number"),
        ("workspace", "depth"): (2.5, "depth must be a whole number"),
        ("workspace", "domains"): ({"a": 6, "a.b": 5}, "hold no '.'"),
        ("train", "steps"): (None, "steps must be a whole number"),
        ("train", "batch_size"): (0, "out of range: ['batch_size']"),
        ("train", "lr"): ("fast", "lr must be a finite number"),
    }
    for (part, key), (value, message) in edits.items():
        damaged = json.loads(json.dumps(config))
        damaged["workspace"]["width"] = width
        damaged[part][key] = value
        (run / "config.json").write_text(json.dumps(damaged))
        err = _error(capsys, "evaluate", run, "--device", "cpu")
        assert "is not a valid run configuration" in err and message in err, (key, err)
    # A valid but enormous network (depth 10**6 filled the memory for minutes before any check).
    for key, value in (("depth", 10**6), ("width", 10**9)):
        damaged = json.loads(json.dumps(config))
        damaged["workspace"]["width"] = width
        damaged["workspace"][key] = value
        (run / "config.json").write_text(json.dumps(damaged))
        assert "describes a network of about" in _error(capsys, "evaluate", run, "--device", "cpu")


@pytest.mark.parametrize("state", [{"format_version": 1}, {"format_version": 1, "step": "ten"}])
def test_a_checkpoint_state_without_a_step_is_one_line(
    state: dict[str, object], run: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = current_checkpoint(run)
    assert checkpoint is not None
    (checkpoint / "state.json").write_text(json.dumps(state))
    assert "has no step count" in _error(capsys, "evaluate", run, "--device", "cpu")
    assert "has no step count" in _error(capsys, "train", data, *TRAIN, "--out", run, "--resume")


@pytest.mark.parametrize("damage", ["a step that is no number", "bytes that are not UTF-8", "another header"])
def test_a_damaged_log_is_one_line_when_a_run_resumes(
    run: Path, data: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """Resuming truncates train.csv and val.csv to the resumed step; a damaged one was a traceback,
    or (another header) rows were appended under columns they do not fill."""
    config = json.loads((run / "config.json").read_text())
    config["train"]["steps"] = 12
    (run / "config.json").write_text(json.dumps(config))
    log = run / "val.csv"
    if damage == "a step that is no number":
        log.write_text(log.read_text() + 'x"\n')
    elif damage == "bytes that are not UTF-8":
        log.write_bytes(b"\xff\xfe" + log.read_bytes())
    else:
        log.write_text(log.read_text().replace("step,member", "epoch,member", 1))
    resume = [*TRAIN, "--out", run, "--resume"]
    resume[resume.index("--steps") + 1] = "12"
    err = _error(capsys, "train", data, *resume)
    assert f"{log} is damaged" in err and "delete it to resume" in err
    log.unlink()
    assert run_cli(["train", str(data), *map(str, resume)]) == 0


def test_resuming_what_has_no_checkpoint_says_what_to_do(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resume = ["train", data, *TRAIN, "--resume", "--out"]
    assert "does not exist; drop --resume" in _error(capsys, *resume, tmp_path / "none")
    (tmp_path / "early").mkdir()
    assert "drop --resume and pass --force" in _error(capsys, *resume, tmp_path / "early")


def test_a_wrong_shape_optimiser_state_is_one_line(
    run: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = current_checkpoint(run)
    assert checkpoint is not None
    state = load_file(checkpoint / "trainer.safetensors")
    name = next(k for k in state if k.startswith("exp_avg/"))
    state[name] = torch.zeros(3, 3)
    save_file(state, checkpoint / "trainer.safetensors")
    err = _error(capsys, "train", data, *TRAIN, "--out", run, "--resume")
    assert "another model configuration" in err


def test_damaged_pictures_are_refused_in_one_line(tmp_path: Path) -> None:
    file = tmp_path / "pictures.npz"
    with pytest.raises(UserError, match="is missing; rerun"):
        read_npz(file, "chunk pictures", "rerun")
    np.savez(file, a_to_b=np.zeros((2, 3), np.float32))
    assert read_npz(file, "chunk pictures", "rerun")["a_to_b"].shape == (2, 3)
    file.write_bytes(file.read_bytes()[:100])
    with pytest.raises(UserError, match="corrupted or truncated"):
        read_npz(file, "chunk pictures", "rerun")
    np.savez(file, a_to_b=np.array([{"x": 1}], dtype=object))
    with pytest.raises(UserError, match="corrupted or truncated"):
        read_npz(file, "chunk pictures", "rerun")
    assert zipfile.is_zipfile(file)


def test_evaluate_never_overwrites_and_records_the_step(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["evaluate", str(run), "--device", "cpu"]) == 0
    before = (run / "metrics.json").read_bytes()
    assert json.loads(before)["checkpoint"] == {"step": 6, "steps": 6, "finished": True}
    assert "pass --force" in _error(capsys, "evaluate", run, "--device", "cpu")
    assert (run / "metrics.json").read_bytes() == before
    assert run_cli(["evaluate", str(run), "--device", "cpu", "--force"]) == 0


def test_evaluating_an_interrupted_run_says_which_step_it_scored(data: Path, tmp_path: Path) -> None:
    train = TrainConfig(steps=20, batch_size=32, eval_every=5, log_every=5)
    config = make_config(data, ["a", "b"], [MemberSpec.from_preset("tr", 0, 40)], train, width=8, depth=2)
    train_workspace(config, tmp_path / "cut", "cpu", progress=False, tensorboard=False, until=10)
    scored = evaluate_run(tmp_path / "cut", device="cpu")
    assert (scored.step, scored.steps, scored.finished) == (10, 20, False)
    stored = json.loads(scored.file.read_text())["checkpoint"]
    assert stored == {"step": 10, "steps": 20, "finished": False}


def test_a_divergence_before_any_checkpoint_says_none_is_kept(data: Path, tmp_path: Path) -> None:
    """The message used to claim a kept checkpoint that did not exist."""
    train = TrainConfig(steps=20, batch_size=32, eval_every=10, log_every=5, lr=1e30)
    config = make_config(data, ["a", "b"], [MemberSpec.from_preset("full", 0, 40)], train, width=8, depth=2)
    with pytest.raises(NonFiniteLoss, match="before any checkpoint was saved"):
        train_workspace(config, tmp_path / "run", "cpu", progress=False, tensorboard=False)
    assert current_checkpoint(tmp_path / "run") is None


def test_a_loss_infinite_from_the_first_step_blames_the_inputs_not_the_lr(tmp_path: Path) -> None:
    """Latents near 1e30 overflow the squared error at once; "try a lower --lr" sent users astray."""
    data = linear_pair(tmp_path / "data", n=100)
    for split in ("train", "val", "test"):
        file = data / "domains" / "a" / "latents" / f"{split}.npy"
        np.save(file, (np.load(file) * 1e30).astype(np.float32))
    train = TrainConfig(steps=5, batch_size=32, eval_every=5, log_every=5)
    config = make_config(data, ["a", "b"], [MemberSpec.from_preset("full", 0, 40)], train, width=8, depth=2)
    with pytest.raises(NonFiniteLoss, match=r"in step 1; .*check the scale of the latents and of the --coef"):
        train_workspace(config, tmp_path / "run", "cpu", progress=False, tensorboard=False)


def test_coefficient_errors_list_only_what_the_preset_takes(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", data, *TRAIN, "--out", tmp_path / "run", "--preset", "direct-tr", "--coef", "dcy=1"]
    err = _error(capsys, *args)
    assert err.endswith("NAME one of cy, cycle, tr, translation")


@pytest.mark.parametrize(
    ("define", "message"),
    [
        ("all=full:dcy=1", "'all' stands for the six presets"),
        ("mine=full:dcy=1", "add it: --presets tr,mine"),
    ],
)
def test_a_define_that_would_be_ignored_is_refused(
    define: str, message: str, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["experiment", "semi-supervised", data, "--domains", "a,b", "--paired", "8", "--presets", "tr",
            "--seeds", "1", "--steps", "2", "--out", tmp_path / "exp", "--define", define]  # fmt: skip
    assert message in _error(capsys, *args)
    assert not (tmp_path / "exp").exists()


def test_force_onto_a_plain_file_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("an old file")
    with atomic_directory(target, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (target / "new.txt").read_text() == "new"


def test_translate_writes_text_targets_to_a_txt_file(
    pretrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["--domains", "v,attr", "--paired", "64", "--steps", "4", "--batch-size", "16", "--width", "8",
            "--depth", "2", "--device", "cpu", "--quiet", "--out", run]  # fmt: skip
    assert run_cli(["train", str(pretrained), *map(str, args)]) == 0
    out = tmp_path / "attr.txt"
    argv = ["translate", run, "--from", "v", "--to", "attr", "--n", "3", "--device", "cpu"]
    assert run_cli([*map(str, argv), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 6 and lines[0].startswith("0: truth: ") and "v → attr: " in lines[1]
    assert "give --out FILE.txt" in _error(capsys, *argv, "--out", tmp_path / "attr.png", "--force")
    assert "give --out FILE.png" in _error(capsys, *argv[:5], "v", *argv[6:], "--out", out, "--force")


def test_a_damaged_probe_is_an_error_not_a_skipped_readout(
    pretrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its metrics would otherwise vanish from metrics.json and results.csv with exit 0."""
    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(pretrained, data)
    args = ["--domains", "v,attr", "--paired", "64", "--steps", "4", "--batch-size", "16", "--width", "8",
            "--depth", "2", "--device", "cpu", "--quiet", "--out", run]  # fmt: skip
    assert run_cli(["train", str(data), *map(str, args)]) == 0
    weights = data / "domains" / "v" / "probe" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    err = _error(capsys, "evaluate", run, "--device", "cpu")
    assert "probe" in err and "weights.safetensors" in err
    assert not (run / "metrics.json").exists()


def test_attr_refuses_a_class_it_does_not_know(pretrained: Path) -> None:
    attr = load_domain(pretrained, "attr")
    labels = np.array(load_dataset(pretrained).split("test").labels[:4])
    labels[2, 0] = 7
    with pytest.raises(UserError, match=r"class 7 \(row 2\) is not one of the 3 classes"):
        attr.encode(labels)
