"""Members' test metrics read again through the dataset's specialists as they are now.

A chunk's test metrics are read once, when it trains, through the specialists of that day: the image
probe reads every translation into `v`. When a reader improves while the latents stay the same (a
better probe beside the same VAE), re-scoring brings the experiment up to date without training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...errors import UserError
from ...fileio import atomic_write_json, read_json
from ...finite import require_finite_metrics
from ...workspace.data import LatentData
from .config import ExperimentConfig
from .planning import chunk_workspace
from .results_io import chunk_members
from .resume import chunk_family, chunk_weights, finished_members
from .scoring import test_metrics


def rescore_chunks(exp: Path, config: ExperimentConfig, data: LatentData, say: Callable[[str], None]) -> None:
    """Rewrite the test metrics in every finished chunk's metrics.json (kept steps, validation
    minima and downstream tasks stay as they are)."""
    chunks = sorted({folder for folder, _ in finished_members(exp).values()})
    for i, chunk in enumerate(chunks):
        rescore_chunk(chunk, config, data)
        say(f"rescored chunk {i + 1}/{len(chunks)} ({chunk.name})")


def rescore_chunk(chunk: Path, config: ExperimentConfig, data: LatentData) -> None:
    members = chunk_members(chunk)
    family = chunk_family(chunk, members)
    dims = {d: s.latent_dim for d, s in data.specs.items()}
    model = family.build_model(chunk_workspace(members, config, dims), [m.seed for m in members])
    try:
        model.load_state_dict(chunk_weights(chunk))
    except RuntimeError as exc:
        raise UserError(f"{chunk / 'model.safetensors'} does not fit the experiment's model ({exc})") from exc
    model.eval()
    fresh = test_metrics(model, family, data, Path(config.data))
    labels = [m.label() for m in members]
    require_finite_metrics(fresh, labels, f"{chunk}: ", "check the dataset's specialists")
    stored = read_json(chunk / "metrics.json", "chunk metrics")
    for row, now in zip(stored["members"], fresh, strict=True):
        row.update(now)
    atomic_write_json(chunk / "metrics.json", stored)
