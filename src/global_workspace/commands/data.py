"""`gw data ...`: make, look at and import datasets."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..data.format import Dataset

app = typer.Typer(help="Make, look at and import datasets.", no_args_is_help=True)

# Options every generator command takes (data_factory.py too).
OUT = typer.Argument(..., help="Folder to create for the dataset.")
VAL = typer.Option(1_000, help="Number of validation examples.")
TEST = typer.Option(1_000, help="Number of test examples.")
SEED = typer.Option(0, help="Seed; the same seed and options give byte-identical files.")
WORKERS = typer.Option(
    min(os.cpu_count() or 1, 8), help="Processes rendering in parallel; does not change the output."
)
FORCE = typer.Option(False, "--force", help="Replace OUT if it exists.")


def run_generator(
    generate: Callable[..., Dataset],
    out: Path,
    counts: dict[str, int],
    seed: int,
    image_size: int,
    workers: int,
    force: bool,
) -> None:
    """Run a dataset generator with a command's options, showing progress, and say what it wrote."""
    from ..fileio import require_free_space

    images = sum(counts.values()) * image_size * image_size * 3
    require_free_space(out, images, "generate fewer examples or choose another disk")
    dataset = generate(
        out, counts, seed=seed, image_size=image_size, workers=workers, force=force, progress=True
    )
    sizes = ", ".join(f"{k} {v}" for k, v in dataset.info.splits.items())
    typer.echo(f"wrote {out} ({sizes}; {image_size}x{image_size})")


@app.command("simple-shapes")
def simple_shapes(
    out: Path = OUT,
    train: int = typer.Option(500_000, help="Number of training examples."),
    val: int = VAL,
    test: int = TEST,
    seed: int = SEED,
    image_size: int = typer.Option(
        32, help="Side of the images in pixels; the 32-pixel scene is scaled to it (8 to 1024)."
    ),
    workers: int = WORKERS,
    force: bool = FORCE,
) -> None:
    """Generate the Simple Shapes dataset (images, labels, captions) into OUT."""
    from ..data.simple_shapes import generate_simple_shapes

    counts = {"train": train, "val": val, "test": test}
    run_generator(generate_simple_shapes, out, counts, seed, image_size, workers, force)


@app.command("latents")
def latents(
    out: Path = typer.Argument(..., help="Folder to create for the latents and pairs."),
    domain: list[str] = typer.Option(
        ...,
        "--domain",
        help="NAME=TRAIN.npy[,VAL.npy,TEST.npy]: a domain's float32 (N, dim) latents per split, each "
        "domain its own N (repeatable; the order gives the pair columns).",
    ),
    pairs: list[str] = typer.Option(
        [],
        "--pairs",
        help="SPLIT=FILE.npy|FILE.csv: int64 (P, n_domains) rows indexing each domain's latents, -1 "
        "(or an empty CSV cell) where absent (repeatable; a split without it has no pairs).",
    ),
    force: bool = FORCE,
) -> None:
    """Make a folder of your own latents: separate collections per domain and a list of pairs."""
    from ..data.build_latents import build_from_options

    info = build_from_options(out, domain, pairs, force)
    sizes = "; ".join(
        f"{s}: {', '.join(f'{d} {n}' for d, n in info.rows[s].items())}, {info.pairs[s]} pairs"
        for s in info.splits
    )
    typer.echo(f"wrote {out} ({sizes})")


@app.command("show")
def show(
    dataset: Path = typer.Argument(..., help="Dataset folder."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    split: str = typer.Option("val", help="Split to show."),
    n: int = typer.Option(64, "--n", help="Number of examples (the first n of the split)."),
    force: bool = FORCE,
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
    force: bool = FORCE,
) -> None:
    """Convert the authors' Simple Shapes layout (PNG images, .npy labels and captions) into ours."""
    from ..data.import_reference import import_reference as run

    dataset = run(path, out, force=force, our_captions=our_captions, seed=seed, allow_pickle=allow_pickle)
    sizes = ", ".join(f"{k} {v}" for k, v in dataset.info.splits.items())
    typer.echo(f"wrote {out} ({sizes})")
