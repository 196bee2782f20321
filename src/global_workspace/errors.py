"""The one exception type that means "the user asked for something we cannot do"."""


class UserError(Exception):
    """A bad input, reported by the CLI as one line naming the problem and the fix, exit code 2.

    Everything else that escapes is a bug in this library and keeps its traceback.
    """
