"""The `gw` command: one entry point, one sub-command module per job under `commands/`."""

from __future__ import annotations

import importlib
import inspect
import signal
import sys
import threading
from typing import Protocol

import typer
import typer.main

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
        except Exception as exc:  # the plugin's own code failed: one line, and how to see the traceback
            raise UserError(
                f"plugin {name!r} failed while importing ({type(exc).__name__}: {exc}); "
                f"run `python -c 'import {name}'` to see where"
            ) from exc


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


class _Documented(Protocol):
    help: str | None


def _reflow_help(command: _Documented) -> None:
    """Join the source line breaks inside each help paragraph, down the tree.

    Typer's rich help keeps them after the first paragraph, so a docstring wrapped for the source
    would break mid-sentence at any terminal width; plain click reflows either way.
    """
    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        command.help = "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)
    for sub in getattr(command, "commands", {}).values():
        _reflow_help(sub)


INTERRUPTED = 130
"""The exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it."""
TERMINATED = 128 + signal.SIGTERM
"""The exit code of a run stopped by SIGTERM (`kill`, a job scheduler's time limit)."""


class _Stop:
    """Which signal stopped the command, for its last line and exit code."""

    terminated = False


def _on_sigterm(signum: int, frame: object) -> None:
    """Stop as Ctrl-C does, so that locks are released and temporary folders removed on the way out."""
    _Stop.terminated = True
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error is one line on stderr (exit 2), never a traceback or a box.

    Click runs outside its standalone mode so that a bad option value or a Ctrl-C reaches the
    handlers here instead of click's own multi-line rendering and its "Aborted!".
    """
    _Stop.terminated = False
    if threading.current_thread() is not threading.main_thread():
        _run(argv)  # only the main thread may handle signals
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _run(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> None:
    try:
        command = typer.main.get_command(build_app())
        _reflow_help(command)
        code = command.main(args=argv, prog_name="gw", standalone_mode=False)
    except UserError as exc:
        _fail(str(exc))
    except (KeyboardInterrupt, typer.Abort):
        _interrupted()
    except OSError as exc:
        if exc.errno is None or exc.filename is None:
            raise  # not the system refusing a path: a bug, whose traceback is wanted
        _fail(
            f"cannot use {_short(str(exc.filename))}: {exc.strerror}; choose another location, "
            "or fix its name, permissions or free space"
        )
    except Exception as exc:
        if not _is_click_error(exc):
            raise
        if not exc.format_message():  # type: ignore[attr-defined]  # `gw` alone: the help was shown
            sys.exit(2)
        context = getattr(exc, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        _fail(f"{exc.format_message()}{hint}")  # type: ignore[attr-defined]
    if code == INTERRUPTED:  # Typer turns Ctrl-C into this exit code
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)


def _interrupted() -> None:
    typer.echo("gw: terminated" if _Stop.terminated else "gw: interrupted", err=True)
    sys.exit(TERMINATED if _Stop.terminated else INTERRUPTED)


def _is_click_error(exc: BaseException) -> bool:
    """A usage error of click, or of the copy of click that recent Typer versions carry."""
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def _short(path: str, keep: int = 100) -> str:
    return path if len(path) <= keep else f"{path[: keep // 2]}…{path[-keep // 2 :]}"


def _fail(message: str) -> None:
    typer.echo(f"gw: error: {' '.join(message.split())}", err=True)
    sys.exit(2)
