"""`gw data factory`: the Factory dataset (a table in a rendered 3-D scene)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from .data import app


@app.command("factory")
def factory(
    out: Path = typer.Argument(..., help="Folder to create for the dataset."),
    train: int = typer.Option(100_000, help="Number of training examples."),
    val: int = typer.Option(1_000, help="Number of validation examples."),
    test: int = typer.Option(1_000, help="Number of test examples."),
    seed: int = typer.Option(0, help="Seed; the same seed and options give byte-identical files."),
    image_size: int = typer.Option(64, help="Side of the images in pixels (16 to 512)."),
    workers: int = typer.Option(
        min(os.cpu_count() or 1, 8), help="Processes rendering in parallel; does not change the output."
    ),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Generate the Factory dataset (a table with position, rotation and colour in a 3-D scene) into OUT."""
    from ..data.factory.generate import generate_factory

    dataset = generate_factory(
        out,
        {"train": train, "val": val, "test": test},
        seed=seed,
        image_size=image_size,
        workers=workers,
        force=force,
        progress=True,
    )
    sizes = ", ".join(f"{k} {v}" for k, v in dataset.info.splits.items())
    typer.echo(f"wrote {out} ({sizes}; {image_size}x{image_size})")
