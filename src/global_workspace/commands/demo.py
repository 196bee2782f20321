"""`gw demo OUT`: the whole pipeline, from nothing to a report, at demo or paper scale."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Argument(..., help="Folder for the dataset, the specialists and the experiments."),
    scale: str = typer.Option(
        "demo",
        help="demo: 12k images, 2 CPU cores, ~10 min. paper: 500k images, v,attr and v,t, the demo's "
        "presets × 5 pair counts × 2 seeds, 2 CPU cores in a background hour or two. paper-gpu: the "
        "paper's 7 presets × 6 pair counts × 3 seeds, for one GPU. Options below override the scale's sizes.",
    ),
    force: bool = typer.Option(False, "--force", help="Start afresh when OUT exists."),
    train: int | None = typer.Option(None, help="Training images (demo 12000, paper 500000)."),
    paired: str | None = typer.Option(None, help="Pair counts of the experiment."),
    presets: str | None = typer.Option(
        None,
        help="Presets of the experiment (demo: tr,tr+cont,full,full-bt, the curves the ratios compare; "
        "paper-gpu: all,full-bt).",
    ),
    seeds: int | None = typer.Option(None, help="Seeds per (preset, pair count)."),
    steps: int | None = typer.Option(None, help="Training steps of every workspace."),
    batch_size: int | None = typer.Option(None, help="Batch size of every workspace group."),
    pretrain_steps: str | None = typer.Option(
        None,
        help="Train the specialists on the demo's data with these steps (see gw pretrain) instead of "
        "using the shipped ones.",
    ),
    text: bool | None = typer.Option(
        None, "--text/--no-text", help="Also pretrain captions and run v,t (paper scales: on)."
    ),
    device: str | None = typer.Option(None, help="cpu, cuda or auto (demo: cpu, paper scales: auto)."),
    threads: int | None = typer.Option(
        None,
        help="CPU threads of each experiment process (0: torch's default; demo: 1, fastest for small "
        "networks on a small machine). The specialists train on every core.",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Generate a dataset, pretrain the specialists, run the semi-supervision experiment, report.

    Rerunning the same command on an interrupted OUT continues it.
    """
    from ..domains.pretrain import parse_steps
    from ..experiments.demo import demo_options, run_demo

    run_demo(
        demo_options(
            scale,
            out,
            force=force,
            train=train,
            paired=paired,
            presets=presets,
            seeds=seeds,
            steps=steps,
            batch_size=batch_size,
            pretrain_steps=(
                parse_steps(pretrain_steps, "--pretrain-steps", keeps=())
                if pretrain_steps is not None
                else None
            ),
            text=text,
            device=device,
            progress=not quiet,
            threads=threads,
        )
    )
