"""`gw specialists ...`: the pretrained specialists shipped with the package."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="The pretrained specialists shipped with gw.", no_args_is_help=True)


@app.command("list")
def list_sets() -> None:
    """Show every shipped set: what dataset it fits, how each specialist was trained (its last
    command; the manifest keeps the whole chain) and its quality measured on fresh data."""
    from ..domains.shipped import shipped_sets

    for shipped in shipped_sets():
        manifest = shipped.manifest
        typer.echo(f"{shipped.name}: {shipped.summary()}, {manifest['precision']}, in {shipped.folder}")
        typer.echo(f"  fits: {json.dumps(manifest['dataset'])}")
        test = manifest["evaluation"]["data"]
        measured = f"on {test['examples']} {test['split']} examples of seed {test['seed']}"
        for kind in shipped.kinds:
            shipped.verify(kind)
            training = manifest["training"]["domains"][kind]
            typer.echo(f"  {kind}: trained by `{' '.join(training['command'])}`")
            quality = ", ".join(f"{k} {_short(v)}" for k, v in manifest["quality"][kind].items())
            typer.echo(f"    {measured}: {quality}")


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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
