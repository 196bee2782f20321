"""The domain interface: one small class per modality.

A domain wraps a frozen pretrained specialist. The workspace never sees raw data, only the
domain's latents, so a user brings their own encoder (a CLIP image tower, an audio model, ...)
by subclassing `Domain` and registering it with `register_domain`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..data.format import Dataset, Split
from .latent_loss import LatentLoss
from .raw_files import read_raw_file


class Domain(ABC):
    """A frozen unimodal specialist.

    Subclasses set `kind` (the registry name) and define which part of a dataset split they read,
    how raw data becomes a latent, and (where it makes sense) how a latent becomes raw data again.
    """

    kind: ClassVar[str]
    fine_tunes: ClassVar[bool] = False
    """Whether `fit` trains on from weights loaded beforehand (`FitSettings.init`, `gw pretrain
    --init`) instead of initialising afresh."""
    latent_dim: int
    loss: LatentLoss = LatentLoss()

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.kind

    @abstractmethod
    def raw(self, split: Split) -> Any:
        """The raw input of this domain in a dataset split (images, labels, captions, ...)."""

    def read_raw(self, file: Path) -> Any:
        """The raw input held in a file a user names (`gw pretrain --raw`), in the form `raw`
        returns. Default: an .npy array or a .txt file's lines; override for other formats."""
        return read_raw_file(file)

    @abstractmethod
    def encode(self, raw: Any) -> torch.Tensor:
        """Raw batch -> float32 latents (N, latent_dim); the mean latent for a VAE."""

    @abstractmethod
    def decode(self, latent: torch.Tensor) -> Any:
        """Latents (N, latent_dim) -> raw data of this domain."""

    def fit(self, dataset: Dataset, settings: Any) -> dict[str, float]:
        """Train the specialist on unimodal data; returns metrics. Default: nothing to train."""
        return {}

    def quality(self, dataset: Dataset, folder: Path) -> dict[str, float]:
        """How well the specialist keeps the dataset's test split (figures may go to `folder`);
        what `gw pretrain` reports. Default: nothing measured."""
        return {}

    def save(self, folder: Path) -> None:
        """Write weights (loadable with weights_only=True) into `folder`. Default: no weights."""

    def load(self, folder: Path) -> None:
        """Read what `save` wrote. Default: no weights."""

    def config(self) -> dict[str, Any]:
        """The constructor settings that rebuild this domain (saved in config.json)."""
        return {}
