"""K independent networks evaluated as one: every weight carries a leading member dimension.

Member k is initialised from its own seed exactly as a lone network with that seed would be, so
an ensemble of K models trains like K separate runs (up to the last bit of batched matrix
products, which round differently for different K) while launching the kernels of one.
Shapes: inputs and outputs are (K, B, features).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from ..seeding import torch_generator


class EnsembleLinear(nn.Module):
    """K affine maps in one batched matmul: (K, B, in) -> (K, B, out)."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features))

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        """nn.Linear's default init (uniform ±1/sqrt(fan_in)), drawn per member from its generator."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            for k, gen in enumerate(generators):
                w = torch.rand(self.out_features, self.in_features, generator=gen) * 2 - 1
                b = torch.rand(self.out_features, generator=gen) * 2 - 1
                self.weight[k].copy_((w * bound).T.to(self.weight.device))
                self.bias[k, 0].copy_((b * bound).to(self.bias.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """Linear(in, width)-ReLU-[Linear(width, width)-ReLU]x(depth-2)-Linear(width, out), K times.

    `depth` counts linear layers (the reference's encoder is depth 5, width 32; ours by default 3 and 256).
    """

    def __init__(self, members: int, in_dim: int, width: int, out_dim: int, depth: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError("an MLP needs at least one layer")
        sizes = [in_dim] + [width] * (depth - 1) + [out_dim]
        self.layers = nn.ModuleList(EnsembleLinear(members, a, b) for a, b in itertools.pairwise(sizes))

    def reset_parameters(self, seeds: Sequence[int], name: str) -> None:
        generators = [torch_generator(seed, "mlp", name) for seed in seeds]
        for layer in self.layers:
            assert isinstance(layer, EnsembleLinear)
            layer.reset_parameters(generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = torch.relu(x)
        return x
