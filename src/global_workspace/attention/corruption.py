"""Corrupting unimodal latents: u_d + amplitude · scale · n, n a standardised Gaussian vector.

`n` has zero mean and unit variance over the latent's entries; amplitude is 5 (docs/design.md §8).
Noise is either `fixed` (one vector per domain, drawn once from the seed and added to every
example) or `random` (drawn afresh for every example and every call).
- one-sided: per example one domain, chosen uniformly, is corrupted with a scale drawn
  uniformly from [scale_low, scale_high]; the others stay clean;
- two-sided: every domain is corrupted, each with its own scale (given per domain).
Latents are (B, dim), shared by every member of the workspace they enter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..errors import UserError, require_at_least
from ..seeding import torch_generator

NOISE_MODES = ("fixed", "random")


@dataclass(frozen=True)
class CorruptionConfig:
    noise: str = "random"
    """`fixed` (one vector per domain) or `random` (a new vector every time)."""
    scale_low: float = 0.0
    scale_high: float = 1.0
    """One-sided corruption draws its scale uniformly from [scale_low, scale_high]."""
    amplitude: float = 5.0

    def __post_init__(self) -> None:
        if self.noise not in NOISE_MODES:
            raise UserError(f"unknown noise {self.noise!r}; use one of {', '.join(NOISE_MODES)}")
        require_at_least((name, getattr(self, name), 0) for name in ("scale_low", "scale_high", "amplitude"))
        if self.scale_high < self.scale_low:
            raise UserError(f"noise scale range [{self.scale_low}, {self.scale_high}] is empty")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_scale(value: float, what: str = "noise scale") -> float:
    require_at_least([(what, value, 0)])
    return float(value)


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit standard deviation over the last dimension."""
    return (x - x.mean(dim=-1, keepdim=True)) / x.std(dim=-1, keepdim=True).clamp_min(1e-12)


class Corruption:
    """Adds noise to the latents of the domains in `latent_dims`."""

    def __init__(
        self, config: CorruptionConfig, latent_dims: Mapping[str, int], seed: int, device: torch.device
    ) -> None:
        self.config = config
        self.domains = list(latent_dims)
        self.fixed = {
            d: standardise(torch.randn(dim, generator=torch_generator(seed, "fixed noise", d))).to(device)
            for d, dim in latent_dims.items()
        }

    def noise(self, domain: str, rows: int, generator: torch.Generator) -> torch.Tensor:
        """Standardised noise (rows, dim) for one domain."""
        fixed = self.fixed[domain]
        if self.config.noise == "fixed":
            return fixed.expand(rows, -1)
        shape = (rows, fixed.shape[0])
        return standardise(torch.randn(shape, generator=generator, device=generator.device))

    def apply(
        self,
        latents: Mapping[str, torch.Tensor],
        scales: Mapping[str, torch.Tensor],
        generator: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        """u_d + amplitude · scales[d] · noise for every domain; scales[d]: (B,) or scalar tensors."""
        out = {}
        for d, u in latents.items():
            scale = scales[d].to(u.dtype)
            scale = scale.unsqueeze(-1) if scale.dim() == 1 else scale
            out[d] = u + self.config.amplitude * scale * self.noise(d, u.shape[0], generator)
        return out

    def one_sided(
        self, latents: Mapping[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Corrupt one domain per example: (corrupted latents, scales {d: (B,)}, 0 where clean)."""
        names = list(latents)
        rows = next(iter(latents.values())).shape[0]
        device = generator.device
        target = torch.randint(len(names), (rows,), generator=generator, device=device)
        c = self.config
        scale = c.scale_low + (c.scale_high - c.scale_low) * torch.rand(
            rows, generator=generator, device=device
        )
        scales = {d: torch.where(target == j, scale, 0.0) for j, d in enumerate(names)}
        return self.apply(latents, scales, generator), scales

    def two_sided(
        self, latents: Mapping[str, torch.Tensor], scales: Mapping[str, float], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Corrupt every domain, each with its own fixed scale."""
        device = generator.device
        values = {d: torch.tensor(check_scale(scales[d]), device=device) for d in latents}
        return self.apply(latents, values, generator)
