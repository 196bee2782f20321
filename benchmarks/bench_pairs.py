"""Row-aligned step time before and after own-latents support (issue 25), in one process.

"Before" is main's step: the task's loss of the sampler's one batch. "After" is today's: the loss
merged over `Sampler.batches` (one batch for row-aligned data). The same data as own latents with
identity pairs (`GroupSampler`: one pair group plus an unpaired batch) is timed beside them, and
a second "before" trainer shows how far two identical trainers differ on this machine.
Setting of bench_train.py (K members, preset full); rounds alternate, each trainer first in
turn, so load drifts hit all alike.

    PYTHONPATH=src python3 benchmarks/bench_pairs.py [--device cuda] [--members 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_train import BATCH, DEPTH, DOMAINS, WIDTH, WORKSPACE, _sync

from global_workspace.domains.latent_loss import LatentLoss
from global_workspace.domains.latents import LatentSpec
from global_workspace.workspace.losses import GWTask, Terms, active_categories
from global_workspace.workspace.model import GlobalWorkspace
from global_workspace.workspace.pair_groups import GroupSampler
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.sampling import Sampler
from global_workspace.workspace.settings import TrainConfig, WorkspaceConfig
from global_workspace.workspace.trainer import BatchSource, Trainer, member_coefficients


class BeforeTrainer(Trainer):
    """The step as main computed it: one batch, no merging."""

    def _loss(self) -> tuple[Terms, Terms]:
        assert isinstance(self.sampler, Sampler)
        return self.task.loss(self.model, self.sampler.batch(self.step))


def _trainer(
    cls: type[Trainer], sampler: BatchSource, members: list[MemberSpec], device: torch.device
) -> Trainer:
    specs = {d: LatentSpec(d, n, LatentLoss()) for d, n in DOMAINS.items()}
    model = GlobalWorkspace(WorkspaceConfig(DOMAINS, WORKSPACE, WIDTH, DEPTH), [m.seed for m in members])
    task = GWTask(specs, active_categories(members))
    coefficients = member_coefficients(task.categories, [m.coefficients for m in members], device)
    trainer = cls(model.to(device), task, sampler, coefficients, TrainConfig(steps=100_000, batch_size=BATCH))
    trainer.run(3)  # capture / warm up
    return trainer


def _seconds_per_step(trainer: Trainer, steps: int, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    trainer.run(steps)
    _sync(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--members", type=int, default=1, help="Ensemble size K.")
    parser.add_argument(
        "--steps", type=int, default=0, help="Steps per round (default: 200 on CUDA, 10 on CPU)."
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=100_000)
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = args.steps or (200 if device.type == "cuda" else 10)
    gen = torch.Generator().manual_seed(0)
    train = {d: torch.randn(args.train_size, n, generator=gen).to(device) for d, n in DOMAINS.items()}
    members = [MemberSpec.from_preset("full", seed=k, paired=args.train_size) for k in range(args.members)]
    identity = torch.arange(args.train_size, device=device).unsqueeze(1).expand(-1, len(DOMAINS))
    trainers = {
        "before (main)": _trainer(BeforeTrainer, Sampler(train, members, BATCH), members, device),
        "after": _trainer(Trainer, Sampler(train, members, BATCH), members, device),
        "before (main), again": _trainer(BeforeTrainer, Sampler(train, members, BATCH), members, device),
        "own latents, identity pairs": _trainer(
            Trainer, GroupSampler(train, identity.contiguous(), members, BATCH), members, device
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in trainers}
    names = list(trainers)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # each goes first in turn
            times[name].append(_seconds_per_step(trainers[name], steps, device))
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"device: {where}; K={args.members}, batch {BATCH}, preset full; "
        f"median of {args.rounds} x {steps} steps"
    )
    base = statistics.median(times["before (main)"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:28s} {1000 * median:8.2f} ms/step  ({median / base:5.3f}x before)")


if __name__ == "__main__":
    main()
