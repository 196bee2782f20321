"""The broadcast loss inside a CUDA-graph training step equals the eager step (run where a GPU is present)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from workspace_fixtures import cuda_graph_and_eager

from global_workspace.domains.latent_loss import LatentLoss
from global_workspace.domains.latents import LatentSpec
from global_workspace.workspace.families import family_of
from global_workspace.workspace.losses import active_categories
from global_workspace.workspace.presets import MemberSpec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DOMAINS = {"v": 12, "attr": 11, "t": 16}


@pytest.mark.parametrize("preset", ["fusion", "fusion-gated", "fusion-bt"])
def test_fusion_cuda_graph_step_equals_eager_step(preset: str) -> None:
    members = [
        MemberSpec.from_preset(preset.removesuffix("-bt"), seed=s, paired=p) for s, p in ((0, 50), (1, 3000))
    ]
    if preset == "fusion-bt":  # back-translation in place of the cycle (gw train --coef cy=0,bt=0.1)
        weights = {**members[0].coefficients, "cycle": 0.0, "back_translation": 0.1}
        members = [dataclasses.replace(m, coefficients=weights) for m in members]
    specs = {d: LatentSpec(d, n, LatentLoss(3 if d == "attr" else 0)) for d, n in DOMAINS.items()}
    family = family_of(members)  # fusion-gated keeps its last pairs for the gates
    cuda_graph_and_eager(
        DOMAINS, members, lambda: family.build_task(specs, active_categories(members), False)
    )
