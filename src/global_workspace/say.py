"""Progress lines for a person: on stderr, so that a command's stdout holds only its result."""

import sys


def say(command: str, text: str) -> None:
    """`gw COMMAND: text`, flushed at once so that a long stage shows while it runs."""
    print(f"gw {command}: {text}", file=sys.stderr, flush=True)
