"""`gw experiment attention RUN --out EXP`: selectors over a frozen workspace, robust to noise."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from ..errors import require_at_least, require_positive
from .experiment import app


@app.command("attention")
def attention(
    run: Path = typer.Argument(..., help="A trained workspace run folder (`gw train`)."),
    out: Path = typer.Option(..., "--out", help="Experiment folder EXP to create."),
    domains: str = typer.Option(None, help="Comma-separated domains to select among (default: all of RUN)."),
    classifier_steps: int = typer.Option(1500, help="Training steps of the shape classifier."),
    selector_steps: int = typer.Option(2000, help="Training steps of each selector."),
    batch_size: int = typer.Option(256, help="Examples per step."),
    lr: float = typer.Option(3e-3, help="Adam learning rate of classifier and selectors."),
    head_size: int = typer.Option(32, help="Size of keys and queries."),
    scale_low: float = typer.Option(
        0.0, help="Smallest one-sided noise scale (× 5 × a standardised vector)."
    ),
    scale_high: float = typer.Option(1.0, help="Largest one-sided noise scale."),
    grid_max: float = typer.Option(1.0, help="Largest scale of the two-sided grid and of the line plot."),
    grid_points: int = typer.Option(6, help="Scales per side of the two-sided grid."),
    test_rows: int = typer.Option(2000, help="Test examples evaluated (0: the whole test split)."),
    seed: int = typer.Option(0, help="Seed of batches, noise and the evaluation draws."),
    device: str = typer.Option("auto", help="auto (the GPU when present), cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace EXP if it exists."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress messages."),
) -> None:
    """Train a shape classifier on clean states, then one- and two-step selectors under corruption;
    write EXP/results.json and EXP/report.html."""
    from ..attention.experiment import AttentionSettings, attention_experiment

    # AttentionSettings checks its fields too; here the error names the option as typed.
    require_at_least(
        (
            ("--classifier-steps", classifier_steps, 1),
            ("--selector-steps", selector_steps, 1),
            ("--batch-size", batch_size, 1),
            ("--head-size", head_size, 1),
            ("--grid-points", grid_points, 1),
            ("--test-rows", test_rows, 0),
            ("--scale-low", scale_low, 0),
            ("--scale-high", scale_high, 0),
            ("--grid-max", grid_max, 0),
        )
    )
    require_positive([("--lr", lr)])
    settings = AttentionSettings(
        classifier_steps=classifier_steps,
        selector_steps=selector_steps,
        batch_size=batch_size,
        classifier_lr=lr,
        selector_lr=lr,
        head_size=head_size,
        scale_low=scale_low,
        scale_high=scale_high,
        grid_max=grid_max,
        grid_points=grid_points,
        test_rows=test_rows,
        seed=seed,
    )
    results = attention_experiment(
        run,
        out,
        settings,
        domains=None if domains is None else domains.split(","),
        device=device,
        force=force,
        command=shlex.join(["gw", *sys.argv[1:]]),
        progress=(lambda _: None) if quiet else (lambda msg: typer.echo(f"attention: {msg}", err=True)),
    )
    checkpoint = results["checkpoint"]
    if not checkpoint["finished"]:
        typer.echo(
            f"gw experiment attention: the run stopped at step {checkpoint['step']} of "
            f"{checkpoint['steps']}; this experiment used that checkpoint (rerun its `gw train` command "
            "with --resume to finish it)",
            err=True,
        )
    metrics = results["metrics"]
    typer.echo(
        f"wrote {out}/report.html; shape accuracy under random one-sided noise: "
        + ", ".join(
            f"{m} {metrics[f'attention/random/{m}/shape_accuracy']:.3f}"
            for m in ("equal", "one-step", "two-step", "oracle")
        )
    )
