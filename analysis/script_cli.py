"""What the analysis scripts share: their command line, and bad input said in one line, as `gw` does."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from global_workspace.errors import UserError


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose help is the script's docstring, laid out as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def domain_pair(parser: argparse.ArgumentParser, option: str, text: str) -> tuple[str, str]:
    """`a,b` -> (a, b); anything else ends the script with a usage error naming `option`."""
    names = text.split(",")
    if len(names) != 2:
        parser.error(f"{option} {text!r}: give two domains, e.g. v,t")
    return names[0], names[1]


def run(main: Callable[[], None]) -> None:
    """Run `main`; a UserError (a bad folder or member) ends it with one line, not a traceback."""
    try:
        main()
    except UserError as error:
        sys.exit(f"{Path(sys.argv[0]).name}: {error}")
