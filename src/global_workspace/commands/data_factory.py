"""`gw data factory`: the Factory dataset (a table in a rendered 3-D scene)."""

from __future__ import annotations

from pathlib import Path

import typer

from .data import FORCE, OUT, SEED, TEST, VAL, WORKERS, app, run_generator


@app.command("factory")
def factory(
    out: Path = OUT,
    train: int = typer.Option(100_000, help="Number of training examples."),
    val: int = VAL,
    test: int = TEST,
    seed: int = SEED,
    image_size: int = typer.Option(64, help="Side of the images in pixels (16 to 512)."),
    workers: int = WORKERS,
    force: bool = FORCE,
) -> None:
    """Generate the Factory dataset (a table with position, rotation and colour in a 3-D scene) into OUT."""
    from ..data.factory.generate import generate_factory

    counts = {"train": train, "val": val, "test": test}
    run_generator(generate_factory, out, counts, seed, image_size, workers, force)
