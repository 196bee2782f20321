"""The one way an ensemble is assembled for training: family -> task -> model -> sampler -> trainer.

`gw train` (run.py) and the semi-supervision experiment both build through `build_ensemble`, so
that a member trains alike whichever of them asked for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import UserError
from .data import LatentData
from .evaluate import Metrics
from .families import Family, family_of
from .losses import active_categories
from .pair_eval import split_metrics
from .pair_groups import make_sampler
from .presets import MemberSpec
from .settings import TrainConfig, WorkspaceConfig
from .trainer import Task, Trainer, member_coefficients

Unpaired = Literal["always", "when_used"]
"""Whether every step draws unpaired batches, or only when some member's loss reads them."""


@dataclass(frozen=True)
class Ensemble:
    """The members of one ensemble, ready to train: `trainer.model` is `model`."""

    members: tuple[MemberSpec, ...]
    family: Family
    task: Task
    model: nn.Module
    trainer: Trainer
    data: LatentData

    def validation_metrics(self, model: nn.Module) -> Metrics:
        """Latent metrics on the val split, the checks that training logs and selects on."""
        with torch.no_grad():
            return split_metrics(
                self.data, "val", lambda v: self.family.latent_metrics(model, v, self.data.specs)
            )

    def labels(self) -> list[str]:
        return [m.label() for m in self.members]


def check_members(members: Sequence[MemberSpec], task: Task, train_size: int) -> None:
    """Refuse pair counts the split cannot give and presets that need pairs they do not get."""
    if not members:
        raise UserError("an ensemble needs at least one member")
    for m in members:
        if m.paired < 0:
            raise UserError(f"--paired {m.paired} must be >= 0")
        if m.paired > train_size:
            raise UserError(
                f"--paired {m.paired} is not possible: the train split has {train_size} pairs at most"
                + ("; list some with `gw data latents … --pairs train=FILE`" if train_size == 0 else "")
            )
        needs = sorted(c for c in task.needs_pairs if m.weight(c) > 0)
        if m.paired == 0 and needs:
            raise UserError(
                f"preset {m.preset!r} uses {', '.join(needs)}, which needs paired examples; "
                "pass --paired N with N >= 1"
            )


def build_ensemble(
    data: LatentData,
    members: Sequence[MemberSpec],
    workspace: WorkspaceConfig,
    train: TrainConfig,
    device: torch.device,
    learn_logit_scale: bool = False,
    unpaired: Unpaired = "always",
) -> Ensemble:
    """The model of `members`' family on `device`, and the trainer that trains it on `data`'s
    train split; members that ask for pairs the split cannot give are refused first."""
    family = family_of(members)  # the model and task the presets train (families.py)
    active = active_categories(members)
    task = family.build_task(data.specs, active, learn_logit_scale)
    check_members(members, task, data.pair_count("train"))
    model = family.build_model(workspace, [m.seed for m in members]).to(device)
    draws_unpaired = unpaired == "always" or bool(active - task.needs_pairs)
    sampler = make_sampler(data, members, train.batch_size, draws_unpaired)
    coefficients = member_coefficients(task.categories, [m.coefficients for m in members], device)
    trainer = Trainer(model, task, sampler, coefficients, train)
    return Ensemble(tuple(members), family, task, model, trainer, data)
