"""Training one ensemble whose members keep the weights of their best validation check."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...errors import UserError
from ...workspace.build import Ensemble, build_ensemble
from ...workspace.data import LatentData
from ...workspace.families import Family
from ...workspace.presets import MemberSpec
from ...workspace.trainer import EvalHook, Trainer, fit
from ..efficiency import VAL_MIN_PREFIX
from . import partial as saves
from .config import SELECT_ALL, SELECT_LAST, ExperimentConfig
from .planning import chunk_train_config, chunk_workspace


@dataclass
class TrainedChunk:
    """An ensemble after training, with what its members' results need besides their weights."""

    model: nn.Module
    family: Family
    selectable: torch.Tensor
    """(K,) bool: the members with a translation loss, which keep their best validation weights."""
    kept_step: torch.Tensor
    """(K,) the step whose weights each member kept."""
    val_min: dict[str, torch.Tensor]
    """`val_min/{metric}` -> (K,) the lowest validation value of each translation loss."""
    trained_steps: int
    """The steps the ensemble trained: the budget, or fewer where `patience` stopped it."""
    checks: list[tuple[int, dict[str, torch.Tensor]]]
    """Every validation check: its step and each direction's translation latent MSE, (K,) each."""


def _val_translation(metrics: dict[str, torch.Tensor], select_on: str) -> torch.Tensor:
    """(K,) the validation translation latent MSE summed over the directions of `select_on`."""
    if select_on == SELECT_ALL:
        return torch.stack([v for k, v in metrics.items() if k.startswith("translation/")]).sum(dim=0)
    return torch.stack([metrics[f"translation/{d}/latent_mse"] for d in select_on.split(",")]).sum(dim=0)


def _check_validation(
    loss: torch.Tensor, selectable: torch.Tensor, members: Sequence[MemberSpec], step: int
) -> None:
    """Refuse a NaN validation loss: it never beats the best so far, and the member would keep
    weights it never validated while claiming the last step."""
    bad = selectable & ~torch.isfinite(loss)
    if bool(bad.any()):
        k = int(bad.nonzero()[0])
        raise UserError(
            f"member {members[k].label()}: its validation translation loss is {float(loss[k])} at "
            f"step {step}; check the val latents, or try a lower --lr"
        )


def _is_translation(name: str) -> bool:
    return name.startswith("translation/") and name.endswith("/latent_mse")


def _track_minimum(minimum: dict[str, torch.Tensor], metrics: dict[str, torch.Tensor]) -> None:
    """minimum[name] = the lowest (K,) value of each translation latent MSE seen so far, as
    `val_min/{name}`: the paper's metric is the best validation loss over training, per direction."""
    for name, value in metrics.items():
        if _is_translation(name):
            key = VAL_MIN_PREFIX + name
            minimum[key] = torch.minimum(minimum[key], value) if key in minimum else value.clone()


class KeepBest:
    """The evaluation hook of `fit` that keeps, for each selectable member, the weights of its
    lowest validation translation loss, and records each direction's minimum."""

    def __init__(
        self, ensemble: Ensemble, selectable: torch.Tensor, select_on: str, steps: int, patience: int = 0
    ) -> None:
        self.members, self.model, self.select_on = ensemble.members, ensemble.model, select_on
        self.selectable, self.patience = selectable, patience
        self.best_loss = torch.full(selectable.shape, math.inf, device=selectable.device)
        self.kept_step = torch.full(selectable.shape, steps, device=selectable.device)
        self.val_min: dict[str, torch.Tensor] = {}
        self.checks: list[tuple[int, dict[str, torch.Tensor]]] = []
        self.best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def __call__(self, step: int, metrics: dict[str, torch.Tensor]) -> None:
        _track_minimum(self.val_min, metrics)
        self.checks.append((step, {k: v.detach().cpu() for k, v in metrics.items() if _is_translation(k)}))
        loss = _val_translation(metrics, self.select_on)
        _check_validation(loss, self.selectable, self.members, step)
        better = self.selectable & (loss < self.best_loss)
        self.best_loss = torch.where(better, loss, self.best_loss)
        self.kept_step = torch.where(better, step, self.kept_step)
        with torch.no_grad():
            for key, value in self.model.state_dict().items():
                self.best[key] = torch.where(_per_member(better, value), value.detach(), self.best[key])

    def state(self) -> tuple[dict[str, torch.Tensor], list[Any]]:
        """What this hook has seen, as tensors and a JSON list of checks, so that an interrupted
        training resumes with the same choice to make (partial.py)."""
        tensors = {"best_loss": self.best_loss, "kept_step": self.kept_step}
        tensors.update({f"best/{k}": v for k, v in self.best.items()})
        tensors.update(self.val_min)  # named `val_min/…` already
        checks = [[step, {k: v.tolist() for k, v in metrics.items()}] for step, metrics in self.checks]
        return tensors, checks

    def load_state(self, tensors: dict[str, torch.Tensor], checks: list[Any]) -> None:
        """Take back what `state` gave (tensors already on the model's device)."""
        self.best_loss, self.kept_step = tensors["best_loss"], tensors["kept_step"]
        self.best = {k: tensors[f"best/{k}"] for k in self.best}
        self.val_min = {k: v for k, v in tensors.items() if k.startswith(VAL_MIN_PREFIX)}
        self.checks = [(int(step), {k: torch.tensor(v) for k, v in seen.items()}) for step, seen in checks]

    def stalled(self, step: int) -> bool:
        """True once every member has gone `patience` steps without a better validation loss (never
        with patience 0, or while a member without a translation loss trains on)."""
        if not self.patience or not bool(self.selectable.all()):
            return False
        return bool((step - self.kept_step >= self.patience).all())

    def restore(self) -> None:
        """Put each selectable member's kept weights back into the model."""
        with torch.no_grad():
            for key, value in self.model.state_dict().items():
                value.copy_(torch.where(_per_member(self.selectable, value), self.best[key], value))


