"""The `gw` command: one entry point, one sub-command module per job under `commands/`."""

from __future__ import annotations

import sys

import typer

from .errors import UserError

app = typer.Typer(
    name="gw",
    help="Global Workspace: semi-supervised multimodal representation learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    """Attach every sub-command; each module under commands/ owns its own options."""
    from .commands import (
        data,
        data_factory,  # noqa: F401  (adds `gw data factory`)
        pretrain,
    )

    app.add_typer(data.app, name="data")
    app.command("pretrain")(pretrain.pretrain)
    from .commands import train

    app.command("train")(train.train)
    app.command("evaluate")(train.evaluate)
    from .commands import (
        attention,  # noqa: F401  (adds `gw experiment attention`)
        demo,
        experiment,
    )

    app.add_typer(experiment.app, name="experiment")
    app.command("demo")(demo.demo)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a UserError becomes one line on stderr and exit code 2, never a traceback."""
    _register()
    try:
        app(args=argv, prog_name="gw")
    except UserError as exc:
        typer.echo(f"gw: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("gw: interrupted", err=True)
        sys.exit(130)
