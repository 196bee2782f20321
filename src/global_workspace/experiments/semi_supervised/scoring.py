"""Scoring a trained ensemble on test: the family's metrics, the downstream tasks, the pictures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...finite import require_finite_metrics
from ...workspace.data import LatentData
from ...workspace.evaluate import per_member
from ...workspace.families import Family
from ...workspace.model import GlobalWorkspace
from ...workspace.pair_eval import split_metrics
from ...workspace.presets import MemberSpec
from ..downstream import LabelledStates, downstream_metrics
from .config import KEPT_STEP, TRAINED_STEPS, ExperimentConfig
from .keep_best import TrainedChunk


def score_chunk(
    trained: TrainedChunk,
    members: Sequence[MemberSpec],
    data: LatentData,
    config: ExperimentConfig,
    labels: dict[str, np.ndarray] | None,
    label_columns: Sequence[str],
) -> tuple[list[dict[str, float | None]], dict[str, np.ndarray]]:
    """(per-member test metrics, predicted latents of the first test examples per direction); the
    metrics are the family's evaluation, the kept step, the validation minima and the downstream
    tasks read from the workspace state."""
    model, family, selectable = trained.model, trained.family, trained.selectable
    model.eval()
    train, test = data.split("train"), data.split("test")
    with torch.no_grad():
        metrics = test_metrics(model, family, data, Path(config.data))
        for k, (row, step) in enumerate(zip(metrics, trained.kept_step.tolist(), strict=True)):
            row[KEPT_STEP] = float(step)
            if config.patience:
                row[TRAINED_STEPS] = float(trained.trained_steps)
            # Members without a translation loss (`cont`) never trained their decoders: no minimum.
            row.update({name: float(v[k]) if selectable[k] else None for name, v in trained.val_min.items()})
        if labels is not None and family.shared_space:
            assert isinstance(model, GlobalWorkspace)
            n_train = min(len(labels["train"]), max(config.downstream.labelled, config.downstream.odd_pool))
            states_train = {d: model.state(d, train[d][:n_train]) for d in data.specs}
            states_test = {d: model.state(d, test[d]) for d in data.specs}
            extra = downstream_metrics(
                LabelledStates(states_train, labels["train"][:n_train], label_columns),
                LabelledStates(states_test, labels["test"], label_columns),
                seeds=[m.seed for m in members],
                settings=config.downstream,
            )
            for row, more in zip(metrics, extra, strict=True):
                row.update(more)
        pictures = {}
        rows = {d: test[d][: config.pictures] for d in data.specs}
        for a in data.specs:
            for b in data.specs:
                if a != b:
                    pictures[f"{a}_to_{b}"] = model.translate(a, b, rows[a]).cpu().numpy()  # type: ignore[operator]
    require_finite_metrics(
        metrics, [m.label() for m in members], "", "the chunk is not written; try a lower --lr"
    )
    return metrics, pictures


@torch.no_grad()
def test_metrics(
    model: nn.Module, family: Family, data: LatentData, folder: Path
) -> list[dict[str, float | None]]:
    """Every member's test metrics as its family evaluates them, read through the specialists of the
    dataset in `folder` (the image probe reads translations into `v`); None where one does not apply."""
    skipped: dict[str, str] = {}
    dataset = folder if (folder / "dataset.json").is_file() else None
    scores = split_metrics(
        data, "test", lambda view: family.evaluate(model, view, data.specs, dataset, "test", skipped)
    )
    rows: list[dict[str, float | None]] = [dict(r) for r in per_member(scores)]
    for row in rows:
        row.update(dict.fromkeys(family.not_applicable(list(data.specs))))
    return rows
