"""Two writers on one output: the second is refused at once; a killed writer's lock blocks nothing."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error, run_cli
from workspace_fixtures import linear_pair

import global_workspace
from global_workspace import locking
from global_workspace.errors import UserError
from global_workspace.locking import exclusive_output, lock_file, shared_input

HOLD = """
import sys
from pathlib import Path
from global_workspace.locking import exclusive_output
with exclusive_output(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""

READ = HOLD.replace("exclusive_output", "shared_input")
"""Another process reading the folder (as training or an experiment does) until its stdin closes."""

TINY_DATA = ["--train", "16", "--val", "8", "--test", "8", "--workers", "1"]


@pytest.fixture(scope="module")
def latents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linear_pair(tmp_path_factory.mktemp("latents") / "data", n=64)


def _holder(path: Path, script: str = HOLD) -> subprocess.Popen[str]:
    """Another process holding the lock on `path` until its stdin closes (or it is killed)."""
    env = dict(os.environ, PYTHONPATH=str(Path(global_workspace.__file__).parents[1]))
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


@pytest.fixture
def held(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, int]]:
    """(the output another process is writing, that process's pid)."""
    path = tmp_path / request.param
    holder = _holder(path)
    yield path, holder.pid
    holder.communicate("")


def _commands(data: Path, out: Path) -> dict[str, list[str]]:
    train = ["--domains", "a,b", "--paired", "8", "--steps", "2", "--device", "cpu", "--quiet"]
    return {
        "data": ["data", "simple-shapes", str(out), *TINY_DATA],
        "demo": ["demo", str(out), "--quiet"],
        "train": ["train", str(data), *train, "--out", str(out)],
        "resume": ["train", str(data), *train, "--out", str(out), "--resume"],
        "experiment": [
            *["experiment", "semi-supervised", str(data), "--domains", "a,b", "--paired", "8"],
            *["--presets", "tr", "--seeds", "1", "--out", str(out)],
        ],
        "latents": [
            "data",
            "latents",
            str(out),
            *(
                f"--domain={d}="
                + ",".join(
                    str(data / "domains" / d / "latents" / f"{s}.npy") for s in ("train", "val", "test")
                )
                for d in ("a", "b")
            ),
        ],
        "pretrain": ["pretrain", str(out), "--quiet"],
        "evaluate": ["evaluate", str(out), "--device", "cpu"],
    }


