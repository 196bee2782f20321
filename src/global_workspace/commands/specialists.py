"""`gw specialists ...`: the pretrained specialists shipped with the package."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="The pretrained specialists shipped with gw.", no_args_is_help=True)


@app.command("list")
def list_sets() -> None:
    """Show every shipped set: what dataset it fits, how it was trained, its measured quality."""
    from ..domains.shipped import shipped_sets

    for shipped in shipped_sets():
        manifest = shipped.manifest
        typer.echo(f"{shipped.name}: {shipped.summary()}, {manifest['precision']}, in {shipped.folder}")
        typer.echo(f"  fits: {json.dumps(manifest['dataset'])}")
        for kind in shipped.kinds:
            shipped.verify(kind)
            quality = {
                k: v for k, v in manifest["quality"][kind].items() if k.startswith(("quality/", "probe/"))
            }
            typer.echo(f"  {kind}: {json.dumps(quality)}")


@app.command("export")
def export(
    data: Path = typer.Argument(..., help="Dataset whose specialists `gw pretrain --from-scratch` trained."),
    fresh: Path = typer.Option(
        ..., help="A dataset of the same generator made from another seed, to measure on."
    ),
    out: Path = typer.Option(..., "--out", help="Folder to write the shipped set to."),
    domains: str = typer.Option("v,t", help="Specialists to ship."),
    name: str = typer.Option("simple-shapes-32", help="Name of the set."),
    precision: str = typer.Option("float16", help="float16 or float32 weights."),
    device: str = typer.Option("cpu", help="Device to measure on."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Copy DATA's specialists into a shipped set with a manifest (hashes, training, quality)."""
    from ..domains.ship import export_shipped

    kinds = tuple(k.strip() for k in domains.split(",") if k.strip())
    manifest = export_shipped(data, fresh, out, kinds, name, precision, force, device)
    for kind, quality in manifest["quality"].items():
        typer.echo(f"{kind}: {json.dumps({k: v for k, v in quality.items() if k.startswith('quality/')})}")
    typer.echo(f"wrote {out}")
