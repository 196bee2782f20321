"""`gw demo OUT`: the whole pipeline at demo scale, from nothing to a report."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Argument(..., help="Folder for the dataset, the specialists and the experiments."),
    force: bool = typer.Option(False, "--force", help="Start afresh when OUT exists."),
    train: int = typer.Option(12000, help="Training images."),
    paired: str = typer.Option("60,200,1000,ALL", help="Pair counts of the experiment."),
    presets: str = typer.Option("all", help="Presets of the experiment."),
    seeds: int = typer.Option(2, help="Seeds per (preset, pair count)."),
    steps: int = typer.Option(1500, help="Training steps of every workspace."),
    batch_size: int = typer.Option(256, help="Batch size of every workspace group."),
    pretrain_steps: str = typer.Option(
        "v=1000,probe=400", help="Steps of the specialists (see gw pretrain)."
    ),
    text: bool = typer.Option(False, "--text/--no-text", help="Also pretrain captions and run v,t (slower)."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    threads: int = typer.Option(
        1, help="CPU threads (0: torch's default); 1 is fastest for these small networks."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Generate a dataset, pretrain the specialists, run the semi-supervision experiment, report."""
    from ..domains.pretrain import parse_steps
    from ..experiments.demo import DemoOptions, run_demo

    run_demo(
        DemoOptions(
            out=out,
            force=force,
            train=train,
            paired=paired,
            presets=presets,
            seeds=seeds,
            steps=steps,
            batch_size=batch_size,
            pretrain_steps=parse_steps(pretrain_steps),
            text=text,
            device=device,
            progress=not quiet,
            threads=threads,
        )
    )
