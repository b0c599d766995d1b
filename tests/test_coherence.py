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
from reference.lockstep import (
    ADD,
    IRQ,
    IRQ_OFF,
    IRQ_ON,
    KICK,
    KICK_OFF,
    KICK_ON,
    POP,
    PUSH,
    REAP,
    call,
)

from vbench.counters import (
    AREA_BASE,
    AREAS,
    C_INVALIDATED_DEV,
    C_INVALIDATED_DRV,
    C_LINES_DEV,
    C_LINES_DRV,
    C_LINES_TOUCHED,
    IO_LAST,
    IO_REQ,
    IO_SEGS,
    IO_SIZE,
    LINE_BASE,
    N_IO,
)
from vbench.memory import ld32, new_mem, new_tracker, st32
from vbench.models import get_model
from vbench.models.interface import Needs

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


# --- a ring worked by hand: the split ring's ping-pong -------------------------------------------
def _ring_round(inst, ctr, io, request: int) -> None:
    """One request's round trip as the engine drives a lone ring (any model of the interface): add and the kick
    decision; the device's pop, push and interrupt decision; the driver's interrupt handler
    (disable, reap until empty, re-enable)."""
    cfg, mem, drv, dev = inst.cfg, inst.mem, inst.drv, inst.dev
    io[:] = 0
    io[IO_REQ], io[IO_SIZE], io[IO_SEGS] = request, 64, 1
    assert call(ADD, cfg, mem, drv, ctr, io) == 1
    io[IO_LAST] = 1
    call(KICK, cfg, mem, drv, ctr, io)
    assert call(POP, cfg, mem, dev, ctr, io) == request
    call(PUSH, cfg, mem, dev, ctr, io)
    io[IO_LAST] = 0
    call(IRQ, cfg, mem, dev, ctr, io)
    call(IRQ_OFF, cfg, mem, drv, ctr, io)
    assert call(REAP, cfg, mem, drv, ctr, io) == request
    assert call(REAP, cfg, mem, drv, ctr, io) == -1
    call(IRQ_ON, cfg, mem, drv, ctr, io)


def _eight_rounds_after_sixteen(model, opts, one_round) -> tuple[tuple, dict]:
    """Counts of rounds 16-23 of ``one_round`` on a fresh instance (the first 16 bring every
    line to its steady state): ``_counts`` of them, and per area with any count its (driver
    misses, device misses, driver invalidations, device invalidations)."""
    inst = model.build(opts, Needs(1, 1500, 1))
    ctr = new_tracker(inst.mem, inst.layout.line_areas())
    io = np.zeros(N_IO, dtype=np.int64)
    for r in range(16):
        one_round(inst, ctr, io, r)
    before = ctr.copy()
    for r in range(16, 24):
        one_round(inst, ctr, io, r)
    delta = ctr - before
    areas = delta[AREA_BASE:LINE_BASE].reshape(len(AREAS), 4)
    by_area = {
        AREAS[a]: tuple(int(x) for x in areas[a]) for a in range(len(AREAS)) if areas[a].any()
    }
    return _counts(delta), by_area


