"""A key–query selector: which domains enter a frozen workspace, and how much (docs/design.md §8).

Keys come from each domain's unimodal latent, K_d = W_d u_d (each domain has its own projection,
so latent sizes need not match the workspace); the query from a workspace vector, Q = W_q z.
α = softmax over the domains present of K_d · Q / sqrt(h); the state is tanh(Σ_d α_d e_d).

Step 1 takes the query from a fixed random workspace vector (the one-step selector); each
further step takes it from the state fused with the previous step's weights (the two-step
selector has `steps = 2`). Every weight carries the ensemble dimension: one selector per member
of the workspace it sits on. Shapes: latents (K or shared, B, dim_d), encodings (K, B, ws),
weights (K, B) per domain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ..seeding import torch_generator
from ..workspace.ensemble import EnsembleLinear
from ..workspace.model import GlobalWorkspace


@dataclass(frozen=True)
class SelectorConfig:
    """Size of a key–query selector."""

    steps: int = 2
    """Query steps: 1 = the query from a fixed random vector only; 2 = one refinement, ..."""
    head_size: int = 32
    """Size of keys and queries."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise UserError(f"a selector needs at least one query step, got steps={self.steps}")
        if self.head_size < 1:
            raise UserError(f"head_size must be at least 1, got {self.head_size}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class KeyQuerySelector(nn.Module):
    """K selectors (one per workspace member) over domains with the given latent sizes."""

    def __init__(
        self, latent_dims: Mapping[str, int], workspace_dim: int, seeds: list[int], config: SelectorConfig
    ) -> None:
        super().__init__()
        if len(latent_dims) < 2:
            raise UserError(f"attention needs at least two domains to choose from, got {list(latent_dims)}")
        self.config = config
        k, h = len(seeds), config.head_size
        self.keys = nn.ModuleDict({d: EnsembleLinear(k, dim, h) for d, dim in latent_dims.items()})
        self.query = EnsembleLinear(k, workspace_dim, h)
        gens = [torch_generator(s, "selector") for s in seeds]
        for d in latent_dims:
            self._key(d).reset_parameters(gens)
        self.query.reset_parameters(gens)
        initial = torch.stack([torch.rand(workspace_dim, generator=g) * 2 - 1 for g in gens])
        self.register_buffer("initial_state", initial.unsqueeze(1))  # (K, 1, ws), fixed
        self.initial_state: torch.Tensor

    def _key(self, domain: str) -> EnsembleLinear:
        module = self.keys[domain]
        assert isinstance(module, EnsembleLinear)
        return module

    def scores(self, keys: Mapping[str, torch.Tensor], state: torch.Tensor) -> dict[str, torch.Tensor]:
        """Attention weights {d: (K, B)} from keys {d: (K, B, h)} and a state (K, B or 1, ws)."""
        query = self.query(state)  # (K, B or 1, h)
        logits = torch.stack([(key * query).sum(-1) for key in keys.values()], dim=-1)  # (K, B, n)
        alpha = torch.softmax(logits / math.sqrt(self.config.head_size), dim=-1)
        return {d: alpha[..., j] for j, d in enumerate(keys)}

    def forward(
        self, latents: Mapping[str, torch.Tensor], encodings: Mapping[str, torch.Tensor]
    ) -> list[dict[str, torch.Tensor]]:
        """The weights of every step, [{d: (K, B)}, ...]; latents and pre-tanh encodings of the
        domains present (the same keys). The last step's weights are the selection."""
        if set(latents) != set(encodings) or not latents:
            raise ValueError("latents and encodings must name the same, non-empty set of domains")
        members = self.initial_state.shape[0]
        keys = {}
        for d, u in latents.items():
            u = u.unsqueeze(0).expand(members, -1, -1) if u.dim() == 2 else u
            keys[d] = self._key(d)(u)  # (K, B, h)
        steps = [self.scores(keys, self.initial_state)]
        for _ in range(self.config.steps - 1):
            state = GlobalWorkspace.fuse(encodings, steps[-1])
            steps.append(self.scores(keys, state))
        return steps


def attend(
    model: GlobalWorkspace, selector: KeyQuerySelector, latents: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The selected workspace state (K, B, ws) and its weights {d: (K, B)} for these latents."""
    encodings = {d: model.encode(d, u) for d, u in latents.items()}
    alpha = selector(latents, encodings)[-1]
    return GlobalWorkspace.fuse(encodings, alpha), alpha
