"""The whole experiment: train what is not done, gather the rows, write results and report."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...fileio import atomic_write_json, refuse_overlap
from ...locking import shared_input
from ...workspace.checkpoint import cpu_copies
from ...workspace.data import LatentData, check_unchanged_since_set_up, load_latent_data
from ...workspace.presets import MemberSpec
from .. import distributed
from ..efficiency import add_val_min_mean
from ..grid import select_points
from .config import ExperimentConfig
from .keep_best import train_keeping_best
from .partial import partial_chunks, partial_folder, remove_partials
from .planning import assign_chunks, chunk_id, plan_chunks
from .readings import add_summed_translation, all_readings, mean_baselines
from .results_io import (
    VALIDATION_CSV,
    ChunkResult,
    read_chunk_rows,
    validation_rows,
    write_chunk,
    write_results_csv,
)
from .resume import claim_folder, prepare_folder, stored_rows, stored_validation
from .scoring import score_chunk


@dataclass
class ExperimentOutcome:
    exp: Path
    rows: list[dict[str, Any]]
    """The rows the readings use: every member's, or in a grid those of the chosen points."""
    efficiency: dict[str, Any]
    report: Path
    trained_members: int
    seconds: float
    selection: dict[str, Any] | None = None
    """selection.json: the grid point each (preset, N) kept; None without a grid."""


def load_labels(data: Path) -> tuple[dict[str, np.ndarray] | None, list[str]]:
    """Train and test label rows of the dataset (None when DATA has no dataset.json)."""
    from ...data.format import load_dataset

    if not (Path(data) / "dataset.json").is_file():
        return None, []
    dataset = load_dataset(data)
    labels = {s: np.asarray(dataset.split(s).labels) for s in ("train", "test")}
    return labels, list(dataset.info.label_columns)


def train_chunk(
    data: LatentData,
    members: Sequence[MemberSpec],
    config: ExperimentConfig,
    labels: dict[str, np.ndarray] | None,
    label_columns: Sequence[str],
    progress: bool = True,
    desc: str = "",
    partial: Path | None = None,
) -> ChunkResult:
    """Train one ensemble of `members` (from its `partial` save, if any, saving there as it goes),
    pick each member's best validation weights, score on test."""
    start = time.perf_counter()
    trained = train_keeping_best(data, members, config, progress, desc, partial)
    metrics, pictures = score_chunk(trained, members, data, config, labels, label_columns)
    model = trained.model
    weights = cpu_copies(model.state_dict())
    return ChunkResult(
        list(members),
        metrics,
        pictures,
        weights,
        time.perf_counter() - start,
        trained.family.name,
        validation_rows(members, trained.checks),
    )


def run_experiment(
    config: ExperimentConfig,
    exp: Path,
    device: torch.device,
    force: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> ExperimentOutcome | None:
    """Train what is not done yet, then (on rank 0) gather, score and report. None on other ranks."""
    start = time.perf_counter()
    exp = Path(exp)
    refuse_overlap(exp, {"dataset": config.data}, "experiment folder")
    rank, world = distributed.rank_and_world()
    members = config.members()
    with contextlib.ExitStack() as held:  # rank 0's lock on EXP, until the results are written
        distributed.run_on_rank0_then_share(lambda: claim_folder(exp, config, device, world, held))
        held.enter_context(shared_input(Path(config.data)))  # no --force replaces the dataset meanwhile
        check_unchanged_since_set_up(config.data, config.domains, config.data_fingerprint)
        data = load_latent_data(config.data, config.domains, device)
        done = set(distributed.run_on_rank0_then_share(lambda: prepare_folder(exp, config, force)))
        todo = [m for m in members if m.label() not in done]
        if rank == 0:
            if done:
                say(f"resuming {exp}: {len(members) - len(todo)} of {len(members)} members already done")
            say(
                f"training {_what_is_left(config, todo, resuming=bool(done))} on {device}"
                + (f" over {world} processes" if world > 1 else "")
            )
        labels, columns = load_labels(Path(config.data))
        started = partial_chunks(exp, todo)
        begun = {m.label() for chunk in started for m in chunk}
        chunks = started + plan_chunks([m for m in todo if m.label() not in begun], config, parts=world)
        mine = [chunks[i] for i in assign_chunks(chunks, world, config)[rank]]
        for i, chunk in enumerate(mine):
            names = ", ".join(dict.fromkeys(m.preset for m in chunk))
            desc = f"ensemble {i + 1}/{len(mine)} ({len(chunk)} members: {names})"
            if world > 1:
                desc = f"rank {rank} " + desc
            saved = partial_folder(exp, chunk)
            result = train_chunk(data, chunk, config, labels, columns, progress, desc, saved)
            write_chunk(exp, result)
            shutil.rmtree(saved, ignore_errors=True)
            if rank == 0 or world == 1:
                say(f"  {desc}: {result.seconds:.0f} s")
        local_rows = [r for c in mine for r in read_chunk_rows(exp / "chunks" / chunk_id(c))]
        gathered = distributed.gather_rows(local_rows)
        if rank != 0:
            return None
        assert gathered is not None
        by_id = {**stored_rows(exp), **{r["member"]: r for r in gathered}}
        rows = [by_id[m.label()] for m in members]
        return finish(exp, config, data, rows, len(todo), time.perf_counter() - start)


def finish(
    exp: Path,
    config: ExperimentConfig,
    data: LatentData,
    rows: list[dict[str, Any]],
    trained: int,
    seconds: float,
) -> ExperimentOutcome:
    """results.csv (every member), validation.csv (every member's validation curves, where its chunk
    kept them), selection.json (in a grid), efficiency.json, figures and report (from the chosen
    grid points' members)."""
    from ..experiment_report import build_report

    curves = stored_validation(exp, [r["member"] for r in rows])
    if curves:
        add_summed_translation(curves)
        write_results_csv(exp / VALIDATION_CSV, curves)
    add_summed_translation(rows)
    add_val_min_mean(rows)
    chosen, selection = select_points(rows) if config.tuned else (rows, None)
    if selection is not None:
        atomic_write_json(exp / "selection.json", selection)
    baselines = mean_baselines(data)
    efficiency = all_readings(config, chosen, baselines)
    atomic_write_json(exp / "efficiency.json", efficiency)
    atomic_write_json(exp / "baselines.json", baselines)
    kept = {r["member"] for r in chosen}
    chosen_curves = [r for r in curves if r["member"] in kept]
    report = build_report(exp, config, chosen, efficiency, baselines, seconds, selection, rows, chosen_curves)
    # results.csv last: its presence marks the experiment finished.
    write_results_csv(exp / "results.csv", rows)
    remove_partials(exp)
    return ExperimentOutcome(exp, chosen, efficiency, report, trained, seconds, selection)


def _what_is_left(config: ExperimentConfig, todo: Sequence[MemberSpec], resuming: bool) -> str:
    """The members a run trains, in words: the whole grid, or what a resumed run has left."""
    if resuming:
        presets = ", ".join(dict.fromkeys(m.preset for m in todo))
        return f"the {len(todo)} members left ({presets})" if todo else "nothing more"
    grid = " × grid points" if config.grid is not None else ""
    return (
        f"{len(todo)} members ({len(config.presets)} presets × {len(config.paired)} pair counts{grid} × "
        f"{len(config.seeds)} seeds)"
    )
