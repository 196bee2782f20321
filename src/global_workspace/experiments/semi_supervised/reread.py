"""A finished experiment read again: every derived file recomputed from the members its chunks hold,
so that readings changed in code reach an experiment without training it again."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ...errors import UserError
from ...locking import exclusive_output
from ...workspace.data import load_latent_data
from .rescore import rescore_chunks
from .resume import check_experiment_data, read_experiment, stored_rows
from .run import ExperimentOutcome, finish


def reread_experiment(
    exp: Path, data: Path | None = None, say: Callable[[str], None] = print, rescore: bool = False
) -> ExperimentOutcome:
    """Rewrite what `finish` writes (results.csv, selection.json, efficiency.json, baselines.json,
    figures, report.html) from EXP's chunks, under the lock a run holds; `data`: the dataset folder
    where it moved; `rescore`: first score every member on test again (rescore.py)."""
    start = time.perf_counter()
    exp = Path(exp)
    config = read_experiment(exp)
    with exclusive_output(exp, fix=None):
        members = [m.label() for m in config.members()]
        by_id = stored_rows(exp)
        missing = [m for m in members if m not in by_id]
        if missing:
            raise UserError(
                f"experiment {exp} has {len(missing)} of {len(members)} members not trained yet (e.g. "
                f"{missing[0]}); rerun the command that made it (in {exp / 'experiment.json'}) to resume "
                "it, which also writes its results"
            )
        folder = Path(data) if data is not None else Path(config.data)
        check_experiment_data(exp, config, folder, "--data")
        config = dataclasses.replace(config, data=str(folder))  # the report's pictures read the dataset
        latents = load_latent_data(folder, config.domains, torch.device("cpu"))
        if rescore:
            rescore_chunks(exp, config, latents, say)
            by_id = stored_rows(exp)
        rows = [by_id[m] for m in members]
        outcome = finish(exp, config, latents, rows, 0, time.perf_counter() - start)
    grid = "selection.json, " if outcome.selection is not None else ""
    say(
        f"reread {len(rows)} members of {exp}: wrote results.csv, {grid}efficiency.json, baselines.json, "
        f"figures and {outcome.report.name}"
    )
    return outcome
