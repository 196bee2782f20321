"""Training one ensemble whose members keep the weights of their best validation check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ...errors import UserError
from ...workspace.data import LatentData
from ...workspace.families import Family, family_of
from ...workspace.losses import active_categories
from ...workspace.presets import MemberSpec
from ...workspace.sampling import Sampler
from ...workspace.trainer import Trainer, member_coefficients
from ..efficiency import VAL_MIN_PREFIX
from .config import SELECT_ALL, SELECT_LAST, ExperimentConfig
from .planning import chunk_train_config

PROGRESS_STEPS = 25
"""Steps between progress-bar updates."""


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


def _track_minimum(minimum: dict[str, torch.Tensor], metrics: dict[str, torch.Tensor]) -> None:
    """minimum[name] = the lowest (K,) value of each translation latent MSE seen so far, as
    `val_min/{name}`: the paper's metric is the best validation loss over training, per direction."""
    for name, value in metrics.items():
        if name.startswith("translation/") and name.endswith("/latent_mse"):
            key = VAL_MIN_PREFIX + name
            minimum[key] = torch.minimum(minimum[key], value) if key in minimum else value.clone()


def _keep_best(model: nn.Module, best: dict[str, torch.Tensor], better: torch.Tensor) -> None:
    """best[name][k] = current weights of member k wherever better[k] (every weight is (K, ...))."""
    for key, value in model.state_dict().items():
        mask = better.view(-1, *([1] * (value.dim() - 1)))
        best[key] = torch.where(mask, value.detach(), best[key])


def train_keeping_best(
    data: LatentData, members: Sequence[MemberSpec], config: ExperimentConfig, progress: bool, desc: str
) -> TrainedChunk:
    """Train the ensemble, checking validation every `eval_every` steps for the weights to keep."""
    train = data.split("train")
    device = next(iter(train.values())).device
    family = family_of(members)
    ws = config.workspace({d: s.latent_dim for d, s in data.specs.items()})
    model = family.build_model(ws, [m.seed for m in members]).to(device)
    active = active_categories(members)
    task = family.build_task(data.specs, active, False)
    sampler = Sampler(train, members, config.train.batch_size, unpaired=bool(active - task.needs_pairs))
    coefficients = member_coefficients(family.categories, [m.coefficients for m in members], device)
    trainer = Trainer(model, task, sampler, coefficients, chunk_train_config(members, config.train))

    # Members with a translation loss keep the weights of their best validation translation loss;
    # the others (e.g. the CLIP-like `cont`, whose decoders are never trained) keep their last.
    selectable = torch.tensor([m.weight("translation") > 0 for m in members], device=device)
    select = config.select_on != SELECT_LAST and bool(selectable.any())
    best_loss = torch.full((len(members),), math.inf, device=device)
    val_min: dict[str, torch.Tensor] = {}
    kept_step = torch.full((len(members),), config.train.steps, device=device)
    best = {k: v.detach().clone() for k, v in model.state_dict().items()} if select else {}
    every = config.train.eval_every if config.train.eval_every > 0 else config.train.steps
    bar = tqdm(total=config.train.steps, desc=desc, disable=not progress, leave=False, unit="step")
    done = 0
    while done < config.train.steps:
        n = min(PROGRESS_STEPS, every - done % every, config.train.steps - done)
        trainer.run(n)
        done += n
        bar.update(n)
        if done % every and done < config.train.steps:
            continue
        trainer.check_finite([m.label() for m in members])
        if select:
            with torch.no_grad():
                val = family.latent_metrics(model, data.split("val"), data.specs)
                _track_minimum(val_min, val)
                loss = _val_translation(val, config.select_on)
                _check_validation(loss, selectable, members, done)
                better = selectable & (loss < best_loss)
                best_loss = torch.where(better, loss, best_loss)
                kept_step = torch.where(better, done, kept_step)
                _keep_best(model, best, better)
    bar.close()
    if select:
        with torch.no_grad():
            for key, value in model.state_dict().items():
                mask = selectable.view(-1, *([1] * (value.dim() - 1)))
                value.copy_(torch.where(mask, best[key], value))
    return TrainedChunk(model, family, selectable, kept_step, val_min)
