"""`gw pretrain DATA`: train the frozen unimodal specialists and store their latents."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def pretrain(
    data: Path = typer.Argument(..., help="Dataset folder (made by `gw data ...`)."),
    domains: str = typer.Option("v,attr,t", help="Comma-separated domains to pretrain, in order."),
    steps: str | None = typer.Option(
        None,
        help="Optimisation steps: N for every model, or v=N,probe=N,blur=N,t=N,caption=N "
        "(visual VAE, image probe, the probe trained on under a mild blur so that it reads decoded "
        "images fairly, text VAE, caption decoder); default 3000,1500,1500,2000,3000; blur=0 skips "
        "that stage.",
    ),
    batch_size: int | None = typer.Option(
        None, help="Batch size of every model (default 128).", show_default=False
    ),
    device: str = typer.Option("auto", help="auto (the GPU when present), cpu or cuda."),
    seed: int | None = typer.Option(
        None, help="Seed of every initialisation and batch order (default 0).", show_default=False
    ),
    force: bool = typer.Option(False, "--force", help="Retrain domains whose folder already exists."),
    from_scratch: bool = typer.Option(
        False,
        "--from-scratch",
        help="Train every specialist on DATA, even where a shipped one fits it (Simple Shapes at 32x32; "
        "`gw specialists list`). --steps, --batch-size and --seed imply it.",
    ),
    raw: list[str] = typer.Option(
        [],
        "--raw",
        help="NAME=TRAIN[,VAL,TEST]: domain NAME encodes these files (.npy, .txt lines, or what its "
        "read_raw reads), one example per example of the split, instead of what it reads from DATA "
        "(repeatable).",
    ),
    init: list[str] = typer.Option(
        [],
        "--init",
        help="NAME=FOLDER: domain NAME trains on from the weights of the specialist in FOLDER (a "
        "DATA/domains/NAME folder written by gw pretrain, or a shipped one) instead of from a fresh "
        "initialisation, keeping FOLDER's image probe as it is unless --steps names probe (a new "
        "one) or blur (trains it on under blur); --steps v=0 keeps the VAE as it is (repeatable; "
        "the image domain v).",
    ),
    lr: str | None = typer.Option(
        None,
        help="Peak learning rate per model, v=LR,probe=LR,blur=LR,t=LR,caption=LR (default: each "
        "model's own); lower it to fine-tune with --init.",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Store frozen specialists in DATA/domains/{name}/ with weights, metrics and latents.

    Where a shipped specialist fits DATA it is used (encoding only); otherwise the domain is trained
    on DATA, resuming from DATA/cache/pretrain/ after an interruption.

    A domain already there is reused; --steps, --batch-size or --seed given with other values than
    it was trained with are refused (pass --force to retrain it)."""
    from ..domains.pretrain import PretrainConfig, parse_domains, parse_init, parse_lr, parse_steps
    from ..domains.pretrain import pretrain as run
    from ..domains.raw_files import parse_raw_options

    config = PretrainConfig(
        domains=parse_domains(domains),
        steps=parse_steps(steps),
        batch_size=batch_size,
        device=device,
        seed=seed,
        force=force,
        progress=not quiet,
        from_scratch=from_scratch,
        raw=parse_raw_options(raw),
        init=parse_init(init),
        lr=parse_lr(lr),
    )
    results = run(data, config)
    for name, metrics in results.items():
        quality = {
            k: v for k, v in metrics.items() if k.startswith(("quality/", "probe/test", "caption/test"))
        }
        typer.echo(f"{name}: {json.dumps(quality)}")
