"""What every reference shares: the u16 event window rule, how a request's bytes are cut into
segments, and what the device learns from a pop."""

from __future__ import annotations

from dataclasses import dataclass

U16 = 0xFFFF


def need_event(event: int, new: int, old: int) -> bool:
    """Notify iff ``event`` is one of the u16 entries ``old .. new-1`` (written as a window)."""
    span = (new - old) & U16
    return any(((old + i) & U16) == event for i in range(span))


def segment_lengths(size: int, segs: int) -> list[int]:
    """``size`` bytes in ``segs`` near-equal pieces, the longer pieces first."""
    q, r = divmod(size, segs)
    return [q + 1 if j < r else q for j in range(segs)]


@dataclass(frozen=True)
class Popped:
    """What the device learns from one pop: the request and the io slots the model fills."""

    req: int
    size: int
    segs: int
    handle: int
    length: int
