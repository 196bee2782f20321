"""The exception that means "the user asked for something we cannot do", and its one special case."""

import math
from collections.abc import Iterable


class UserError(Exception):
    """A bad input, reported by the CLI as one line naming the problem and the fix, exit code 2.

    Everything else that escapes is a bug in this library and keeps its traceback.
    """


class NoReadout(UserError):
    """A domain whose latents are not read as attributes by design (a plugin's kind, captions of a
    dataset without a parser), unlike a specialist whose files are missing or damaged: evaluation
    leaves its attribute metrics out instead of failing."""


def require_at_least(checks: Iterable[tuple[str, float, float]]) -> None:
    """Raise a UserError naming the first (name, value, lowest allowed) whose value is too small or
    not a finite number (NaN compares false with everything, so `value < low` alone lets it pass)."""
    for name, value, low in checks:
        _require(name, value, value >= low, f"at least {low}")


def require_positive(checks: Iterable[tuple[str, float]]) -> None:
    """Raise a UserError naming the first (name, value) that is not a finite number above 0: a
    learning rate of 0 trains nothing, a negative or infinite one diverges."""
    for name, value in checks:
        _require(name, value, value > 0, "above 0")


def _require(name: str, value: float, within: bool, bound: str) -> None:
    if not isinstance(value, int) and not math.isfinite(value):  # an int is finite, however large
        raise UserError(f"{name} must be a finite number {bound}, got {value}")
    if not within:
        raise UserError(f"{name} must be {bound}, got {value}")
