"""Selection policies: how much each present domain weighs in a fused workspace state.

A policy maps a mask of the domains present, `present` (..., n) bool, and uniform noise `uniform`
(..., n) in [0, 1) to weights α (..., n): α ≥ 0, zero where a domain is absent, summing to 1 over
the domains present. Randomness enters only through `uniform`, which the caller draws from an
explicit seed, so a policy is a pure function and a run is reproducible on any device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import require_positive
from ..seeding import derive_seed
from .sampling import MASK32, mix32


class Selection(ABC):
    """One way of weighting the domains that enter the workspace together."""

    @abstractmethod
    def __call__(self, present: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        """present: (..., n) bool, uniform: (..., n) in [0, 1) -> weights α (..., n), rows summing to 1."""


def _check_present(present: torch.Tensor) -> None:
    if present.dtype != torch.bool:
        raise TypeError(f"present must be a bool mask, got {present.dtype}")


@dataclass(frozen=True)
class RandomDomain(Selection):
    """The paper's GW: one present domain per example, uniformly at random (α one-hot)."""

    def __call__(self, present: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        _check_present(present)
        # The argmax of i.i.d. uniforms is uniform over the present domains.
        chosen = torch.where(present, uniform, -1.0).argmax(dim=-1, keepdim=True)
        return torch.zeros_like(uniform).scatter_(-1, chosen, 1.0)


@dataclass(frozen=True)
class EqualWeights(Selection):
    """α = 1 / |present| on every present domain."""

    def __call__(self, present: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        _check_present(present)
        weights = present.to(uniform.dtype)
        return weights / weights.sum(dim=-1, keepdim=True)


@dataclass(frozen=True)
class RandomSoftmax(Selection):
    """α = softmax(U / T) over the present domains, U uniform (the reference's fusion training).

    T → 0 gives one domain per example; T → ∞ gives equal weights.
    """

    temperature: float = 0.2

    def __post_init__(self) -> None:
        require_positive([("selection temperature", self.temperature)])

    def __call__(self, present: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        _check_present(present)
        logits = torch.where(present, uniform / self.temperature, float("-inf"))
        return torch.softmax(logits, dim=-1)


def hash_uniform(key: torch.Tensor, name: str, shape: Sequence[int]) -> torch.Tensor:
    """Uniforms in [0, 1) of shape (K, *shape) from per-member step keys (K,) (`Batch.key`).

    A counter-based hash of (key, name, index along each axis): no generator state, the same
    numbers on any device, and graph-capturable. Element (i, j, ...) depends on its indices only,
    never on the shape, so a member's draws for its rows are the same whether its batch is padded
    to a larger member's or not. `name` separates independent draws of the same step.
    """
    salt = derive_seed(0, "hash_uniform", name) & MASK32
    bits = mix32(key ^ salt).view(-1, *([1] * len(shape)))  # (K, 1, ..., 1)
    for axis, size in enumerate(shape):
        index = torch.arange(size, device=key.device, dtype=torch.long)
        index = mix32(index ^ (derive_seed(0, "hash_uniform/axis", axis) & MASK32))
        bits = mix32(bits ^ index.view([size if a == axis else 1 for a in range(len(shape))]))
    bits = bits.expand(key.shape[0], *shape)
    return (bits >> 8).to(torch.float32) * 2.0**-24
