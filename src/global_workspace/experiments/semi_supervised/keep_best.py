"""Training one ensemble whose members keep the weights of their best validation check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import UserError
from ...workspace.build import Ensemble, build_ensemble
from ...workspace.data import LatentData
from ...workspace.families import Family
from ...workspace.presets import MemberSpec
from ...workspace.trainer import fit
from ..efficiency import VAL_MIN_PREFIX
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
    data: LatentData, members: Sequence[MemberSpec], config: ExperimentConfig, progress: bool, desc: str
) -> TrainedChunk:
    """Train the ensemble, checking validation every `eval_every` steps for the weights to keep.

    Members with a translation loss keep the weights of their best validation translation loss;
    the others (e.g. the CLIP-like `cont`, whose decoders are never trained) keep their last. With
    `config.patience`, training ends once no member has improved for that many steps."""
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
    fit(
        ensemble.trainer,
        ensemble.labels(),
        evaluate=ensemble.validation_metrics,
        progress=progress,
        on_eval=keep,
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
        ensemble.trainer.host_step,
        keep.checks,
    )
