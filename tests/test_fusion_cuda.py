"""The broadcast loss inside a CUDA-graph training step equals the eager step (run where a GPU is present)."""

from __future__ import annotations

import pytest
import torch

from global_workspace.domains.latent_loss import LatentLoss
from global_workspace.domains.latents import LatentSpec
from global_workspace.workspace.broadcast import BroadcastTask
from global_workspace.workspace.losses import active_categories
from global_workspace.workspace.model import GlobalWorkspace, WorkspaceConfig
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.sampling import Sampler
from global_workspace.workspace.trainer import TrainConfig, Trainer, member_coefficients

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DOMAINS = {"v": 12, "attr": 11, "t": 16}


def _trainer(graph: bool, device: torch.device) -> Trainer:
    members = [MemberSpec.from_preset("fusion", seed=s, paired=p) for s, p in ((0, 50), (1, 3000))]
    gen = torch.Generator().manual_seed(0)
    train = {d: torch.randn(3000, n, generator=gen).to(device) for d, n in DOMAINS.items()}
    specs = {d: LatentSpec(d, n, LatentLoss(3 if d == "attr" else 0)) for d, n in DOMAINS.items()}
    model = GlobalWorkspace(WorkspaceConfig(DOMAINS), [m.seed for m in members]).to(device)
    task = BroadcastTask(specs, active=active_categories(members))
    coefficients = member_coefficients(task.categories, [m.coefficients for m in members], device)
    config = TrainConfig(steps=50, batch_size=256, cuda_graph=graph)
    return Trainer(model, task, Sampler(train, members, 256), coefficients, config)


def test_fusion_cuda_graph_step_equals_eager_step() -> None:
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    graph, eager = _trainer(True, device), _trainer(False, device)
    out_graph, out_eager = graph.run(20), eager.run(20)
    assert graph.graph is not None and eager.graph is None
    torch.testing.assert_close(out_graph.terms, out_eager.terms, rtol=1e-4, atol=1e-5)
    for (name, a), b in zip(graph.model.state_dict().items(), eager.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
