"""User-facing errors.

Every problem a person can fix (a bad config, a missing file, an impossible parameter
combination) is raised as a :class:`VbenchError` whose message is one line naming the problem
and the fix. The CLI prints that line and exits with code 2; nothing else ends in a traceback.
"""


def did_you_mean(word: str, options: list[str] | tuple[str, ...], list_all: bool = False) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or (``list_all``) the valid ones."""
    import difflib

    m = difflib.get_close_matches(word, [str(o) for o in options], n=1)
    if m:
        return f" (did you mean {m[0]!r}?)"
    return f" (valid: {', '.join(map(str, options))})" if list_all else ""


class VbenchError(Exception):
    """A problem the user can fix; ``str(err)`` is the one line shown to them."""


class ConfigError(VbenchError):
    """The configuration (file, --set overrides or preset) is invalid."""


class InvariantError(RuntimeError):
    """A model or the engine broke a protocol invariant: a bug in vbench, never the user's."""
