"""The one exception type that means "the user asked for something we cannot do"."""

from collections.abc import Iterable


class UserError(Exception):
    """A bad input, reported by the CLI as one line naming the problem and the fix, exit code 2.

    Everything else that escapes is a bug in this library and keeps its traceback.
    """


def require_at_least(checks: Iterable[tuple[str, float, float]]) -> None:
    """Raise a UserError naming the first (name, value, lowest allowed) whose value is too small."""
    for name, value, low in checks:
        if value < low:
            raise UserError(f"{name} must be at least {low}, got {value}")
