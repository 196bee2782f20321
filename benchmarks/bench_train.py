"""Training speed of the global workspace: the vectorised trainer against a plain per-model loop.

Setting of issue 4: two domains (latents 12 and 11), workspace 12, encoders and decoders of width
32 x 5 layers, batch 2056 per group (one paired batch + one unpaired batch per domain), all four
losses (`full`). Prints steps/s of our trainer for each K (model-steps/s = K x steps/s) and, in
the same process, of a plain loop like the reference's (one nn.Module per network, host-side
batching, torch AdamW + OneCycleLR), with the ratio.

    PYTHONPATH=src python3 benchmarks/bench_train.py [--device cuda] [--members 1,64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from global_workspace.domains.latent_loss import LatentLoss
from global_workspace.domains.latents import LatentSpec
from global_workspace.workspace.losses import GWTask, active_categories
from global_workspace.workspace.model import GlobalWorkspace
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.sampling import Sampler
from global_workspace.workspace.settings import TrainConfig, WorkspaceConfig
from global_workspace.workspace.trainer import Trainer, member_coefficients

DOMAINS = {"v": 12, "attr": 11}
WORKSPACE, WIDTH, DEPTH, BATCH = 12, 32, 5, 2056


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_ours(train: dict[str, torch.Tensor], members: int, steps: int, device: torch.device) -> float:
    """Steps per second of the library trainer with K members (graph capture excluded)."""
    specs = {d: LatentSpec(d, n, LatentLoss()) for d, n in DOMAINS.items()}
    n = int(train["v"].shape[0])
    specs_k = [MemberSpec.from_preset("full", seed=k, paired=n) for k in range(members)]
    model = GlobalWorkspace(WorkspaceConfig(DOMAINS, WORKSPACE, WIDTH, DEPTH), [m.seed for m in specs_k])
    model = model.to(device)
    task = GWTask(specs, active_categories(specs_k))
    coefficients = member_coefficients(task.categories, [m.coefficients for m in specs_k], device)
    config = TrainConfig(steps=10 * steps, batch_size=BATCH)
    trainer = Trainer(model, task, Sampler(train, specs_k, BATCH), coefficients, config)
    trainer.run(3)  # capture / warm up
    _sync(device)
    start = time.perf_counter()
    trainer.run(steps)
    _sync(device)
    return steps / (time.perf_counter() - start)


def _mlp(i: int, o: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(i, WIDTH), nn.ReLU()]
    for _ in range(DEPTH - 2):
        layers += [nn.Linear(WIDTH, WIDTH), nn.ReLU()]
    layers.append(nn.Linear(WIDTH, o))
    return nn.Sequential(*layers)


def bench_plain(train: dict[str, np.ndarray], steps: int, device: torch.device) -> float:
    """Steps per second of one model trained the reference's way."""
    enc = nn.ModuleDict({d: _mlp(n, WORKSPACE) for d, n in DOMAINS.items()}).to(device)
    dec = nn.ModuleDict({d: _mlp(WORKSPACE, n) for d, n in DOMAINS.items()}).to(device)
    params = [*enc.parameters(), *dec.parameters()]
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=10 * steps)
    rng = np.random.default_rng(0)
    n = len(train["v"])
    names = list(DOMAINS)

    def host_batch(idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {d: torch.from_numpy(train[d][idx]).to(device) for d in names}

    def step() -> None:
        paired = host_batch(rng.integers(0, n, BATCH))
        unpaired = {d: host_batch(rng.integers(0, n, BATCH))[d] for d in names}
        loss = torch.zeros((), device=device)
        z = {d: torch.tanh(enc[d](paired[d])) for d in names}
        for a in names:
            for b in names:
                if a != b:
                    loss = loss + F.mse_loss(dec[b](z[a]), paired[b])
        ea, eb = (F.normalize(enc[d](paired[d]), dim=-1) for d in names)
        logits = (1 / 0.07) * ea @ eb.T
        target = torch.arange(BATCH, device=device)
        loss = loss + 0.1 * 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        for a in names:
            u = unpaired[a]
            loss = loss + F.mse_loss(dec[a](torch.tanh(enc[a](u))), u)
            for b in names:
                if a != b:
                    back = dec[a](torch.tanh(enc[b](dec[b](torch.tanh(enc[a](u))))))
                    loss = loss + F.mse_loss(back, u)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    for _ in range(3):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--members", default="1,64", help="Ensemble sizes K to time.")
    parser.add_argument("--steps", type=int, default=0, help="Timed steps (default: 300 on CUDA, 30 on CPU).")
    parser.add_argument("--train-size", type=int, default=100_000)
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = args.steps or (300 if device.type == "cuda" else 30)
    rng = np.random.default_rng(0)
    host = {d: rng.normal(size=(args.train_size, n)).astype(np.float32) for d, n in DOMAINS.items()}
    train = {d: torch.from_numpy(x).to(device) for d, x in host.items()}
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}; batch {BATCH} per group, latents 12 and 11, width {WIDTH} x {DEPTH}, preset full")
    plain = bench_plain(host, max(steps // 3, 10), device)
    print(f"plain per-model loop (reference-like): {plain:8.1f} steps/s")
    for k in (int(x) for x in args.members.split(",")):
        ours = bench_ours(train, k, steps if k == 1 else max(steps // 3, 10), device)
        print(
            f"ours K={k:<3d}: {ours:8.1f} steps/s = {k * ours:9.1f} model-steps/s "
            f"({k * ours / plain:6.1f}x the plain loop)"
        )


if __name__ == "__main__":
    main()
