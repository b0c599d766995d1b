"""How a library function ends a command early with its own exit code.

The commands' work lives in the library (:mod:`vbench.commands`, :func:`vbench.check.gate`,
:func:`vbench.compare.run`); the CLI only parses, calls and renders. Some of that work ends in
an answer that is not success but is not a fault either: a usage error found once the inputs
are read, a sweep interrupted by a signal, a point that failed. :class:`Stop` carries that
answer's one line and exit code to the CLI, which prints it as it prints any error, and never
with a traceback (``--debug`` explains faults, and this is the command's verdict).
:func:`explain` gives any exception's line and exit code, as the CLI prints them.
"""

from __future__ import annotations

from vbench.errors import EXIT_BUG, EXIT_USAGE, InvariantError, VbenchError, unexpected


class Stop(VbenchError):
    """End the command: ``str(stop)`` is its one line on stderr, ``code`` its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def explain(exc: Exception) -> tuple[str, int]:
    """The one line and the exit code an exception ends a command with: a :class:`Stop` its
    own, a user's error (:class:`VbenchError`) 2, a broken invariant 1 (a vbench bug, called
    one), anything else as :func:`vbench.errors.unexpected` judges it."""
    if isinstance(exc, Stop):
        return str(exc), exc.code
    if isinstance(exc, VbenchError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, InvariantError):
        return f"internal invariant broken (a vbench bug, please report): {exc}", EXIT_BUG
    return unexpected(exc)
