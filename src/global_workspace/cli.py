"""The `gw` command: one entry point, one sub-command module per job under `commands/`."""

from __future__ import annotations

import importlib
import sys

import typer

from .errors import UserError


def load_plugins(
    plugin: list[str] = typer.Option(
        [],
        "--plugin",
        envvar="GW_PLUGINS",
        help="Import this Python module first, e.g. one that registers your own domain with "
        "register_domain (repeatable; GW_PLUGINS takes a space-separated list).",
    ),
) -> None:
    """Global options: plugins are imported before any sub-command runs."""
    for name in plugin:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UserError(f"cannot import plugin {name!r} ({exc}); put its folder on PYTHONPATH") from exc


def build_app() -> typer.Typer:
    """The Typer application with every sub-command attached (each module owns its options)."""
    from .commands import (
        attention,  # noqa: F401  (adds `gw experiment attention`)
        data,
        data_factory,  # noqa: F401  (adds `gw data factory`)
        demo,
        experiment,
        pretrain,
        specialists,
        train,
        translate,
    )

    app = typer.Typer(
        name="gw",
        help="Global Workspace: semi-supervised multimodal representation learning.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(load_plugins)
    app.add_typer(data.app, name="data")
    app.command("pretrain")(pretrain.pretrain)
    app.add_typer(specialists.app, name="specialists")
    app.command("train")(train.train)
    app.command("evaluate")(train.evaluate)
    app.command("translate")(translate.translate)
    app.add_typer(experiment.app, name="experiment")
    app.command("demo")(demo.demo)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a UserError becomes one line on stderr and exit code 2, never a traceback."""
    try:
        build_app()(args=argv, prog_name="gw")
    except UserError as exc:
        typer.echo(f"gw: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("gw: interrupted", err=True)
        sys.exit(130)
