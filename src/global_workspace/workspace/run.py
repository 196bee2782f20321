"""Training and evaluating a global workspace run folder: the glue behind `gw train` / `gw evaluate`.

RUN/ holds config.json, command.txt, checkpoint.json and checkpoint-{step}/ (checkpoint.py), train.csv,
val.csv, tensorboard/, summary.json and, after `gw evaluate`, metrics.json (metrics_{split}.json for a
split other than test).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.format import DatasetInfo
from ..device import resolve_device
from ..domains.latents import domain_folder, read_spec
from ..errors import UserError
from ..fileio import (
    atomic_write_json,
    atomic_write_text,
    read_json,
    refuse_existing,
    refuse_overlap,
    remove_output,
)
from ..locking import exclusive_output, shared_input
from ..memory import latent_bytes, require_fits, training_bytes
from .build import build_ensemble
from .checkpoint import (
    MOVED_DATA,
    RunConfig,
    check_run_data,
    check_same_config,
    checkpoint_step,
    has_checkpoint,
    load_run_model,
    load_trainer_state,
    load_weights,
    read_config,
    save_checkpoint,
    write_config,
)
from .data import check_domains, check_unchanged_since_set_up, load_latent_data, train_fingerprint
from .evaluate import write_metrics
from .families import family_of
from .pair_eval import split_metrics
from .presets import MemberSpec
from .settings import TrainConfig, WorkspaceConfig
from .trainer import RunLog, fit


def make_config(
    data: Path | str,
    domains: Sequence[str],
    members: Sequence[MemberSpec],
    train: TrainConfig,
    workspace_dim: int = WorkspaceConfig.workspace_dim,
    width: int = WorkspaceConfig.width,
    depth: int = WorkspaceConfig.depth,
    learn_logit_scale: bool = False,
    domain_width: Mapping[str, int] | None = None,
    domain_depth: Mapping[str, int] | None = None,
) -> RunConfig:
    """A run configuration with the latent sizes read from the pretrained domains; `domain_width`
    and `domain_depth` size the named domains' encoders and decoders (`WorkspaceConfig`)."""
    data = Path(data).resolve()
    names = check_domains(data, domains)
    sizes = {d: read_spec(data, d).latent_dim for d in names}
    workspace = WorkspaceConfig(
        domains=sizes,
        workspace_dim=workspace_dim,
        width=width,
        depth=depth,
        domain_width=dict(domain_width or {}),
        domain_depth=dict(domain_depth or {}),
    )
    return RunConfig(
        data=str(data),
        workspace=workspace,
        members=list(members),
        train=train,
        learn_logit_scale=learn_logit_scale,
        data_fingerprint=train_fingerprint(data, names),
    )


def _prepare_folder(run: Path, config: RunConfig, force: bool, resume: bool, command: str | None) -> None:
    if resume:
        if not run.exists():
            raise UserError(f"--resume: {run} does not exist; drop --resume to train it")
        if not has_checkpoint(run):
            raise UserError(
                f"--resume: {run} has no checkpoint to resume from (it stopped before its first); "
                "drop --resume and pass --force to train it afresh"
            )
        check_same_config(run, config)
        write_config(run, config)  # same settings; DATA may have moved
        return
    if not force:
        _refuse_to_restart_an_interrupted_run(run)
    refuse_existing(run, force, "run folder", marker="config.json")
    remove_output(run)
    run.mkdir(parents=True)
    write_config(run, config)
    if command is not None:
        atomic_write_text(run / "command.txt", command + "\n")


def _refuse_to_restart_an_interrupted_run(run: Path) -> None:
    """Point an interrupted run's owner to --resume, not only to the --force that discards it."""
    try:
        stopped, steps = checkpoint_step(run), read_config(run).train.steps
    except (UserError, OSError):
        return  # no readable checkpoint: the folder is refused as any existing one
    if stopped < steps:
        raise UserError(
            f"run folder {run} holds a run that stopped at step {stopped} of {steps}; pass --resume to "
            "finish it, or --force to start it afresh"
        )


