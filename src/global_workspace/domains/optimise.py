"""The one optimisation loop every specialist uses, with TensorBoard + CSV logs and a progress bar.

A specialist hands over its model and a `step_loss(batch_index) -> {term: tensor}` closure; the
loop sums the terms, steps AdamW under a one-cycle schedule and logs every term under its name.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..errors import UserError
from .resume import Progress, load_state, save_state


@dataclass(frozen=True)
class FitSettings:
    """What `gw pretrain` passes to every specialist's `fit`."""

    folder: Path
    """The domain's (temporary) output folder: logs, figures and sub-models such as the probe."""
    steps: dict[str, int]
    """Optimisation steps per model ("v", "probe", "t", "caption"); a missing key: its default."""
    batch_size: int = 128
    device: str = "cpu"
    seed: int = 0
    progress: bool = True
    checkpoints: Path | None = None
    """Where each model saves its resumable state (`resume.py`); None: no checkpoints."""
    trained: dict[str, int] = field(default_factory=dict)
    """Filled by `train`: the steps of every model the domain trained (none: nothing to train), so
    that a rerun can tell whether the settings it is given are those the domain was made with."""
    lr: dict[str, float] = field(default_factory=dict)
    """Peak learning rate per model (keys as `steps`); a missing key: the model's own."""
    init: Path | None = None
    """A domain folder whose weights the domain was loaded from before `fit`: it trains on from
    them instead of from a fresh initialisation (fine-tuning)."""

    def train(self, model: str, default_steps: int, lr: float) -> TrainSettings:
        """The TrainSettings of one model: its step count from `steps` or its default, its peak
        learning rate from `lr` or its own."""
        self.trained[model] = int(self.steps.get(model, default_steps))
        return TrainSettings(
            steps=self.trained[model],
            batch_size=self.batch_size,
            lr=self.lr.get(model, lr),
            seed=self.seed,
            device=self.device,
            progress=self.progress,
            checkpoint=None if self.checkpoints is None else self.checkpoints / model,
        )


@dataclass(frozen=True)
class TrainSettings:
    """How one specialist is optimised."""

    steps: int
    batch_size: int = 128
    lr: float = 3e-3
    """Peak learning rate of the one-cycle schedule."""
    weight_decay: float = 1e-5
    seed: int = 0
    device: str = "cpu"
    log_every: int = 25
    progress: bool = True
    checkpoint: Path | None = None
    """Folder of this model's resumable state; None: train from the start, save nothing."""
    checkpoint_every: int = 250


class TrainLog:
    """Scalars to TensorBoard (`tb/`) and to `log.csv` in one folder; either may be absent."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._rows: list[dict[str, float]] = []
        self._writer = None
        if folder is not None:
            from torch.utils.tensorboard import SummaryWriter

            folder.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(log_dir=str(folder / "tb"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._rows.append({"step": step, **values})
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, value, step)

    def restore(self, rows: list[dict[str, float]]) -> None:
        """Rows logged before an interruption: back into log.csv (TensorBoard has them already)."""
        self._rows.extend(rows)

    def close(self) -> None:
        if self.folder is None:
            return
        if self._writer is not None:
            self._writer.close()
        keys = sorted({k for row in self._rows for k in row if k != "step"})
        with open(self.folder / "log.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["step", *keys])
            writer.writeheader()
            writer.writerows(self._rows)


StepLoss = Callable[[int], dict[str, torch.Tensor]]


def optimise(
    model: nn.Module,
    step_loss: StepLoss,
    settings: TrainSettings,
    log: TrainLog,
    tag: str,
    generators: Sequence[torch.Generator] = (),
) -> dict[str, float]:
    """Run `settings.steps` AdamW steps; returns each term's mean over the last tenth and samples/s.

    With `settings.checkpoint`, the model, optimiser, schedule and `generators` (every random
    source `step_loss` draws from) are saved every `checkpoint_every` steps, and a rerun resumes
    from there; a model already finished is restored without a step."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    steps = max(1, settings.steps)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=settings.lr, total_steps=steps, pct_start=min(0.3, max(0.05, 200 / steps))
    )
    tail = max(1, steps // 10)
    progress = Progress()
    if settings.checkpoint is not None:
        progress = load_state(settings.checkpoint, model, opt, sched, generators) or progress
        log.restore(progress.rows)
    if progress.metrics is not None:
        model.eval()
        return progress.metrics

    def checkpoint() -> None:
        if settings.checkpoint is not None:
            save_state(settings.checkpoint, model, opt, sched, generators, progress)

    start = time.perf_counter() - progress.seconds
    bar = tqdm(
        range(progress.step, steps), desc=tag, disable=not settings.progress, leave=False, mininterval=1.0
    )
    for step in bar:
        terms = step_loss(step)
        total = sum(terms.values(), torch.zeros((), device=next(iter(terms.values())).device))
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        sched.step()
        if step % settings.log_every == 0 or step >= steps - tail:
            values = {f"{tag}/{k}": float(v.detach()) for k, v in terms.items()}
            if step >= steps - tail:
                for k, v in values.items():
                    progress.recent.setdefault(k, []).append(v)
            if step % settings.log_every == 0:
                values[f"{tag}/lr"] = float(sched.get_last_lr()[0])
                log.scalars(step, values)
                progress.rows.append({"step": step, **values})
                bar.set_postfix(loss=f"{float(total.detach()):.4g}")
        progress.step = step + 1
        if progress.step % settings.checkpoint_every == 0 and progress.step < steps:
            progress.seconds = time.perf_counter() - start
            checkpoint()
    seconds = time.perf_counter() - start
    model.eval()
    out = {k: float(np.mean(v)) for k, v in progress.recent.items()}
    out[f"{tag}/samples_per_s"] = steps * settings.batch_size / max(seconds, 1e-9)
    out[f"{tag}/train_seconds"] = seconds
    if not all(math.isfinite(v) for v in out.values()):
        raise UserError(f"{tag}: training diverged (loss {out}); lower the learning rate")
    progress.seconds, progress.metrics = seconds, out
    checkpoint()
    return out


def batch_indices(n: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """A random batch of example indices (with replacement across batches), drawn on the CPU."""
    return torch.randint(0, n, (min(batch_size, n),), generator=generator)