def test_split_ring_ping_pong_costs_what_the_layout_says() -> None:
    """Queue 8, EVENT_IDX, one one-segment request at a time, avail.idx published on add.

    The lines (``vbench layout virtio-split --queue-size 8``): the descriptor the free list
    hands out every time (desc 0, line 0); the avail line (flags, idx, ring, used_event: line
    2); used line 64 (flags, idx, ring[0..6], ring[7].id) and line 65 (ring[7].len,
    avail_event). Per round, from the accesses each operation makes (virtio_split.py):

    - desc line: the driver rewrites desc 0, which the device read last round: an invalidation;
      the device's pop reads it: a miss;
    - avail line: the driver held it alone since its last used_event write, so the add's writes
      are free; the device's pop reads idx and ring: a miss; the interrupt decision's read of
      used_event hits; the handler's used_event = 0 (disable) is an invalidation, the re-enable's
      write then free;
    - used line 64: the device's push writes ring[u] into a line the driver read last round (an
      invalidation), its idx write then free; the driver's reap reads it: a miss;
    - used line 65: only when u = 7 (one round in 8): the device's ring[7].len write is an
      invalidation (the driver read avail_event there), the reap's read of it a miss.

    So 8 rounds cost: desc 8 device misses + 8 driver invalidations, avail the same, used 9
    driver misses + 9 device invalidations."""
    model = get_model("virtio-split")
    opts = model.options(
        queue_size=8,
        event_idx=True,
        indirect=False,
        publish="add",
        avail_event="vhost",
        used_batch=1,  # a used.idx write per completion: the rounds below are worked so
    )
    counts, by_area = _eight_rounds_after_sixteen(model, opts, _ring_round)
    assert counts == (9, 16, 16, 9, 0)
    # (driver misses, device misses, driver invalidations, device invalidations)
    assert by_area == {"desc": (0, 8, 8, 0), "avail": (0, 8, 8, 0), "used": (9, 0, 0, 9)}


def test_packed_ring_ping_pong_costs_what_the_layout_says() -> None:
    """Queue 8, EVENT_IDX (DESC mode), one one-segment request at a time, a used descriptor
    written per completion; the same round as the split ring's (``_ring_round``, through the
    model interface).

    The lines (``vbench layout virtio-packed --queue-size 8``): descriptors 0-3 on line 0 and
    4-7 on line 1, the driver's event structure alone on line 2, the device's on line 3. A
    round at slot p, from the accesses each operation makes (virtio_packed.py):

    - p's descriptor line: the add writes slot p in a line both sides hold (the device wrote
      and the driver read the line's previous used descriptor, or, for the first slot of a
      line, its last one a lap ago): a driver invalidation, its later writes free; the pop's
      read of the flags: a device miss; the used descriptor written into the same slot: a
      device invalidation; the reap's read: a driver miss; the second reap's and the re-enable's
      reads of slot p+1 hit (the line of p+1 is shared too, as above);
    - the driver's event line: the device's interrupt decision reads off_wrap and flags the
      driver rewrote in its last re-enable: a device miss; the handler's disable writes the
      flags into a line the device now holds: a driver invalidation, the re-enable's writes
      then free;
    - the device's event line: only read (the kick decision) in these rounds: no cost.

    So 8 rounds cost: desc 8 misses and 8 invalidations on each side; driver_event 8 device
    misses and 8 driver invalidations (one line fewer per lap than the split ring's 9, whose
    used ring spills onto a second line)."""
    model = get_model("virtio-packed")
    opts = model.options(queue_size=8, event_idx=True, indirect=False, used_batch=1)
    counts, by_area = _eight_rounds_after_sixteen(model, opts, _ring_round)
    assert counts == (8, 16, 16, 8, 0)
    # (driver misses, device misses, driver invalidations, device invalidations)
    assert by_area == {"desc": (8, 8, 8, 8), "driver_event": (0, 8, 8, 0)}


def _ioq_round(inst, ctr, io, request: int) -> None:
    """A round trip with both sides' shm-signal wakeups, as the engine drives a sleeping
    device and an interrupt-driven driver: the post and its inject; the device's wakeup
    (disable), pop, completion, signal, empty look and re-enable; the driver's interrupt
    (disable, reap until empty, re-enable)."""
    cfg, mem, drv, dev = inst.cfg, inst.mem, inst.drv, inst.dev
    io[:] = 0
    io[IO_REQ], io[IO_SIZE], io[IO_SEGS] = request, 64, 1
    assert call(ADD, cfg, mem, drv, ctr, io) == 1
    io[IO_LAST] = 1
    assert call(KICK, cfg, mem, drv, ctr, io) == 1  # the device's mailbox was enabled
    call(KICK_OFF, cfg, mem, dev, ctr, io)
    assert call(POP, cfg, mem, dev, ctr, io) == request
    call(PUSH, cfg, mem, dev, ctr, io)
    io[IO_LAST] = 0
    assert call(IRQ, cfg, mem, dev, ctr, io) == 1  # txmitigation 1: every completion signals
    assert call(POP, cfg, mem, dev, ctr, io) == -1
    assert call(KICK_ON, cfg, mem, dev, ctr, io) == 1
    call(IRQ_OFF, cfg, mem, drv, ctr, io)
    assert call(REAP, cfg, mem, drv, ctr, io) == request
    assert call(REAP, cfg, mem, drv, ctr, io) == -1
    assert call(IRQ_ON, cfg, mem, drv, ctr, io) == 1