@pytest.mark.parametrize("held", ["out"], indirect=True)
@pytest.mark.parametrize("command", ["data", "latents", "demo", "train", "resume", "experiment"])
def test_a_second_writer_is_refused_at_once(
    held: tuple[Path, int], command: str, latents: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, pid = held
    assert run_cli(_commands(latents, out)[command]) == 2
    err = one_line_error(capsys)
    assert f"{out} is being written by another gw process (pid {pid}); wait for it to finish" in err
    assert not out.exists()


@pytest.mark.parametrize("held", ["run"], indirect=True)
def test_evaluate_waits_for_the_training_of_its_run(
    held: tuple[Path, int], latents: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run being trained (here: a trained run whose lock another process holds) is not scored."""
    run, pid = held
    args = _commands(latents, tmp_path / "trained")["train"]
    assert run_cli(args) == 0
    (tmp_path / "trained").rename(run)
    assert run_cli(_commands(latents, run)["evaluate"]) == 2
    assert f"(pid {pid})" in one_line_error(capsys)
    assert not (run / "metrics.json").exists()


@pytest.mark.parametrize("held", ["run"], indirect=True)
def test_attention_waits_for_the_training_of_its_run(
    held: tuple[Path, int], latents: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, pid = held
    assert run_cli(_commands(latents, tmp_path / "trained")["train"]) == 0
    (tmp_path / "trained").rename(run)
    out = tmp_path / "attention"
    assert run_cli(["experiment", "attention", str(run), "--out", str(out), "--device", "cpu"]) == 2
    assert f"{run} is being written by another gw process (pid {pid})" in one_line_error(capsys)
    assert not out.exists()


def test_pretrain_is_refused_while_its_dataset_is_written(
    tiny_shapes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = _holder(tiny_shapes)
    try:
        assert run_cli(_commands(tiny_shapes, tiny_shapes)["pretrain"]) == 2
        assert f"(pid {holder.pid}); wait for it to finish" in one_line_error(capsys)
        assert not (tiny_shapes / "domains").exists()
    finally:
        holder.communicate("")
    assert not lock_file(tiny_shapes).exists()


def test_a_lock_left_by_a_killed_writer_blocks_nothing(tmp_path: Path) -> None:
    out = tmp_path / "shapes"
    holder = _holder(out)
    holder.send_signal(signal.SIGKILL)
    holder.communicate()
    assert lock_file(out).read_text().split()[0] == str(holder.pid)  # left behind, but not held
    assert run_cli(_commands(tmp_path, out)["data"]) == 0
    assert (out / "dataset.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes"]  # the stale lock file went too


def test_one_process_cannot_hold_a_lock_twice_and_a_failure_releases_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    refusal = f"^{re.escape(str(out))} is being written .* or choose another --out$"
    with pytest.raises(RuntimeError), exclusive_output(out):
        with pytest.raises(UserError, match=refusal), exclusive_output(tmp_path / "." / "out"):
            pass
        raise RuntimeError("the command failed")
    with exclusive_output(out):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_dataset_being_read_is_not_replaced_and_other_readers_go_on(
    latents: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dataset replaced under a running experiment gave it the new labels against the old latents."""
    data = tmp_path / "data"
    shutil.copytree(latents, data)
    reader = _holder(data, READ)
    try:
        before = sorted(p.name for p in data.rglob("*"))
        assert run_cli(["data", "simple-shapes", str(data), *TINY_DATA, "--force"]) == 2
        assert f"{data} is being used (read or written) by another gw process; wait" in one_line_error(capsys)
        assert sorted(p.name for p in data.rglob("*")) == before
        assert run_cli(_commands(data, tmp_path / "run")["train"]) == 0  # a second reader
        assert run_cli(_commands(data, tmp_path / "exp")["experiment"] + ["--steps", "2"]) == 0
    finally:
        reader.communicate("")
    assert not lock_file(data).exists()  # the last reader out removed it


def test_a_reader_waits_for_no_one_but_is_refused_while_the_dataset_is_written(
    latents: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = _holder(latents)
    try:
        assert run_cli(_commands(latents, tmp_path / "run")["train"]) == 2
        assert f"{latents} is being written by another gw process (pid {writer.pid})" in one_line_error(
            capsys
        )
        assert not (tmp_path / "run").exists()
    finally:
        writer.communicate("")


def test_a_dataset_on_read_only_storage_is_read_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No lock file can be made there, and no gw command can replace the dataset there either."""
    (tmp_path / "data").mkdir()

    def read_only(*args: object) -> int:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(locking.os, "open", read_only)
    with shared_input(tmp_path / "data"):
        assert not lock_file(tmp_path / "data").exists()


READERS = """
import sys, time
from pathlib import Path
from global_workspace.errors import UserError
from global_workspace.locking import shared_input
refused, end = 0, time.time() + 1
while time.time() < end:
    try:
        with shared_input(Path(sys.argv[1])):
            pass
    except UserError:
        refused += 1
print(refused)
"""


def test_readers_coming_and_going_together_are_never_refused(tmp_path: Path) -> None:
    """The last reader out holds the lock exclusively for an instant while it removes the file."""
    env = dict(os.environ, PYTHONPATH=str(Path(global_workspace.__file__).parents[1]))
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READERS, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    assert [reader.communicate()[0].strip() for reader in readers] == ["0", "0"]


def test_a_file_system_without_flock_is_read_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(locking.fcntl, "flock", no_flock)
    with shared_input(tmp_path / "data"):
        pass


def test_a_pretrain_that_only_reuses_runs_beside_a_reader(
    tiny_shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "shapes"
    shutil.copytree(tiny_shapes, data)
    assert run_cli(["pretrain", str(data), "--domains", "attr", "--quiet"]) == 0
    reader = _holder(data, READ)
    try:
        assert run_cli(["pretrain", str(data), "--domains", "attr", "--quiet"]) == 0  # reuses, writes nothing
        capsys.readouterr()
        assert run_cli(["pretrain", str(data), "--domains", "attr", "--force", "--quiet"]) == 2
        assert "being used (read or written)" in one_line_error(capsys)
    finally:
        reader.communicate("")


@pytest.mark.parametrize("command", ["train", "experiment"])
def test_a_dataset_replaced_before_the_lock_is_taken_is_refused(
    latents: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """The settings hash the latents a moment before the shared lock is taken; a gw pretrain --force
    ending in that moment would have the run record latents it never saw."""
    data = tmp_path / "data"
    shutil.copytree(latents, data)
    module = "workspace.run" if command == "train" else "experiments.semi_supervised.run"
    real = locking.shared_input

    def replaced_first(path: Path) -> contextlib.AbstractContextManager[None]:
        train = data / "domains" / "a" / "latents" / "train.npy"
        np.save(train, np.load(train) + 1.0)
        return real(path)

    monkeypatch.setattr(f"global_workspace.{module}.shared_input", replaced_first)
    out = tmp_path / "out"
    assert run_cli(_commands(data, out)[command] + ["--steps", "2"] * (command == "experiment")) == 2
    assert f"the latents under {data} were replaced while the run was being set up" in one_line_error(capsys)
    assert not (out / "summary.json").exists() and not (out / "results.csv").exists()
