"""User-facing errors.

Every problem a person can fix (a bad config, a missing file, an impossible parameter
combination) is raised as a :class:`VbenchError` whose message is one line naming the problem
and the fix. The CLI prints that line and exits with code 2; nothing else ends in a traceback
(``vbench --debug`` shows one).

Two helpers keep that promise where vbench does not raise the error itself:

- :func:`reading` wraps the parsing of a file the user named (a results table, meta.json):
  whatever the parser raises there (pyarrow, pandas, json, a decode error, even a KeyError
  from pyarrow's reading of damaged metadata) can only come from that file, so it becomes a
  VbenchError naming the file.
- :func:`unexpected` is the CLI's last resort for an exception nobody caught: an ``OSError``
  (a path, a permission, a full disk: the user's environment) or a parser's error is the
  user's to fix (exit 2); anything else is a vbench bug and is called one (exit 1), never
  dressed up as the user's mistake.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Exit codes of a user error and of a bug (invariant or unexpected exception).
EXIT_USAGE = 2
EXIT_BUG = 1

# Modules (besides pyarrow) whose exceptions only describe the bytes being parsed, never
# vbench's logic.
_PARSER_MODULES = ("pandas.errors", "json.decoder", "tomllib", "_csv")


def did_you_mean(word: str, options: list[str] | tuple[str, ...], list_all: bool = False) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or (``list_all``) the valid ones."""
    import difflib

    m = difflib.get_close_matches(word, [str(o) for o in options], n=1)
    if m:
        return f" (did you mean {m[0]!r}?)"
    return f" (valid: {', '.join(map(str, options))})" if list_all else ""


def one_line(text: str, limit: int = 400) -> str:
    """``text`` on one line (whitespace runs collapsed) and at most ``limit`` characters: a
    message quoting a user's file must not spill a page of it onto the terminal."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


class VbenchError(Exception):
    """A problem the user can fix; ``str(err)`` is the one line shown to them.

    One line by construction: a message that quotes a user's key or value with a line break in
    it has the break replaced by a space."""

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(" ".join(str(message).splitlines()), *args)


class ConfigError(VbenchError):
    """The configuration (file, --set overrides or preset) is invalid."""


class InvariantError(RuntimeError):
    """A model or the engine broke a protocol invariant: a bug in vbench, never the user's."""


def _is_parser_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from decoding or parsing bytes (a file's content), by its class."""
    if isinstance(exc, UnicodeDecodeError):
        return True
    for cls in type(exc).__mro__:
        mod = cls.__module__ or ""
        if mod.split(".")[0] == "pyarrow" or mod in _PARSER_MODULES:
            return True
    return False


@contextmanager
def reading(path: str | Path, fix: str) -> Iterator[None]:
    """Parse a user's file: whatever the parser raises inside becomes one :class:`VbenchError`
    line, ``<path>: unreadable (<type>: <detail>): <fix>``.

    Put only the parsing calls (pandas, pyarrow, json, csv) inside: an exception there can only
    come from the file's bytes, while vbench's own checks stay outside, so a bug in them still
    reads as a bug."""
    try:
        yield
    except VbenchError:
        raise
    except OSError as e:
        raise VbenchError(one_line(f"{path}: cannot read it ({e.strerror or e}): {fix}")) from None
    except Exception as e:
        raise VbenchError(
            one_line(f"{path}: unreadable ({type(e).__name__}: {_first_line(e)}): {fix}")
        ) from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:160] if lines else "no detail"


def unexpected(exc: BaseException) -> tuple[str, int]:
    """The one line and exit code for an exception that reached the CLI uncaught."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return (
            one_line(
                f"{where}{exc.strerror or exc}: check the path, its permissions and the free space"
            ),
            EXIT_USAGE,
        )
    if _is_parser_error(exc):
        return (
            one_line(
                f"a file given to vbench cannot be parsed ({type(exc).__name__}: "
                f"{_first_line(exc)}): check the files named on the command line"
            ),
            EXIT_USAGE,
        )
    return (
        one_line(
            f"internal error (a vbench bug): {type(exc).__name__}: {_first_line(exc)}; "
            "rerun with --debug for the traceback"
        ),
        EXIT_BUG,
    )
