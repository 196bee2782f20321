"""A run's checkpoint is replaced atomically: a reader always finds one, and so does a killed writer."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from global_workspace.errors import UserError
from global_workspace.workspace import checkpoint
from global_workspace.workspace.checkpoint import (
    current_checkpoint,
    has_checkpoint,
    load_trainer_state,
    load_weights,
    save_checkpoint,
)


def _save(run: Path, step: int) -> None:
    """A checkpoint whose every weight and trainer value is `step`, so that a reader can tell
    whether what it loaded belongs together."""
    model = nn.Linear(3, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(step)
    save_checkpoint(run, model, {"exp_avg/weight": torch.full((2, 3), float(step))}, step)


def _new_run(tmp_path: Path, step: int) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    _save(run, step)
    return run


def _save_keeps_only_it(run: Path, step: int) -> None:
    """A save leaves its own checkpoint and the pointer, whatever lay there before."""
    _save(run, step)
    assert _load(run) == step
    assert sorted(p.name for p in run.iterdir()) == [f"checkpoint-{step}", "checkpoint.json"]


def _load(run: Path) -> int:
    """The step of the checkpoint in `run`, checked against its weights."""
    model = nn.Linear(3, 2)
    step = load_weights(run, model)
    assert all(bool((p == step).all()) for p in model.parameters()), step
    return step


def test_a_reader_always_finds_a_whole_checkpoint_while_the_writer_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _new_run(tmp_path, 0)
    real = os.replace

    def slow_replace(src: object, dst: object) -> None:
        real(src, dst)  # type: ignore[arg-type]
        time.sleep(0.005)  # the writer pauses after every rename, so the reader looks in between

    monkeypatch.setattr(os, "replace", slow_replace)
    done = threading.Event()
    failures: list[str] = []
    seen: list[int] = []

    def reader() -> None:
        while not done.is_set():
            try:
                if not has_checkpoint(run):
                    failures.append("no checkpoint")
                seen.append(_load(run))
                load_trainer_state(run)
            except (UserError, OSError, AssertionError) as exc:
                failures.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for step in range(1, 20):
            _save(run, step)
        _save_keeps_only_it(run, 20)
    finally:
        done.set()
        thread.join()
    assert failures == []
    assert len(set(seen)) > 1 and seen == sorted(seen)


KILLER = """
import os, shutil, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from test_checkpoint import _save

run, target, at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
owner, name = (os, "replace") if target == "replace" else (shutil, "rmtree")
real, calls = getattr(owner, name), []

def dies(*args, **kwargs):
    calls.append(args)
    if len(calls) == at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)

setattr(owner, name, dies)
_save(run, 2)
"""


@pytest.mark.parametrize(("target", "at"), [("replace", 1), ("replace", 2), ("replace", 3), ("rmtree", 1)])
def test_a_writer_killed_at_any_point_leaves_a_whole_checkpoint(tmp_path: Path, target: str, at: int) -> None:
    run = _new_run(tmp_path, 1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    here = str(Path(__file__).parent)
    done = subprocess.run([sys.executable, "-c", KILLER, str(run), target, str(at), here], env=env)
    assert done.returncode in (0, -9)
    assert has_checkpoint(run)
    assert _load(run) in (1, 2)
    _save_keeps_only_it(run, 3)  # and clears whatever the killed one left behind


def test_a_run_saved_before_the_pointer_still_loads_and_moves_on(tmp_path: Path) -> None:
    run = _new_run(tmp_path, 4)
    folder = current_checkpoint(run)
    assert folder is not None
    # The layout of earlier versions: RUN/checkpoint/ and no pointer.
    folder.rename(run / "checkpoint")
    (run / "checkpoint.json").unlink()
    assert has_checkpoint(run) and current_checkpoint(run) == run / "checkpoint"
    assert _load(run) == 4 and float(load_trainer_state(run)["exp_avg/weight"][0, 0]) == 4.0
    _save_keeps_only_it(run, 5)


def test_saving_the_same_step_again_never_touches_the_folder_in_use(tmp_path: Path) -> None:
    run = _new_run(tmp_path, 6)
    first = current_checkpoint(run)
    _save(run, 6)
    assert current_checkpoint(run) != first and _load(run) == 6


def test_a_corrupted_pointer_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    assert not has_checkpoint(run) and current_checkpoint(run) is None
    _save(run, 1)
    for text in ('{"folder": "../elsewhere"}', "[]", "{"):
        (run / checkpoint.POINTER).write_text(text)
        with pytest.raises(UserError, match=r"checkpoint pointer .*checkpoint\.json"):
            _load(run)
