"""The demo behind `make demo`: dataset, specialists and the semi-supervision experiment, small.

Sized for 2 CPU cores and ~10 minutes of compute: 12,000 training images (REFERENCE §11 saw the
effect at that size), a visual VAE and its image probe trained briefly, the attribute domain
(nothing to train), and the six presets at four pair counts × two seeds, each preset's members
trained as one vectorised ensemble. Every size is an option of `DemoOptions`.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import UserError
from .runner import SemiSupervisedOptions, run_semi_supervised


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    force: bool = False
    train: int = 12000
    val: int = 1000
    test: int = 1000
    seed: int = 0
    workers: int = 2
    pretrain_steps: dict[str, int] = field(default_factory=lambda: {"v": 1000, "probe": 400})
    paired: str = "60,200,1000,ALL"
    presets: str = "all"
    seeds: int = 2
    steps: int = 1500
    batch_size: int = 256
    lr: float = 1e-3
    eval_every: int = 250
    text: bool = False
    """Also run v,t (pretrains the text domain: sentence embeddings, text VAE, caption decoder)."""
    device: str = "cpu"
    progress: bool = True
    threads: int = 1
    """CPU threads for every stage (0: torch's default). On a small or shared machine one thread per
    process is fastest: the networks are small and extra threads mostly wait for each other."""


def _say(text: str) -> None:
    print(f"gw demo: {text}", file=sys.stderr, flush=True)


def run_demo(options: DemoOptions) -> list[Path]:
    """Run every stage; returns the report paths."""
    from ..data.simple_shapes import generate_simple_shapes
    from ..domains.pretrain import PretrainConfig, pretrain

    out = Path(options.out)
    if out.exists():
        if not options.force:
            raise UserError(f"{out} already exists; pass --force to start the demo afresh")
        shutil.rmtree(out)
    if options.threads > 0:
        torch.set_num_threads(options.threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    data = out / "data"
    counts = {"train": options.train, "val": options.val, "test": options.test}
    _say(f"1/3 generating Simple Shapes {counts} in {data}")
    generate_simple_shapes(
        data, counts, seed=options.seed, workers=options.workers, progress=options.progress
    )
    stamp = time.perf_counter()
    _say(f"    {stamp - start:.0f} s")

    domains = ("v", "attr", "t") if options.text else ("v", "attr")
    _say(f"2/3 pretraining the specialists {', '.join(domains)}")
    pretrain(
        data,
        PretrainConfig(
            domains=domains,
            steps=dict(options.pretrain_steps),
            device=options.device,
            seed=options.seed,
            progress=options.progress,
        ),
    )
    _say(f"    {time.perf_counter() - stamp:.0f} s")

    reports = []
    pairs = [("v", "attr")] + ([("v", "t")] if options.text else [])
    for i, (a, b) in enumerate(pairs):
        stamp = time.perf_counter()
        _say(f"3/3 semi-supervision experiment on {a},{b} ({i + 1}/{len(pairs)})")
        outcome = run_semi_supervised(
            SemiSupervisedOptions(
                data=data,
                domains=f"{a},{b}",
                paired=options.paired,
                presets=options.presets,
                seeds=options.seeds,
                seed=options.seed,
                steps=options.steps,
                batch_size=options.batch_size,
                lr=options.lr,
                eval_every=options.eval_every,
                out=out / f"experiment_{a}_{b}",
                device=options.device,
                force=True,
                progress=options.progress,
                threads=options.threads,
            )
        )
        assert outcome is not None
        reports.append(outcome.report)
        _say(f"    {time.perf_counter() - stamp:.0f} s")
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"\ndemo finished in {total / 60:.1f} min ({cpu / 60:.1f} CPU-min); open the report(s):")
    for r in reports:
        print(f"  {r.resolve()}")
    return reports
