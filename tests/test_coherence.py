"""The line tracker's coherence rules (vbench/memory.py), access by access.

Two caches, one line, MESI: what each read and write by the driver (side 0) or the device
(side 1) costs is worked out by hand below, from the protocol's transitions (a read of a line
the other cache has Modified is a miss and leaves it Shared in both; a write to a line held
Shared by both is an upgrade that invalidates the other copy; a write to a line the other cache
has Modified is a read for ownership, a miss). The tracker must count exactly those.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from vbench.counters import (
    C_INVALIDATED_DEV,
    C_INVALIDATED_DRV,
    C_LINES_DEV,
    C_LINES_DRV,
    C_LINES_TOUCHED,
)
from vbench.memory import ld32, new_mem, new_tracker, st32

DRIVER, DEVICE = 0, 1


@njit
def _access(mem, ctr, side, off, write):
    if write:
        st32(mem, ctr, side, off, 1)
    else:
        ld32(mem, ctr, side, off)


def _counts(ctr: np.ndarray) -> tuple[int, int, int, int, int]:
    """(driver misses, device misses, driver invalidations, device invalidations, touched)."""
    return (
        int(ctr[C_LINES_DRV]),
        int(ctr[C_LINES_DEV]),
        int(ctr[C_INVALIDATED_DRV]),
        int(ctr[C_INVALIDATED_DEV]),
        int(ctr[C_LINES_TOUCHED]),
    )


# (who, "r"/"w", counts after the access): one line, accessed in turn, each step's cost by hand
PRODUCER_CONSUMER = [
    (DRIVER, "w", (0, 0, 0, 0, 1)),  # first touch: the driver has it Modified
    (DEVICE, "r", (0, 1, 0, 0, 1)),  # miss: M(driver) -> S, S
    (DEVICE, "r", (0, 1, 0, 0, 1)),  # hit: the device holds it
    (DRIVER, "w", (0, 1, 1, 0, 1)),  # upgrade: S, S -> M(driver), the device's copy invalidated
    (DRIVER, "w", (0, 1, 1, 0, 1)),  # hit: Modified
    (DEVICE, "r", (0, 2, 1, 0, 1)),  # miss again
    (DEVICE, "w", (0, 2, 1, 1, 1)),  # upgrade by the device (both wrote this line: a flag flip)
    (DRIVER, "r", (1, 2, 1, 1, 1)),  # miss: M(device) -> S, S
    (DRIVER, "r", (1, 2, 1, 1, 1)),  # hit
    (DEVICE, "w", (1, 2, 1, 2, 1)),  # upgrade
    (DRIVER, "w", (2, 2, 1, 2, 1)),  # read for ownership: the device had it Modified, a miss
    (DEVICE, "w", (2, 3, 1, 2, 1)),  # and back: a miss for the device
]


def test_each_access_costs_what_mesi_says() -> None:
    mem = new_mem(128)
    ctr = new_tracker(mem)
    for k, (side, kind, want) in enumerate(PRODUCER_CONSUMER):
        _access(mem, ctr, side, 8, kind == "w")
        assert _counts(ctr) == want, f"step {k}: {'driver' if side == 0 else 'device'} {kind}"


def test_a_write_to_a_line_the_peer_only_read_costs_an_invalidation() -> None:
    """The case the last-writer tracker missed: the driver publishes entries one by one into a
    line the device reads after each (the avail ring): every write after the first is an
    upgrade, every read a miss. Before the MESI rules the writes were free."""
    mem = new_mem(128)
    ctr = new_tracker(mem)
    for entry in range(8):
        _access(mem, ctr, DRIVER, 4 * entry, True)
        _access(mem, ctr, DEVICE, 4 * entry, False)
    assert _counts(ctr) == (0, 8, 7, 0, 1)


@pytest.mark.parametrize("side", [DRIVER, DEVICE])
def test_a_line_private_to_one_side_costs_nothing(side: int) -> None:
    mem = new_mem(128)
    ctr = new_tracker(mem)
    for _ in range(5):
        _access(mem, ctr, side, 64, True)
        _access(mem, ctr, side, 64, False)
    assert _counts(ctr) == (0, 0, 0, 0, 1)


def test_lines_are_tracked_apart() -> None:
    """Two fields on two lines: the device's write to one does not disturb the other."""
    mem = new_mem(128)
    ctr = new_tracker(mem)
    _access(mem, ctr, DRIVER, 0, True)
    _access(mem, ctr, DRIVER, 64, True)
    _access(mem, ctr, DEVICE, 0, False)
    _access(mem, ctr, DEVICE, 0, True)  # upgrade of line 0 only
    _access(mem, ctr, DRIVER, 64, True)  # line 1 is still the driver's alone: free
    assert _counts(ctr) == (0, 1, 0, 1, 2)
