"""A chunk's training saved while it runs, so that an interrupted experiment resumes a long ensemble
where it stopped instead of from its first step.

EXP/chunks/.partial-{chunk id}/ holds the ensemble's members (members.json, written last), its
weights and optimiser state (model.safetensors, trainer.safetensors) and what keep-best selection has
seen (keep.safetensors: the kept weights, losses, steps and validation minima; keep.json: every
check). The leading dot keeps it out of the finished chunks. It is replaced whole at each save and
deleted once its chunk is written; the sampler is a function of the step, so a resumed ensemble
trains on as if it had never stopped.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors.torch import load_file, save_file

from ...errors import UserError
from ...fileio import atomic_directory, atomic_write_json, read_json
from ...workspace.checkpoint import cpu_copies
from ...workspace.presets import MemberSpec
from ...workspace.trainer import Trainer
from .planning import chunk_id
from .results_io import chunk_members

if TYPE_CHECKING:
    from .keep_best import KeepBest

PREFIX = ".partial-"
SAVE_SECONDS = 300.0
"""Least time between two saves of one ensemble: saving costs a write of every weight twice."""


def partial_folder(exp: Path, members: Sequence[MemberSpec]) -> Path:
    return exp / "chunks" / f"{PREFIX}{chunk_id(members)}"


def save_partial(folder: Path, members: Sequence[MemberSpec], trainer: Trainer, keep: KeepBest) -> None:
    tensors, checks = keep.state()
    with atomic_directory(folder, force=True, what="partial chunk") as tmp:
        save_file(cpu_copies(trainer.model.state_dict()), str(tmp / "model.safetensors"))
        save_file(cpu_copies(trainer.state_dict()), str(tmp / "trainer.safetensors"))
        save_file(cpu_copies(tensors), str(tmp / "keep.safetensors"))
        atomic_write_json(tmp / "keep.json", checks)
        atomic_write_json(tmp / "members.json", [m.to_json() for m in members])


def load_partial(folder: Path, trainer: Trainer, keep: KeepBest) -> bool:
    """Put a saved ensemble back into `trainer` and `keep`; False when there is none."""
    if not (folder / "members.json").is_file():
        return False
    device = trainer.step.device
    try:
        state = {
            name: {k: v.to(device) for k, v in load_file(str(folder / f"{name}.safetensors")).items()}
            for name in ("model", "trainer", "keep")
        }
    except Exception as exc:  # safetensors raises its own error types
        raise UserError(
            f"{folder} is corrupted ({exc}); delete it to train its ensemble from the start"
        ) from exc
    trainer.model.load_state_dict(state["model"])
    trainer.load_state_dict(state["trainer"])
    keep.load_state(state["keep"], read_json(folder / "keep.json", "checks"))
    return True


def partial_chunks(exp: Path, todo: Sequence[MemberSpec]) -> list[list[MemberSpec]]:
    """The ensembles saved part-way whose members are all still to train, as they were made up, so
    that a resume plans them whole whatever the number of processes."""
    root = exp / "chunks"
    if not root.is_dir():
        return []
    waiting = {m.label(): m for m in todo}
    chunks: list[list[MemberSpec]] = []
    for folder in sorted(root.glob(f"{PREFIX}*")):
        if not (folder / "members.json").is_file():
            continue
        labels = [m.label() for m in chunk_members(folder)]
        if labels and all(label in waiting for label in labels):
            chunks.append([waiting.pop(label) for label in labels])
    return chunks


def remove_partials(exp: Path) -> None:
    """Every partial save left in EXP (its experiment has finished)."""
    for folder in (exp / "chunks").glob(f"{PREFIX}*"):
        shutil.rmtree(folder, ignore_errors=True)
