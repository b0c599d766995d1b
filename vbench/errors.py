"""User-facing errors.

Every problem a person can fix (a bad config, a missing file, an impossible parameter
combination) is raised as a :class:`VbenchError` whose message is one line naming the problem
and the fix. The CLI prints that line and exits with code 2; nothing else ends in a traceback.
"""


class VbenchError(Exception):
    """A problem the user can fix; ``str(err)`` is the one line shown to them."""


class ConfigError(VbenchError):
    """The configuration (file, --set overrides or preset) is invalid."""


class InvariantError(RuntimeError):
    """A model or the engine broke a protocol invariant: a bug in vbench, never the user's."""
