"""The domain of latents a user brought (`gw data latents`): no specialist, the latent is the data.

A trained workspace's `translate` then takes and gives latent arrays of such a domain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.format import Split
from ..errors import UserError
from .base import Domain
from .registry import register_domain


@register_domain
class GivenLatents(Domain):
    """Latents (N, latent_dim) in, the same out: the user's own encoder made them."""

    kind = "latents"

    def __init__(self, name: str | None = None, latent_dim: int = 1) -> None:
        super().__init__(name)
        self.latent_dim = int(latent_dim)

    def raw(self, split: Split) -> Any:
        raise UserError(
            f"domain {self.name!r} holds latents you brought, not raw data of a dataset split; "
            "pass its latents to the workspace directly"
        )

    def encode(self, raw: Any) -> torch.Tensor:
        latent = torch.as_tensor(np.asarray(raw, dtype=np.float32))
        if latent.ndim != 2 or latent.shape[1] != self.latent_dim:
            raise UserError(
                f"domain {self.name!r} takes latents (N, {self.latent_dim}), got {tuple(latent.shape)}"
            )
        return latent

    def decode(self, latent: torch.Tensor) -> Any:
        return latent.detach().cpu().numpy()

    def config(self) -> dict[str, Any]:
        return {"latent_dim": self.latent_dim}
