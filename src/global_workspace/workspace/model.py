"""The global workspace: per-domain encoders into a shared tanh state, and decoders out of it.

Every tensor carries the ensemble dimension first: latents (K, B, latent_dim), encodings and
states (K, B, workspace_dim). A (B, latent_dim) input is shared by all K members.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .ensemble import EnsembleMLP
from .settings import WorkspaceConfig

GATE_SCALE = 10.0
"""Fusion gates are stored divided by this: AdamW moves a weight by about lr per step whatever its
gradient, so raw gates barely leave zero in a short run; scaled, they reach decisive values
(docs/results.md, "Figures that were in the code")."""


class GlobalWorkspace(nn.Module):
    """K workspaces over the same domains; member k is initialised from seeds[k]."""

    def __init__(self, config: WorkspaceConfig, seeds: Sequence[int], fusion_gates: bool = False) -> None:
        super().__init__()
        if len(config.domains) < 2:
            raise ValueError("a global workspace needs at least two domains")
        self.config = config
        self.seeds = [int(s) for s in seeds]
        k, ws = len(self.seeds), config.workspace_dim
        width, depth = config.width_of, config.depth_of
        self.encoders = nn.ModuleDict(
            {d: EnsembleMLP(k, dim, width(d), ws, depth(d)) for d, dim in config.domains.items()}
        )
        self.decoders = nn.ModuleDict(
            {d: EnsembleMLP(k, ws, width(d), dim, depth(d)) for d, dim in config.domains.items()}
        )
        for d in config.domains:
            self._encoder(d).reset_parameters(self.seeds, f"encoder/{d}")
            self._decoder(d).reset_parameters(self.seeds, f"decoder/{d}")
        self.log_logit_scale = nn.Parameter(torch.full((k,), math.log(1 / 0.07)))
        """(K,) log of the contrastive logit scale (CLIP's init 1/0.07); trained only if asked."""
        self.fusion_gates = nn.Parameter(torch.zeros(k, len(config.domains), ws)) if fusion_gates else None
        """(K, domains, workspace_dim) or None: learned trust of each domain on each workspace
        dimension when several enter at once (`fused_state`); zeros = the selection's weights."""

    def _encoder(self, domain: str) -> EnsembleMLP:
        module = self.encoders[domain]
        assert isinstance(module, EnsembleMLP)
        return module

    def _decoder(self, domain: str) -> EnsembleMLP:
        module = self.decoders[domain]
        assert isinstance(module, EnsembleMLP)
        return module

    @property
    def members(self) -> int:
        return len(self.seeds)

    @property
    def domain_names(self) -> list[str]:
        return list(self.config.domains)

    def _members_first(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x.unsqueeze(0).expand(self.members, -1, -1)
        return x

    def encode(self, domain: str, latent: torch.Tensor) -> torch.Tensor:
        """Pre-tanh encoding e_d: (K or shared, B, latent_dim) -> (K, B, workspace_dim)."""
        return self._encoder(domain)(self._members_first(latent))

    def decode(self, domain: str, state: torch.Tensor) -> torch.Tensor:
        """(K, B, workspace_dim) -> predicted latent (K, B, latent_dim)."""
        return self._decoder(domain)(self._members_first(state))

    def decode_frozen(self, domain: str, state: torch.Tensor) -> torch.Tensor:
        """`decode` with the decoder's weights cut from the graph: gradients reach `state` only
        (what the fusion gates learn through on pairs the rest of the workspace never sees)."""
        decoder = self._decoder(domain)
        weights = {name: p.detach() for name, p in decoder.named_parameters()}
        out = torch.func.functional_call(decoder, weights, (self._members_first(state),))
        assert isinstance(out, torch.Tensor)
        return out

    @staticmethod
    def fuse(encodings: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """State tanh(sum_d alpha_d * e_d); weights are (K, B) or broadcastable to it."""
        total: torch.Tensor | None = None
        for d, e in encodings.items():
            term = e * weights[d].unsqueeze(-1)
            total = term if total is None else total + term
        if total is None:
            raise ValueError("fusing needs at least one domain")
        return torch.tanh(total)

    def fused_state(
        self,
        encodings: Mapping[str, torch.Tensor],
        weights: Mapping[str, torch.Tensor],
        learn_gates: bool = True,
    ) -> torch.Tensor:
        """This workspace's state when the domains of `encodings` (each (K, ..., ws)) enter with
        selection weights α_d (K, ...): `fuse` for a model without gates. With gates g, dimension i
        takes weights α_d exp(g_di) / Σ_d' α_d' exp(g_d'i), so a domain that carries a factor only
        approximately (a caption's location cell) can yield that dimension to one that carries it
        exactly. One domain alone (α one-hot) still gives exactly its own state. learn_gates=False
        applies the gates without training them: for re-encoded decoder outputs (the broadcast
        loss's cycles), which can carry what a real input of that domain lacks."""
        if self.fusion_gates is None:
            return self.fuse(encodings, weights)
        names = list(encodings)
        first = encodings[names[0]]
        index = [self.domain_names.index(d) for d in names]
        gates = GATE_SCALE * self.fusion_gates[:, index]  # (K, n, ws)
        if not learn_gates:
            gates = gates.detach()
        gates = gates.view(gates.shape[0], *([1] * (first.dim() - 2)), *gates.shape[1:])
        alpha = torch.stack([weights[d] for d in names], dim=-1).unsqueeze(-1)  # (K, ..., n, 1)
        logits = torch.where(alpha > 0, alpha.clamp_min(1e-30).log() + gates, float("-inf"))
        per_dim = torch.softmax(logits, dim=-2)  # (K, ..., n, ws), sums to 1 over the domains
        total = sum(encodings[d] * per_dim[..., j, :] for j, d in enumerate(names))
        return torch.tanh(total)  # type: ignore[arg-type]

    def state(self, domain: str, latent: torch.Tensor) -> torch.Tensor:
        """The workspace state when one domain alone enters: tanh(E_d(u_d))."""
        return torch.tanh(self.encode(domain, latent))

    def logit_scale(self, max_scale: float = 100.0) -> torch.Tensor:
        """(K,) contrastive logit scale exp(s), clamped at `max_scale`."""
        return self.log_logit_scale.exp().clamp(max=max_scale)

    def translate(self, source: str, target: str, latent: torch.Tensor) -> torch.Tensor:
        """D_target(tanh(E_source(u))): (K or shared, B, source_dim) -> (K, B, target_dim)."""
        return self.decode(target, self.state(source, latent))