def train_workspace(
    config: RunConfig,
    run: Path | str,
    device: torch.device | str = "auto",
    force: bool = False,
    resume: bool = False,
    command: str | None = None,
    progress: bool = True,
    tensorboard: bool = True,
    until: int | None = None,
) -> dict[str, Any]:
    """Train every member of `config` in one ensemble; returns the summary written to summary.json.

    `until` stops (and checkpoints) at that step as an interruption would; `resume` continues."""
    run = Path(run)
    refuse_overlap(run, {"dataset": config.data}, "run folder")
    device = resolve_device(device) if isinstance(device, str) else device
    require_fits(
        training_bytes(config.workspace, len(config.members), config.train.batch_size)
        + latent_bytes(config.data, config.domains, ("train", "val")),
        device,
        f"training {len(config.members)} members of width {config.workspace.width}",
        "train fewer --ensemble-seeds, or use a smaller --width or --batch-size",
    )
    with exclusive_output(run), shared_input(Path(config.data)):
        check_unchanged_since_set_up(config.data, config.domains, config.data_fingerprint)
        data = load_latent_data(config.data, config.domains, device, splits=("train", "val"))
        for d, spec in data.specs.items():
            if config.workspace.domains[d] != spec.latent_dim:
                raise UserError(
                    f"domain {d!r} has latent size {spec.latent_dim}, the run expects "
                    f"{config.workspace.domains[d]}; the latents were re-pretrained, retrain the run"
                )
        ensemble = build_ensemble(
            data, config.members, config.workspace, config.train, device, config.learn_logit_scale
        )
        _prepare_folder(run, config, force, resume, command)
        model, trainer = ensemble.model, ensemble.trainer
        start = 0
        if resume:
            start = load_weights(run, model)
            trainer.load_state_dict({k: v.to(device) for k, v in load_trainer_state(run).items()})

        log = RunLog(run, start_step=start, tensorboard=tensorboard)
        try:
            speed: float | None = fit(
                trainer,
                ensemble.labels(),
                log=log,
                evaluate=ensemble.validation_metrics,
                save=lambda step: save_checkpoint(run, model, trainer.state_dict(), step),
                progress=progress,
                until=until,
            )
        finally:
            log.close()
        if start >= min(until or config.train.steps, config.train.steps):
            speed = _earlier_speed(run)  # nothing left to train: the speed measured before stands
        summary = {
            "steps": config.train.steps,
            "members": len(config.members),
            "steps_per_second": speed,
            "device": str(device),
        }
        atomic_write_json(run / "summary.json", summary)
        return summary


def metrics_file(run: Path, split: str) -> Path:
    return Path(run) / ("metrics.json" if split == "test" else f"metrics_{split}.json")


def check_split(data: Path, domains: Sequence[str], split: str) -> None:
    """Refuse a split the dataset does not have, naming those it has (the dataset's splits, or
    without dataset.json the splits with latents), before a missing file suggests pretraining."""
    info = data / "dataset.json"
    if info.is_file():
        splits = set(DatasetInfo.from_json(read_json(info, "dataset description"), info).splits)
    else:
        splits = {f.stem for d in domains for f in (domain_folder(data, d) / "latents").glob("*.npy")}
    if splits and split not in splits:  # none at all: loading the latents names what is missing
        have = ", ".join(sorted(splits))
        raise UserError(f"--split {split!r}: {data} has no such split; choose one of {have}")


def evaluate_run(
    run: Path | str,
    split: str = "test",
    device: torch.device | str = "auto",
    force: bool = False,
    data: Path | str | None = None,
) -> Scored:
    """Score a trained run on a split and write its metrics file, which records the step scored.
    `data`: the dataset folder, where it moved since training (its latents must be the same)."""
    run = Path(run)
    device = resolve_device(device) if isinstance(device, str) else device
    config, model, step = load_run_model(run, device)
    if data is not None:
        if not Path(data).is_dir():
            raise UserError(
                f"{data} is not a folder; name the dataset folder the run trained on ({MOVED_DATA})"
            )
        config = dataclasses.replace(config, data=str(Path(data).resolve()))
    elif not Path(config.data).is_dir():
        raise UserError(
            f"dataset {config.data}, which run {run} trained on, does not exist; if it moved, pass its "
            f"folder ({MOVED_DATA})"
        )
    with exclusive_output(run, fix=None):
        check_run_data(run, config)
        check_split(Path(config.data), config.domains, split)
        out = metrics_file(run, split)
        refuse_existing(out, force, "metrics file")
        family = family_of(config.members)
        latents = load_latent_data(config.data, config.domains, device, splits=(split,))
        skipped: dict[str, str] = {}
        metrics = split_metrics(
            latents,
            split,
            lambda v: family.evaluate(model, v, latents.specs, Path(config.data), split, skipped),
        )
        specs = [m.to_json() for m in config.members]
        scored = Scored(out, step, config.train.steps)
        not_applicable = family.not_applicable(config.domains)
        write_metrics(out, split, specs, metrics, skipped, not_applicable, scored.record())
        return scored


def _earlier_speed(run: Path) -> float | None:
    """The training speed an earlier summary.json recorded, or None where there is none to read."""
    try:
        summary = read_json(run / "summary.json", "run summary")
    except UserError:  # missing or damaged: the speed is unknown, which is no reason to fail
        return None
    speed = summary.get("steps_per_second") if isinstance(summary, dict) else None
    return float(speed) if isinstance(speed, int | float) else None


@dataclass(frozen=True)
class Scored:
    """Where a run's metrics went, and which checkpoint they score (an interrupted run's is early)."""

    file: Path
    step: int
    steps: int
    """The steps the run was set to train."""

    @property
    def finished(self) -> bool:
        return self.step >= self.steps

    def record(self) -> dict[str, Any]:
        return {"step": self.step, "steps": self.steps, "finished": self.finished}
