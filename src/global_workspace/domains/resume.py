"""Resumable specialist training: one model's optimisation state saved every few steps.

A specialist on a large dataset trains for hours on a CPU; an interruption then costs at most
`checkpoint_every` steps. FOLDER/{tag}/ holds:

state.safetensors   the model's weights, AdamW's moments and the random generators' states
state.json          step, scheduler and optimiser settings, the log rows, seconds spent, and
                    the final metrics once the model is done

Nothing is pickled. Resuming from the same state gives the same weights as an uninterrupted run.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import UserError
from ..fileio import atomic_directory, atomic_write_json, read_json

STATE_FILE = "state.safetensors"
META_FILE = "state.json"


@dataclass
class Progress:
    """Where one model's optimisation stands: what a checkpoint restores besides the tensors."""

    step: int = 0
    seconds: float = 0.0
    rows: list[dict[str, float]] = field(default_factory=list)
    """Log rows written so far (restored into log.csv on resume)."""
    recent: dict[str, list[float]] = field(default_factory=dict)
    """Each term's values over the last tenth of the steps (the reported means)."""
    metrics: dict[str, float] | None = None
    """The final metrics; set once the model has finished."""


def save_state(
    folder: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    generators: Sequence[torch.Generator],
    progress: Progress,
) -> None:
    """Write the checkpoint of one model into `folder`, replacing the previous one whole."""
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    for index, entries in opt_state["state"].items():
        for name, value in entries.items():
            tensors[f"opt/{index}/{name}"] = torch.as_tensor(value)
    for i, gen in enumerate(generators):
        tensors[f"generator/{i}"] = gen.get_state()
    meta = {
        "step": progress.step,
        "seconds": progress.seconds,
        "rows": progress.rows,
        "recent": progress.recent,
        "metrics": progress.metrics,
        "param_groups": opt_state["param_groups"],
        "scheduler": sched.state_dict(),
    }
    with atomic_directory(folder, force=True, what="training checkpoint") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / STATE_FILE))
        atomic_write_json(tmp / META_FILE, meta)


def load_state(
    folder: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    generators: Sequence[torch.Generator],
) -> Progress | None:
    """Restore a checkpoint written by save_state; None when `folder` holds none."""
    if not (folder / META_FILE).is_file():
        return None
    fix = f"delete {folder} to start this model over"
    meta = read_json(folder / META_FILE, "training checkpoint")
    try:
        tensors = load_file(str(folder / STATE_FILE))
    except Exception as exc:  # safetensors raises its own error types
        raise UserError(f"training checkpoint {folder / STATE_FILE} is unreadable ({exc}); {fix}") from exc
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("opt/"):
                _, index, name = key.split("/")
                state.setdefault(int(index), {})[name] = value
        groups = [dict(g, betas=tuple(g["betas"])) for g in meta["param_groups"]]
        opt.load_state_dict({"state": state, "param_groups": groups})
        sched.load_state_dict(meta["scheduler"])
        for i, gen in enumerate(generators):
            gen.set_state(tensors[f"generator/{i}"])
        return Progress(
            step=int(meta["step"]),
            seconds=float(meta["seconds"]),
            rows=list(meta["rows"]),
            recent={str(k): [float(x) for x in v] for k, v in meta["recent"].items()},
            metrics=None if meta["metrics"] is None else dict(meta["metrics"]),
        )
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"training checkpoint {folder} does not fit this model ({exc}); {fix}") from exc


def check_identity(folder: Path, identity: dict[str, Any]) -> bool:
    """Whether `folder` holds checkpoints of the same training (same data, settings and code).

    Writes `identity` into a fresh folder; False (and the folder emptied) when it differs."""
    file = folder / "identity.json"
    if file.is_file():
        if read_json(file, "training checkpoint identity") == identity:
            return True
        for child in sorted(folder.iterdir()):
            if child.is_dir():
                shutil.rmtree(child)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(file, identity)
    return False