def _per_member(mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """(K,) mask shaped to broadcast over a (K, ...) weight."""
    return mask.view(-1, *([1] * (value.dim() - 1)))


def train_keeping_best(
    data: LatentData,
    members: Sequence[MemberSpec],
    config: ExperimentConfig,
    progress: bool,
    desc: str,
    partial: Path | None = None,
) -> TrainedChunk:
    """Train the ensemble, checking validation every `eval_every` steps for the weights to keep.

    Members with a translation loss keep the weights of their best validation translation loss;
    the others (e.g. the CLIP-like `cont`, whose decoders are never trained) keep their last. With
    `config.patience`, training ends once no member has improved for that many steps. With a
    `partial` folder, training starts from the state saved there, if any, and is saved there now and
    then (partial.py)."""
    device = next(iter(data.split("train").values())).device
    ensemble = build_ensemble(
        data,
        members,
        chunk_workspace(members, config, {d: s.latent_dim for d, s in data.specs.items()}),
        chunk_train_config(members, config.train),
        device,
        unpaired="when_used",
    )
    steps = config.train.steps
    selectable = torch.tensor([m.weight("translation") > 0 for m in members], device=device)
    if config.select_on == SELECT_LAST or not bool(selectable.any()):
        fit(ensemble.trainer, ensemble.labels(), progress=progress, desc=desc)
        kept_step = torch.full((len(members),), steps, device=device)
        return TrainedChunk(ensemble.model, ensemble.family, selectable, kept_step, {}, steps, [])
    keep = KeepBest(ensemble, selectable, config.select_on, steps, config.patience)
    trainer = ensemble.trainer
    on_eval: EvalHook = keep
    stopped = False  # a saved ensemble that had stopped improving when it was saved
    if partial is not None:
        stopped = saves.load_partial(partial, trainer, keep) and keep.stalled(trainer.host_step)
        on_eval = _saving(keep, partial, members, trainer, steps)
    if not stopped:
        fit(
            trainer,
            ensemble.labels(),
            evaluate=ensemble.validation_metrics,
            progress=progress,
            on_eval=on_eval,
            desc=desc,
            stop_early=keep.stalled,
        )
    keep.restore()
    return TrainedChunk(
        ensemble.model,
        ensemble.family,
        selectable,
        keep.kept_step,
        keep.val_min,
        trainer.host_step,
        keep.checks,
    )


def _saving(
    keep: KeepBest, folder: Path, members: Sequence[MemberSpec], trainer: Trainer, steps: int
) -> EvalHook:
    """`keep`, then a save of the ensemble to `folder` once the last save is `SAVE_SECONDS` old
    (never at the last step: the whole chunk is written then)."""
    last = time.monotonic()

    def hook(step: int, metrics: dict[str, torch.Tensor]) -> None:
        nonlocal last
        keep(step, metrics)
        if step < steps and time.monotonic() - last >= saves.SAVE_SECONDS:
            saves.save_partial(folder, members, trainer, keep)
            last = time.monotonic()

    return hook
