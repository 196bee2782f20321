"""`gw data ...`: make, look at and import datasets."""

from __future__ import annotations

import os
from pathlib import Path

import typer

app = typer.Typer(help="Make, look at and import datasets.", no_args_is_help=True)


@app.command("simple-shapes")
def simple_shapes(
    out: Path = typer.Argument(..., help="Folder to create for the dataset."),
    train: int = typer.Option(500_000, help="Number of training examples."),
    val: int = typer.Option(1_000, help="Number of validation examples."),
    test: int = typer.Option(1_000, help="Number of test examples."),
    seed: int = typer.Option(0, help="Seed; the same seed and options give byte-identical files."),
    image_size: int = typer.Option(
        32, help="Side of the images in pixels; the 32-pixel scene is scaled to it (8 to 1024)."
    ),
    workers: int = typer.Option(
        min(os.cpu_count() or 1, 8), help="Processes rendering in parallel; does not change the output."
    ),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Generate the Simple Shapes dataset (images, labels, captions) into OUT."""
    from ..data.simple_shapes import generate_simple_shapes

    dataset = generate_simple_shapes(
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


@app.command("show")
def show(
    dataset: Path = typer.Argument(..., help="Dataset folder."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    split: str = typer.Option("val", help="Split to show."),
    n: int = typer.Option(64, "--n", help="Number of examples (the first n of the split)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Write a grid picture of a dataset's examples with their captions."""
    from ..data.show import show_dataset

    show_dataset(dataset, out, split=split, n=n, force=force)
    typer.echo(f"wrote {out}")


@app.command("import-reference")
def import_reference(
    path: Path = typer.Argument(..., help="Folder of the authors' published dataset."),
    out: Path = typer.Argument(..., help="Folder to create in our format."),
    our_captions: bool = typer.Option(
        False,
        "--our-captions",
        help="Replace their captions by ours (generated from the labels with --seed).",
    ),
    seed: int = typer.Option(0, help="Seed for --our-captions."),
    allow_pickle: bool = typer.Option(
        False, "--allow-pickle", help="Read .npy files holding pickled objects (only from a trusted source)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Convert the authors' Simple Shapes layout (PNG images, .npy labels and captions) into ours."""
    from ..data.import_reference import import_reference as run

    dataset = run(path, out, force=force, our_captions=our_captions, seed=seed, allow_pickle=allow_pickle)
    sizes = ", ".join(f"{k} {v}" for k, v in dataset.info.splits.items())
    typer.echo(f"wrote {out} ({sizes})")
