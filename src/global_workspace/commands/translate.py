"""`gw translate`: a trained workspace's translations of dataset examples, next to the truth."""

from __future__ import annotations

from pathlib import Path

import typer

from .data import FORCE


def translate(
    folder: Path = typer.Argument(..., help="Run folder (gw train) or experiment folder (gw experiment)."),
    source: str = typer.Option(
        ...,
        "--from",
        help="Domain the examples enter the workspace from; domains joined by '+' (v+t) enter at once.",
    ),
    target: str = typer.Option(..., "--to", help="Domain they are decoded into."),
    member: str = typer.Option(
        "0", help="A run's member by index or label; an experiment's by its label in results.csv."
    ),
    split: str = typer.Option("test", help="Dataset split the examples come from."),
    n: int = typer.Option(8, "--n", help="Number of examples (the first n of the split)."),
    out: Path = typer.Option(
        None, "--out", help="File to write: FILE.png for images (needed), FILE.txt for text and attributes."
    ),
    data: Path = typer.Option(None, "--data", help="The dataset folder, if it moved since training."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    force: bool = FORCE,
) -> None:
    """Translate the first n examples of a split and show them next to the truth (text, or a picture)."""
    from ..translations import show_translations

    show_translations(
        folder,
        source,
        target,
        member=int(member) if member.isdigit() else member,
        split=split,
        n=n,
        out=out,
        data=data,
        device=device,
        force=force,
    )
