"""The CUDA-graph training step equals the eager one (run where a GPU is present)."""

from __future__ import annotations

import pytest
import torch
from workspace_fixtures import cuda_graph_and_eager

from global_workspace.domains.latent_loss import LatentLoss
from global_workspace.domains.latents import LatentSpec
from global_workspace.workspace.losses import GWTask, active_categories
from global_workspace.workspace.presets import MemberSpec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DOMAINS = {"v": 12, "attr": 11}


def test_cuda_graph_step_equals_eager_step() -> None:
    members = [
        MemberSpec.from_preset("full", seed=0, paired=50),
        MemberSpec.from_preset("tr+cy", seed=1, paired=500),
        MemberSpec.from_preset("cont", seed=2, paired=3000),
        MemberSpec.from_preset("full-bt", seed=3, paired=50),
    ]
    specs = {
        "v": LatentSpec("v", 12, LatentLoss()),
        "attr": LatentSpec("attr", 11, LatentLoss(categorical=3)),
    }
    graph, eager = cuda_graph_and_eager(
        DOMAINS, members, lambda: GWTask(specs, active_categories(members), learn_logit_scale=True)
    )
    assert graph.host_step == eager.host_step == 20
