"""The settings of a workspace and of its training, with the one declaration of each default.

Kept free of torch so that the command line reads its option defaults from here without loading it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UserError


@dataclass(frozen=True)
class WorkspaceConfig:
    """Architecture of one workspace (every ensemble member shares it)."""

    domains: dict[str, int] = field(default_factory=dict)
    """Domain name -> unimodal latent size, in a fixed order."""
    workspace_dim: int = 12
    width: int = 256
    """Hidden width of every encoder and decoder: translating into `v` draws the shape only from about
    256 on (the reference's 32 × 5 gives position and size, never shape; docs/results.md)."""
    depth: int = 3
    """Linear layers per encoder and per decoder (3 trains faster than 5 at every width tried)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> WorkspaceConfig:
        """Read a stored architecture; a size below 1 is a ValueError (an edited or damaged file)."""
        config = cls(
            domains={str(k): int(v) for k, v in obj["domains"].items()},
            workspace_dim=int(obj["workspace_dim"]),
            width=int(obj["width"]),
            depth=int(obj["depth"]),
        )
        sizes = {"workspace_dim": config.workspace_dim, "width": config.width, "depth": config.depth}
        sizes.update({f"domains.{name}": dim for name, dim in config.domains.items()})
        small = [f"{name} {size}" for name, size in sizes.items() if size < 1]
        if small:
            raise ValueError(f"sizes must be at least 1: {', '.join(small)}")
        return config


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every member of an ensemble."""

    steps: int = 1000
    batch_size: int = 2056
    """Rows per group (the paired batch and each unpaired batch); clipped to the pool size."""
    lr: float = 3e-3
    """Peak learning rate of the one-cycle schedule."""
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    pct_start: float = 0.3
    """Fraction of the steps spent warming up (torch's OneCycleLR default)."""
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    log_every: int = 50
    eval_every: int = 500
    """Evaluate on val (and write a checkpoint) every this many steps and at the end; 0: end only."""
    cuda_graph: bool = True
    """On CUDA, capture the whole step in a CUDA graph (no effect on the CPU)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(obj) - known
        if unknown:
            raise UserError(f"unknown training settings {sorted(unknown)}")
        values = dict(obj)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)
