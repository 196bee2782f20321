"""Specialist training resumes from its checkpoint to the same weights as an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from global_workspace.domains.optimise import TrainLog, TrainSettings, optimise
from global_workspace.errors import UserError


class Interrupted(Exception):
    pass


def _train(folder: Path | None, stop_at: int | None = None) -> tuple[torch.nn.Module, dict[str, float]]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    data = torch.randn(64, 4)
    gen = torch.Generator().manual_seed(1)
    noise = torch.Generator().manual_seed(2)

    def step_loss(step: int) -> dict[str, torch.Tensor]:
        if step == stop_at:
            raise Interrupted
        idx = torch.randint(0, 64, (16,), generator=gen)
        x = data[idx] + 0.1 * torch.randn(16, 4, generator=noise)
        return {"loss": model(x).pow(2).mean()}

    settings = TrainSettings(
        steps=20, batch_size=16, progress=False, checkpoint=folder, checkpoint_every=5, log_every=3
    )
    return model, optimise(model, step_loss, settings, TrainLog(None), "m", generators=(gen, noise))


def test_resumed_training_matches_uninterrupted(tmp_path: Path) -> None:
    plain, plain_metrics = _train(None)
    with pytest.raises(Interrupted):
        _train(tmp_path / "ckpt", stop_at=13)
    resumed, metrics = _train(tmp_path / "ckpt")
    for a, b in zip(plain.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert metrics["m/loss"] == plain_metrics["m/loss"]
    # A finished model is restored from its checkpoint without a step.
    again, again_metrics = _train(tmp_path / "ckpt", stop_at=0)
    assert again_metrics == metrics
    assert all(
        torch.equal(a, b)
        for a, b in zip(again.state_dict().values(), resumed.state_dict().values(), strict=True)
    )


def test_corrupted_checkpoint_is_one_line(tmp_path: Path) -> None:
    _train(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "state.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="unreadable"):
        _train(tmp_path / "ckpt")
