"""A user's own domain: one small class, registered, pretrained and reloaded like the built-ins."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from global_workspace.cli import main
from global_workspace.data.format import Split
from global_workspace.domains.base import Domain
from global_workspace.domains.latents import load_latents, read_spec
from global_workspace.domains.registry import DOMAINS, register_domain
from global_workspace.domains.store import load_domain


class MeanColour(Domain):
    """The mean RGB of an image in [0, 1]: a frozen "encoder" with nothing to train."""

    kind = "mean-colour"
    latent_dim = 3

    def raw(self, split: Split) -> np.ndarray:
        return split.images

    def encode(self, raw: Any) -> torch.Tensor:
        images = np.asarray(raw, dtype=np.float32) / 255.0
        return torch.from_numpy(images.reshape(len(images), -1, 3).mean(axis=1))

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        return latent.numpy()


def test_custom_domain_goes_through_pretrain(tiny_shapes: Path, tmp_path: Path) -> None:
    register_domain(MeanColour)
    try:
        data = tmp_path / "shapes"
        shutil.copytree(tiny_shapes, data)
        with pytest.raises(SystemExit) as done:
            main(["pretrain", str(data), "--domains", "mean-colour", "--quiet"])
        assert done.value.code in (0, None)
        assert read_spec(data, "mean-colour").latent_dim == 3
        latents = load_latents(data, "mean-colour", "val")
        assert latents.shape == (64, 3) and latents.dtype == np.float32
        domain = load_domain(data, "mean-colour")
        assert isinstance(domain, MeanColour)
        np.testing.assert_array_equal(domain.encode(np.load(data / "val" / "images.npy")).numpy(), latents)
    finally:
        DOMAINS.pop("mean-colour", None)