def test_vbus_ioq_ping_pong_costs_what_the_layout_says() -> None:
    """Queue 4, one venet_sg pool entry per request, a signal per completion (txmitigation 1).

    The lines (``vbench layout vbus-ioq --queue-size 4``): line 0 holds both shm-signal
    mailboxes (north at 16, south at 19), both indexes (valid at 24, inuse at 36) and desc 0's
    cookie; descriptors are 32 bytes from offset 56, so desc 0's ptr/len/valid/sown and desc 1
    sit on line 1, desc 2 straddles lines 1-2 (its cookie on 1), desc 3 on line 2; the pool's
    48-byte entries from 192 straddle lines 3-5 (entry 1 on 3-4, entry 2 on 4-5). Per round,
    from the accesses each operation makes (vbus_ioq.py):

    - header line: the driver's post and south inject leave it the driver's alone; the
      device's wakeup reads its mailbox (a miss) and writes it (an invalidation), after which
      every device access there (inuse head, north inject, re-enable) is free; the driver's
      interrupt-off reads the north mailbox (a miss) and writes it (an invalidation), then its
      reap and re-enable are free: 1 miss and 1 invalidation per side;
    - descriptor lines, the ownership handshake of slot p: the device's read of sown (a miss),
      its write of sown = 0 (an invalidation), the driver's read of valid (a miss) and its
      write of valid = 0 (an invalidation); plus, twice a lap, a line change: the device's
      empty look reads sown of the next slot, on the next line, which the driver wrote last
      (slots 1 and 3: a device miss), and the driver's fill of that slot then invalidates the
      device's copy (slots 2 and 0: a driver invalidation);
    - pool lines: the driver rewrites each line of entry p (the device read it a lap ago: an
      invalidation) and the device reads it back (a miss): 6 entry-lines a lap.

    So 8 rounds (two laps) cost: ioq_header 8 of each; ioq_desc 8 driver misses, 12 device
    misses, 12 driver invalidations, 8 device invalidations; sg_pool 12 device misses and 12
    driver invalidations. (Counted first, before the tracker ran, by a throwaway script applying
    the MESI rules written out afresh to this access list: the same numbers.)"""
    model = get_model("vbus-ioq")
    # the IOQ's own handshake: the signal straight to the ring's mailbox (the bridge's event
    # queue, the default, adds its areas: see the test after this one)
    opts = model.options(queue_size=4, sg="pool", txmitigation=1, signal_path="direct")
    counts, by_area = _eight_rounds_after_sixteen(model, opts, _ioq_round)
    assert counts == (16, 32, 32, 16, 0)
    # (driver misses, device misses, driver invalidations, device invalidations)
    assert by_area == {
        "ioq_header": (8, 8, 8, 8),
        "ioq_desc": (8, 12, 12, 8),
        "sg_pool": (0, 12, 12, 0),
    }


