"""The whole pipeline behind `gw demo`: dataset, specialists and the semi-supervision experiment.

Three sizes. `demo` is sized for 2 CPU cores, well under 15 minutes on a slow machine: 12,000
training images (docs/design.md §11 saw the effect at that size), the shipped visual VAE and image
probe (trained on 500k images; `--pretrain-steps` trains them on the demo's data instead), the
attribute domain (nothing to train), and the four curves the ratios compare (`tr`, `tr+cont`, `full`, our
`full-bt`) at four pair counts × two seeds, with the default 256-wide networks that draw shape,
the ensembles shared out over one process per core. `paper` is the paper's data on the same 2
cores, in a background hour or two: 500,000 training images (the paper's unpaired pool), all three
specialists (shipped, so only encoding), the same four curves at five pair counts up to all × two
seeds on `v,attr` and on `v,t`. `paper-gpu` is the paper's whole grid for one GPU: its six presets
and `full-bt` × six pair counts × three seeds, at its batch of 2056. Every size is an option of
`DemoOptions`.

A demo folder remembers its options (`demo.json`) and how long each finished stage took
(`timings.json`): rerunning the same command after an interruption continues where it stopped,
reusing the dataset, the specialists and the finished members.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError, require_at_least
from ..fileio import atomic_write_json, read_json, refuse_foreign, remove_output
from ..locking import exclusive_output
from ..say import say
from ..workspace.settings import TrainConfig
from .runner import SemiSupervisedOptions, check_numbers, run_semi_supervised
from .semi_supervised.parsing import parse_paired, parse_presets


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    force: bool = False
    train: int = 12000
    val: int = 1000
    test: int = 1000
    seed: int = 0
    workers: int = 2
    pretrain_steps: dict[str, int] = field(default_factory=dict)
    """Empty: the shipped specialists (`gw specialists list`); steps given: train them on the data."""
    pretrain_batch_size: int | None = None
    paired: str = "60,250,1000,ALL"
    presets: str = "tr,tr+cont,full,full-bt"
    seeds: int = 2
    steps: int = 1000
    batch_size: int = 256
    lr: float = TrainConfig.lr
    eval_every: int = 250
    text: bool = False
    """Also run v,t (pretrains the text domain: sentence embeddings, text VAE, caption decoder)."""
    device: str = "cpu"
    progress: bool = True
    threads: int = 1
    """CPU threads of each experiment process (0: torch's default). On a small or shared machine one
    thread per process is fastest: the workspaces are small and extra threads mostly wait."""
    pretrain_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    """CPU threads while the specialists train (0: torch's default). Their convolutions and the
    sentence encoder do use more cores (docs/results.md, "Figures that were in the code")."""
    processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Processes that share an experiment's ensembles (on the CPU; a GPU run uses one), as under
    `torchrun --nproc-per-node`: with one thread each, every core trains."""


SCALES: dict[str, dict[str, Any]] = {
    "demo": {},
    "paper": {
        "train": 500_000,
        "val": 2000,
        "test": 5000,
        "workers": max(1, os.cpu_count() or 1),
        "paired": "250,1000,4000,16000,ALL",
        "seeds": 2,
        "steps": 4000,
        "eval_every": 500,
        "text": True,
        "device": "auto",
        "pretrain_threads": 0,
    },
    "paper-gpu": {
        "train": 500_000,
        "val": 10_000,
        "test": 10_000,
        "workers": max(1, os.cpu_count() or 1),
        "paired": "250,1000,4000,16000,64000,ALL",
        "presets": "all,full-bt",
        "seeds": 3,
        "steps": 5000,
        "batch_size": TrainConfig.batch_size,
        "lr": TrainConfig.lr,
        "eval_every": 500,
        "text": True,
        "device": "auto",
        "threads": 0,
        "pretrain_threads": 0,
        "processes": 1,
    },
}
"""Named sizes: each overrides DemoOptions' defaults (the `demo` size)."""


def demo_options(scale: str, out: Path, **overrides: Any) -> DemoOptions:
    """The options of a named scale, with explicit overrides (None: keep the scale's value)."""
    if scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    chosen = {**SCALES[scale], **{k: v for k, v in overrides.items() if v is not None}}
    return DemoOptions(out=out, **chosen)


_say = functools.partial(say, "demo")


def _identity(options: DemoOptions) -> dict[str, Any]:
    """What must match for a rerun to continue a demo folder: not how it runs (workers, threads, ...)."""
    fields = dataclasses.asdict(options)
    for key in ("out", "force", "progress", "threads", "pretrain_threads", "workers", "processes"):
        fields.pop(key)
    return fields


def check_options(options: DemoOptions) -> None:
    """Refuse bad options before anything is written: a failure after the dataset and specialists
    were made would leave a folder that only --force (which deletes them) could reuse."""
    from ..device import resolve_device
    from ..domains.pretrain import check_steps

    require_at_least(
        (
            ("--train", options.train, 1),
            ("val", options.val, 1),
            ("test", options.test, 1),
            ("pretrain batch size", options.pretrain_batch_size or 1, 1),
            ("workers", options.workers, 1),
            ("processes", options.processes, 1),
            ("pretrain threads", options.pretrain_threads, 0),
        )
    )
    out = Path(options.out)
    check_numbers(_experiment_options(options, "v,attr", out / "data", out / "experiment"))
    check_steps(options.pretrain_steps, "--pretrain-steps")
    parse_presets(options.presets, {})
    parse_paired(options.paired, options.train)
    resolve_device(options.device)


def _experiment_options(options: DemoOptions, domains: str, data: Path, out: Path) -> SemiSupervisedOptions:
    """The semi-supervision experiment the demo runs on `domains`."""
    return SemiSupervisedOptions(
        data=data,
        domains=domains,
        paired=options.paired,
        presets=options.presets,
        seeds=options.seeds,
        seed=options.seed,
        steps=options.steps,
        batch_size=options.batch_size,
        lr=options.lr,
        eval_every=options.eval_every,
        out=out,
        device=options.device,
        progress=options.progress,
        threads=options.threads,
    )


def _open_folder(options: DemoOptions) -> dict[str, float]:
    """Create OUT, or continue the demo it holds; returns the timings of its finished stages."""
    out = Path(options.out)
    meta = out / "demo.json"
    refuse_foreign(out, meta.name, "demo folder")
    if out.exists() and not options.force:
        if not meta.is_file():
            raise UserError(f"{out} already exists and is not a demo folder; pass --force to start afresh")
        if read_json(meta, "demo settings") != _identity(options):
            raise UserError(
                f"{out} holds a demo with other options; rerun with the same options to continue it, "
                "or pass --force to start afresh"
            )
        _say(f"continuing the demo in {out}")
        timings = out / "timings.json"
        return dict(read_json(timings, "demo timings")) if timings.is_file() else {}
    remove_output(out)
    out.mkdir(parents=True)
    atomic_write_json(meta, _identity(options))
    return {}


def run_sharded(options: SemiSupervisedOptions, processes: int) -> None:
    """The experiment in `processes` local processes joined by gloo, ensembles shared out as under
    torchrun (results equal a single process's); in this process when `processes` is 1."""
    if processes <= 1:
        run_semi_supervised(options)
        return
    with socket.socket() as probe:  # a free local port for the process group
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        torch.multiprocessing.spawn(_experiment_rank, args=(processes, port, options), nprocs=processes)
    except torch.multiprocessing.ProcessRaisedException as exc:
        raise UserError(
            f"the experiment failed in a worker process: {str(exc).strip().splitlines()[-1]}"
        ) from exc


def _experiment_rank(rank: int, world: int, port: int, options: SemiSupervisedOptions) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    # Rank 0 trains its share with progress bars and writes the results; the others stay quiet.
    run_semi_supervised(dataclasses.replace(options, progress=options.progress and rank == 0))


def run_demo(options: DemoOptions) -> list[Path]:
    """Run (or continue) every stage; returns the report paths."""
    check_options(options)
    with exclusive_output(Path(options.out), "choose another OUT"):
        return _run_stages(options)


def _run_stages(options: DemoOptions) -> list[Path]:
    from ..data.simple_shapes import generate_simple_shapes
    from ..device import resolve_device
    from ..domains.pretrain import PretrainConfig, pretrain

    out = Path(options.out)
    timings = _open_folder(options)

    def stage(name: str, title: str, work: Any, finished: bool = False) -> None:
        _say(title)
        if name in timings or finished:  # finished: by a run stopped before it recorded the time
            seconds = timings.get(name)
            _say("    done before" + (f" ({seconds:.0f} s)" if seconds is not None else ""))
            return
        start = time.perf_counter()
        work()
        timings[name] = time.perf_counter() - start
        atomic_write_json(out / "timings.json", timings)
        _say(f"    {timings[name]:.0f} s")

    data = out / "data"
    counts = {"train": options.train, "val": options.val, "test": options.test}
    stage(
        "dataset",
        f"1/3 generating Simple Shapes {counts} in {data}",
        lambda: generate_simple_shapes(
            data, counts, seed=options.seed, workers=options.workers, force=True, progress=options.progress
        ),
    )
    domains = ("v", "attr", "t") if options.text else ("v", "attr")
    if options.pretrain_threads > 0:
        torch.set_num_threads(options.pretrain_threads)
    stage(
        "pretrain",
        f"2/3 the specialists {', '.join(domains)}"
        + (" (trained on the data)" if options.pretrain_steps else " (shipped, where they fit the data)"),
        lambda: pretrain(
            data,
            PretrainConfig(
                domains=domains,
                steps=dict(options.pretrain_steps),
                batch_size=options.pretrain_batch_size,
                device=options.device,
                seed=options.seed if options.pretrain_steps else None,
                progress=options.progress,
            ),
        ),
    )
    reports = []
    pairs = [("v", "attr")] + ([("v", "t")] if options.text else [])
    for i, (a, b) in enumerate(pairs):
        exp = out / f"experiment_{a}_{b}"
        stage(
            f"experiment_{a}_{b}",
            f"3/3 semi-supervision experiment on {a},{b} ({i + 1}/{len(pairs)})",
            lambda a=a, b=b, exp=exp: run_sharded(
                _experiment_options(options, f"{a},{b}", data, exp),
                options.processes if resolve_device(options.device).type == "cpu" else 1,
            ),
            finished=(exp / "results.csv").is_file(),
        )
        reports.append(exp / "report.html")
    total = sum(timings.values())
    print(f"\ndemo finished: {total / 60:.1f} min of compute over its stages; open the report(s):")
    for r in reports:
        print(f"  {r.resolve()}")
    return reports