def test_vbus_ioq_event_queue_hop_costs_what_the_layout_says() -> None:
    """The same rounds with the signal delivered through the PCI bridge's event queue (the
    default), the queue of 2 slots so that its lines cycle within the count.

    The queue's lines (``vbench layout vbus-ioq --queue-size 4``, its areas ``evq0.*``): its
    header line (both indexes, both mailboxes, slot 0's cookie), one line with both slots'
    ptr/len/valid/sown, and the two 144-byte events, each header on a line of its own. Per
    round, from the accesses (vbus_ring.bridge_signal, vbus_ioq._take_events):

    - evq header: the host reads the inuse tail (the guest wrote the head last: a miss) and
      writes the tail (an invalidation); the guest's interrupt-off reads and writes the queue's
      mailbox (a miss, an invalidation): 1 of each per side;
    - evq descriptors: the slot's ownership flip both ways, as for the ring's slots: the host
      reads sown (a miss) and writes it (an invalidation), then the guest does the same;
    - events: the host rewrites the event's header (the guest read it two rounds ago: an
      invalidation) and the guest reads it (a miss);
    - the ring's header line loses the driver's invalidation: the guest no longer masks the
      ring's mailbox (a read, then a write) but starts the signal's wakeup with a write alone
      (``dirty = 0``), which takes the line from the device in one transfer (a miss).

    The ring's descriptors and the pool are as in the direct case."""
    model = get_model("vbus-ioq")
    opts = model.options(queue_size=4, sg="pool", txmitigation=1, eventq_size=2)
    counts, by_area = _eight_rounds_after_sixteen(model, opts, _ioq_round)
    assert by_area == {
        "ioq_header": (8, 8, 0, 8),
        "ioq_desc": (8, 12, 12, 8),
        "sg_pool": (0, 12, 12, 0),
        "evq_header": (8, 8, 8, 8),
        "evq_desc": (8, 8, 8, 8),
        "events": (8, 0, 0, 8),
    }
    assert counts == (40, 48, 40, 40, 0)


@pytest.mark.parametrize(
    "name,opts",
    [
        ("virtio-split", {"indirect": True}),
        ("virtio-split", {"lookahead": 4}),
        ("virtio-packed", {"indirect": True}),
        ("virtio-mq", {}),
        ("vbus-ioq", {"sg": "pool"}),
        ("vbus-ioq", {"tx_completion": "event"}),
        ("vbus-ioq", {"transport": "call"}),
        ("vbus-prio", {"eventq": "designed"}),
    ],
)
def test_every_area_of_every_layout_reports_somewhere(name: str, opts: dict) -> None:
    """Each layout area's lines count in the area of its name (queue prefix dropped), an IOQ's
    header lines apart from its descriptors."""
    model = get_model(name)
    layout = model.layout(model.options(queue_size=8, **opts), Needs(4, 1500, 2))
    line_areas = layout.line_areas()
    for area in layout.areas:
        kind = area.name.split(".")[-1]
        first = area.offset // 64
        got = AREAS[line_areas[first]]
        if kind == "ioq":
            prefix = "evq" if area.name.startswith(("evq", "txc")) else "ioq"
            assert got == f"{prefix}_header"
            assert AREAS[line_areas[-(-area.at("ring") // 64)]] == f"{prefix}_desc"
        else:
            assert got == kind


@pytest.mark.parametrize("name", ["virtio-split", "virtio-packed", "vbus-ioq", "vbus-prio"])
def test_area_columns_add_up_per_side(name: str) -> None:
    """Each area's per-side columns add up to its combined column, and summed over the areas
    each side's columns give that side's own counter (so no side or area is swapped)."""
    from conftest import simulate

    from vbench.simulation import summarize
    from vbench.workload import WorkloadSpec, generate

    workload = {"requests": 3000, "arrival": {"kind": "closed", "in_flight": 32}}
    run = simulate(name, {}, workload, {"batch": 8})
    row = summarize(run, generate(WorkloadSpec.model_validate(workload), 1))
    n = row["requests"]
    for area in AREAS:
        for kind in ("lines", "invalidations"):
            sides = row[f"{kind}_driver_per_req_{area}"] + row[f"{kind}_device_per_req_{area}"]
            assert sides == pytest.approx(row[f"{kind}_per_req_{area}"])
    for side in ("driver", "device"):
        misses = sum(row[f"lines_{side}_per_req_{a}"] for a in AREAS) * n
        invalidations = sum(row[f"invalidations_{side}_per_req_{a}"] for a in AREAS) * n
        assert round(misses) == row[f"lines_{side}"] > 0
        assert round(invalidations) == row[f"lines_invalidated_{side}"]
