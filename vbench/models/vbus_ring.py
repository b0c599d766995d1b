"""vbus's shared-memory primitives, written once for every vbus model: the shm-signal, the IOQ,
the venet request path on one IOQ, and event queues.

Not a model (it exports no ``MODEL``): :mod:`vbench.models.vbus_ioq` and
:mod:`vbench.models.vbus_prio` are built from these functions, so a fix to a primitive reaches
both. Each follows a named function of AlacrityVM:

* the shm-signal (``lib/shm_signal.c``): :func:`inject` (``shm_signal_inject``),
  :func:`mailbox_disable` (the wakeup whose handler disables the mailbox and defers),
  :func:`mailbox_enable` (``shm_signal_enable`` with its replay check), and the wakeup's
  dirty/pending protocol when a signal is delivered as an event: :func:`signal_open` (the
  wakeup starts: ``dirty = 0``) and :func:`signal_close` (``pending = 0``, then look at
  ``dirty`` again);
* the IOQ (``lib/ioq.c``): :func:`tail_push` / :func:`head_pop` (``idx_tail_push`` and the index
  part of ``ioq_iter_pop``, with the explicit ``full`` flag);
* the venet TX path on one IOQ (``drivers/net/vbus-enet.c`` ``vbus_enet_tx_start`` and
  ``vbus_enet_tx_reap_one``; ``kernel/vbus/devices/venet/device.c`` ``venetdev_rx``):
  :func:`ioq_post`, :func:`ioq_read`, :func:`ioq_reap`;
* event queues, host to guest: an IOQ whose slots the guest posted to the host once, each
  pointing at an event in a payload area it registered. The host claims the slot at the inuse
  tail while it owns it and publishes it (``evq_send_event`` in venet's device.c,
  ``event_inject``/``events_flush`` in the PCI bridge's connector): :func:`evq_claim`,
  :func:`evq_publish`; the guest takes the slot at the inuse head while it owns it and hands it
  back (``deferred_evq_isr`` in vbus-enet.c, ``eventq_wakeup`` in ``drivers/vbus/pci-bridge.c``):
  :func:`evq_next`, :func:`evq_release`. :func:`bridge_signal` is the PCI bridge's delivery of a
  device signal as an event, :func:`bridge_take` the guest's taking of one (``vbus-prio``'s routed signals, ``vbus-ioq``'s event-queue hop).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vbench.counters import (
    C_BYTES_COPIED,
    C_DESC_READ,
    C_DESC_WRITTEN,
    C_INJECTS,
    C_RING_SLOTS,
    C_SEGMENTS,
    IO_LEN,
    IO_REQ,
    IO_SEGS,
    IO_SIZE,
    SIDE_DEVICE,
    SIDE_DRIVER,
)
from vbench.layout import (
    IOQ_RING_DESC,
    IOQ_RING_HEAD,
    IOQ_RING_IDX,
    IOQ_RING_MAGIC,
    IOQ_RING_VER,
    SHM_SIGNAL_DESC,
    SHM_SIGNAL_IRQ,
    SHM_SIGNAL_MAGIC,
    SHM_SIGNAL_VER,
    VBUS_EVENT,
    VENET_IOV,
    VENET_SG,
)
from vbench.memory import (
    ARENA_GPA,
    ld8,
    ld32,
    ld64,
    mb,
    req_of_addr,
    rmb,
    seg_addr,
    seg_len,
    st8,
    st32,
    st64,
    view,
    wmb,
)

# offsets inside the structures, from the one layout definition
DESC_COOKIE = IOQ_RING_DESC.offset("cookie")
DESC_PTR = IOQ_RING_DESC.offset("ptr")
DESC_LEN = IOQ_RING_DESC.offset("len")
DESC_VALID = IOQ_RING_DESC.offset("valid")
DESC_SOWN = IOQ_RING_DESC.offset("sown")
DESC_BYTES = IOQ_RING_DESC.size
IDX_HEAD = IOQ_RING_IDX.offset("head")
IDX_TAIL = IOQ_RING_IDX.offset("tail")
IDX_FULL = IOQ_RING_IDX.offset("full")
MBOX_ENABLED = SHM_SIGNAL_IRQ.offset("enabled")
MBOX_PENDING = SHM_SIGNAL_IRQ.offset("pending")
MBOX_DIRTY = SHM_SIGNAL_IRQ.offset("dirty")
_SG_COOKIE = VENET_SG.offset("cookie")
_SG_LEN = VENET_SG.offset("len")
_SG_COUNT = VENET_SG.offset("count")
_SG_IOV = VENET_SG.offset("iov")
_IOV_LEN = VENET_IOV.offset("len")
_IOV_PTR = VENET_IOV.offset("ptr")
_IOV_BYTES = VENET_IOV.size
_EVENT_FLAGS = VBUS_EVENT.offset("flags")
_EVENT_SIZE = VBUS_EVENT.offset("size")
_EVENT_COOKIE = VBUS_EVENT.offset("cookie")
EVENT_BYTES = VBUS_EVENT.size

#: What ``sg`` means, for vbus-ioq and for vbus-prio's class IOQs alike.
SG_WHAT = (
    "pool: each request a venet_sg list in the pool registered once; flat: a multi-segment "
    "request gathered into one buffer by a copy"
)


# --- the shm-signal (lib/shm_signal.c) -----------------------------------------------------------
@njit(inline="always")
def store_then_check(mem, ctr, side, full):
    """The barrier between shm-signal's store of its own flag and its load of the peer's.

    Pairs inject (``dirty = 1``, then test ``enabled``/``pending``) with enable (``enabled =
    1``, then test ``dirty``/``pending``) or the end of a wakeup (``pending = 0``, then test
    ``dirty``) on the other side. ``wmb`` is what vbus ships; it does
    not order a store before a later load on x86, so both sides can miss each other. ``mb``
    does (option ``signal_barrier``)."""
    if full != 0:
        mb(mem, ctr, side)
    else:
        wmb(mem, ctr)


@njit(inline="always")
def inject(mem, ctr, side, mbox, full):
    """shm_signal_inject towards the mailbox at ``mbox``: 1 a real notification, 0 suppressed."""
    ctr[C_INJECTS] += 1
    st8(mem, ctr, side, mbox + MBOX_DIRTY, 1)
    store_then_check(mem, ctr, side, full)
    if (
        ld8(mem, ctr, side, mbox + MBOX_ENABLED) != 0
        and ld8(mem, ctr, side, mbox + MBOX_PENDING) == 0
    ):
        st8(mem, ctr, side, mbox + MBOX_PENDING, 1)
        wmb(mem, ctr)
        return 1
    return 0


@njit(inline="always")
def mailbox_disable(mem, ctr, side, m):
    """The shm_signal wakeup whose handler disables the mailbox and defers the ring work.

    The loop clears ``dirty``, the handler sets ``enabled = 0`` (so the loop ends) and
    ``pending`` is cleared: from now on the peer's injects only set ``dirty``.
    """
    if ld8(mem, ctr, side, m + MBOX_ENABLED) == 0:
        return 0  # already disabled (a polling side): nothing to hand over
    st8(mem, ctr, side, m + MBOX_DIRTY, 0)
    st8(mem, ctr, side, m + MBOX_ENABLED, 0)
    st8(mem, ctr, side, m + MBOX_PENDING, 0)
    wmb(mem, ctr)
    return 0


@njit(inline="always")
def mailbox_enable(mem, ctr, side, m, full):
    """shm_signal_enable: 1 nothing happened meanwhile; 0 a replay is due (dirty or pending)."""
    st8(mem, ctr, side, m + MBOX_ENABLED, 1)
    store_then_check(mem, ctr, side, full)
    if ld8(mem, ctr, side, m + MBOX_DIRTY) != 0 or ld8(mem, ctr, side, m + MBOX_PENDING) != 0:
        return 0  # a deferred wakeup, which may find nothing new (a spurious wakeup)
    return 1


@njit(inline="always")
def signal_open(mem, ctr, north):
    """The guest starts the wakeup of a signal delivered as an event: ``dirty = 0`` (its
    ``pending`` stays set, so further injects of that signal are merged into this wakeup)."""
    st8(mem, ctr, SIDE_DRIVER, north + MBOX_DIRTY, 0)
    wmb(mem, ctr)


@njit(inline="always")
def signal_close(mem, ctr, north, full):
    """The wakeup of a drained queue's signal ends: ``pending = 0``, then look at ``dirty``.
    1 closed; 0 the device signalled again meanwhile (``dirty`` cleared: look at the queue
    again)."""
    st8(mem, ctr, SIDE_DRIVER, north + MBOX_PENDING, 0)
    store_then_check(mem, ctr, SIDE_DRIVER, full)
    if ld8(mem, ctr, SIDE_DRIVER, north + MBOX_DIRTY) != 0:
        st8(mem, ctr, SIDE_DRIVER, north + MBOX_DIRTY, 0)
        wmb(mem, ctr)
        return 0
    return 1


# --- the IOQ indexes (lib/ioq.c) -----------------------------------------------------------------
@njit(inline="always")
def tail_push(mem, ctr, side, idx, count):
    """idx_tail_push: advance the tail, setting ``full`` first when it meets the head."""
    t = ld32(mem, ctr, side, idx + IDX_TAIL) + 1
    if t == count:
        t = 0
    if ld32(mem, ctr, side, idx + IDX_HEAD) == t:
        rmb(mem, ctr)
        st8(mem, ctr, side, idx + IDX_FULL, 1)
        wmb(mem, ctr)
    st32(mem, ctr, side, idx + IDX_TAIL, t)


@njit(inline="always")
def head_pop(mem, ctr, side, idx, head, count):
    """The index part of ioq_iter_pop: advance the head, then clear ``full``."""
    h = head + 1
    if h == count:
        h = 0
    st32(mem, ctr, side, idx + IDX_HEAD, h)
    wmb(mem, ctr)
    if ld8(mem, ctr, side, idx + IDX_FULL) != 0:
        st8(mem, ctr, side, idx + IDX_FULL, 0)
        wmb(mem, ctr)


# --- the venet request path on one IOQ ------------------------------------------------------
@njit(inline="always")
def ioq_post(mem, ctr, io, ring, vidx, inuse, count, pool, entry, sg_pool):
    """Driver: fill the slot at the valid tail (through the venet_sg pool or flat) and push on
    both indexes, which hands the slot to the device. 1 posted, 0 no room (nothing changed).
    The caller injects the device's signal (auto-update)."""
    pos = ld32(mem, ctr, SIDE_DRIVER, vidx + IDX_TAIL)
    if ld8(mem, ctr, SIDE_DRIVER, vidx + IDX_FULL) != 0:
        return 0  # ioq_full(valid): tail == head with full set
    d = ring + DESC_BYTES * pos
    if ld8(mem, ctr, SIDE_DRIVER, d + DESC_SOWN) != 0:
        return 0  # the slot still belongs to the device
    req = io[IO_REQ]
    size = io[IO_SIZE]
    segs = io[IO_SEGS]
    if sg_pool != 0:
        e = pool + entry * pos
        st64(mem, ctr, SIDE_DRIVER, e + _SG_COOKIE, req)
        st32(mem, ctr, SIDE_DRIVER, e + _SG_LEN, size)
        st32(mem, ctr, SIDE_DRIVER, e + _SG_COUNT, segs)
        for j in range(segs):
            v = e + _SG_IOV + _IOV_BYTES * j
            st32(mem, ctr, SIDE_DRIVER, v + _IOV_LEN, seg_len(size, segs, j))
            st64(mem, ctr, SIDE_DRIVER, v + _IOV_PTR, seg_addr(req, size, segs, j))
        ctr[C_DESC_WRITTEN] += segs
        ptr = e - pool  # pre-mapped: an offset into the registered pool
        ln = entry
    else:
        if segs > 1:
            ctr[C_BYTES_COPIED] += size  # gather into one contiguous buffer
        ptr = seg_addr(req, size, 1, 0)
        ln = size
    st64(mem, ctr, SIDE_DRIVER, d + DESC_COOKIE, req)
    st64(mem, ctr, SIDE_DRIVER, d + DESC_PTR, ptr)
    st64(mem, ctr, SIDE_DRIVER, d + DESC_LEN, ln)
    st8(mem, ctr, SIDE_DRIVER, d + DESC_VALID, 1)
    ctr[C_DESC_WRITTEN] += 1
    ctr[C_RING_SLOTS] += 1  # one IOQ entry whatever the segments: its list is in the pool
    # ioq_iter_push on a "both" iterator: both tails, then the owner flip
    tail_push(mem, ctr, SIDE_DRIVER, vidx, count)
    tail_push(mem, ctr, SIDE_DRIVER, inuse, count)
    wmb(mem, ctr)
    st8(mem, ctr, SIDE_DRIVER, d + DESC_SOWN, 1)
    wmb(mem, ctr)
    return 1


@njit(inline="always")
def ioq_read(mem, ctr, io, d, pool, entry, count, sg_pool):
    """Device: read the descriptor at ``d`` (and its venet_sg list); the request id, or -2."""
    rmb(mem, ctr)
    ptr = ld64(mem, ctr, SIDE_DEVICE, d + DESC_PTR)
    ln = ld64(mem, ctr, SIDE_DEVICE, d + DESC_LEN)
    ctr[C_DESC_READ] += 1
    if sg_pool != 0:
        e = pool + ptr
        if ptr < 0 or ptr + entry > entry * count:
            return -2
        segs = ld32(mem, ctr, SIDE_DEVICE, e + _SG_COUNT)
        total = ld32(mem, ctr, SIDE_DEVICE, e + _SG_LEN)
        first = 0
        for j in range(segs):
            v = e + _SG_IOV + _IOV_BYTES * j
            ld32(mem, ctr, SIDE_DEVICE, v + _IOV_LEN)
            a = ld64(mem, ctr, SIDE_DEVICE, v + _IOV_PTR)
            if j == 0:
                first = a
        ctr[C_DESC_READ] += segs
    else:
        segs = 1
        total = ln
        first = ptr
    ctr[C_SEGMENTS] += segs
    io[IO_SIZE] = total
    io[IO_SEGS] = segs
    io[IO_LEN] = 0  # an IOQ queue has one direction; its descriptor carries no used length
    return req_of_addr(first)


@njit(inline="always")
def ioq_reap(mem, ctr, ring, vidx, count):
    """Driver: complete the request at the valid head (valid and given back), or -1."""
    h = ld32(mem, ctr, SIDE_DRIVER, vidx + IDX_HEAD)
    d = ring + DESC_BYTES * h
    if (
        ld8(mem, ctr, SIDE_DRIVER, d + DESC_VALID) == 0
        or ld8(mem, ctr, SIDE_DRIVER, d + DESC_SOWN) != 0
    ):
        return -1
    req = ld64(mem, ctr, SIDE_DRIVER, d + DESC_COOKIE)
    ctr[C_DESC_READ] += 1
    st8(mem, ctr, SIDE_DRIVER, d + DESC_VALID, 0)
    head_pop(mem, ctr, SIDE_DRIVER, vidx, h, count)  # NOFLIPOWNER, no update
    return req


@njit(inline="always")
def ioq_complete(mem, ctr, ring, inuse, head, count):
    """Device: ``ioq_iter_pop`` on the inuse index: pop the head and flip the slot back to the
    driver (venetdev_rx's pop after each packet)."""
    head_pop(mem, ctr, SIDE_DEVICE, inuse, head, count)
    st8(mem, ctr, SIDE_DEVICE, ring + DESC_BYTES * head + DESC_SOWN, 0)  # back to the driver
    wmb(mem, ctr)


# --- event queues, host to guest -----------------------------------------------------------------
@njit(inline="always")
def evq_claim(mem, ctr, ring, inuse, base):
    """Host: the slot at the inuse tail and the arena offset of its event (the slot's ``ptr``
    plus ``base``), or (-1, 0) when the guest still holds that slot (no room)."""
    t = ld32(mem, ctr, SIDE_DEVICE, inuse + IDX_TAIL)
    d = ring + DESC_BYTES * t
    if ld8(mem, ctr, SIDE_DEVICE, d + DESC_SOWN) == 0:
        return -1, 0
    rmb(mem, ctr)
    return d, ld64(mem, ctr, SIDE_DEVICE, d + DESC_PTR) + base


@njit(inline="always")
def evq_publish(mem, ctr, inuse, count, d):
    """Host: the event written, push the inuse tail and hand the slot to the guest
    (``ioq_iter_push`` on the inuse index: its owner flip)."""
    ctr[C_DESC_WRITTEN] += 1
    tail_push(mem, ctr, SIDE_DEVICE, inuse, count)
    wmb(mem, ctr)
    st8(mem, ctr, SIDE_DEVICE, d + DESC_SOWN, 0)  # the event is the guest's now
    wmb(mem, ctr)


@njit(inline="always")
def evq_next(mem, ctr, ring, inuse):
    """Guest: (head, slot, its event's address from the slot's cookie) for the event at the
    inuse head, or slot -1 when that slot is still the host's (no event queued)."""
    h = ld32(mem, ctr, SIDE_DRIVER, inuse + IDX_HEAD)
    d = ring + DESC_BYTES * h
    if ld8(mem, ctr, SIDE_DRIVER, d + DESC_SOWN) != 0:
        return h, -1, 0
    rmb(mem, ctr)
    return h, d, ld64(mem, ctr, SIDE_DRIVER, d + DESC_COOKIE)  # the guest's own pointer


@njit(inline="always")
def evq_release(mem, ctr, inuse, count, h, d):
    """Guest: pop the inuse head, handing the slot (and its event) back to the host."""
    head_pop(mem, ctr, SIDE_DRIVER, inuse, h, count)
    st8(mem, ctr, SIDE_DRIVER, d + DESC_SOWN, 1)
    wmb(mem, ctr)


@njit(inline="always")
def bridge_signal(mem, ctr, north, evq_ring, evq_inuse, evq_count, evq_north, cookie, full):
    """The PCI bridge delivers a device signal as an event: inject the signal's mailbox
    ``north``; if that fires, write its event (``cookie`` names the signal) into the event
    queue and inject the queue's own signal. 1 when that raised an MSI, else 0 (merged into an
    event still queued or being handled, or the queue's signal suppressed it)."""
    if inject(mem, ctr, SIDE_DEVICE, north, full) == 0:
        return 0  # the signal's one event is still queued or being handled: merged
    d, ev = evq_claim(mem, ctr, evq_ring, evq_inuse, -ARENA_GPA)  # posted as guest-physical
    if d < 0:
        return 0  # no room: cannot happen with one slot per signal (the models' check())
    st32(mem, ctr, SIDE_DEVICE, ev + _EVENT_FLAGS, 0)
    st32(mem, ctr, SIDE_DEVICE, ev + _EVENT_SIZE, EVENT_BYTES)
    st64(mem, ctr, SIDE_DEVICE, ev + _EVENT_COOKIE, cookie)
    evq_publish(mem, ctr, evq_inuse, evq_count, d)
    return inject(mem, ctr, SIDE_DEVICE, evq_north, full)


@njit(inline="always")
def bridge_take(mem, ctr, ring, inuse, count):
    """Guest (``eventq_wakeup``): take the bridge event at the queue's inuse head, reading its
    header, and hand the slot back to the host. (True, the signal it names) or (False, 0)
    when the head slot is still the host's. After taking any, the guest signals the host
    (:func:`inject` on the queue's south mailbox: a ``dirty`` write, that mailbox being off)."""
    h, d, ev = evq_next(mem, ctr, ring, inuse)
    if d < 0:
        return False, 0
    ld32(mem, ctr, SIDE_DRIVER, ev + _EVENT_FLAGS)
    ld32(mem, ctr, SIDE_DRIVER, ev + _EVENT_SIZE)
    cookie = ld64(mem, ctr, SIDE_DRIVER, ev + _EVENT_COOKIE)
    ctr[C_DESC_READ] += 1
    evq_release(mem, ctr, inuse, count, h, d)
    return True, cookie


# --- Python side: what registration writes (before the run: not counted) -------------------------
def mailbox_offset(region: int, side: int) -> int:
    """The arena offset of an IOQ region's shm-signal mailbox of ``side`` (north or south)."""
    return (
        region
        + IOQ_RING_HEAD.offset("signal")
        + SHM_SIGNAL_DESC.offset("irq")
        + SHM_SIGNAL_IRQ.size * side
    )


def register_ioq(mem: np.ndarray, region: int, count: int) -> None:
    """What the guest writes when it registers an IOQ region."""
    w = view(mem, np.uint32)
    w[(region + IOQ_RING_HEAD.offset("magic")) >> 2] = IOQ_RING_MAGIC
    w[(region + IOQ_RING_HEAD.offset("ver")) >> 2] = IOQ_RING_VER
    sig = region + IOQ_RING_HEAD.offset("signal")
    w[(sig + SHM_SIGNAL_DESC.offset("magic")) >> 2] = SHM_SIGNAL_MAGIC
    w[(sig + SHM_SIGNAL_DESC.offset("ver")) >> 2] = SHM_SIGNAL_VER
    w[(region + IOQ_RING_HEAD.offset("count")) >> 2] = count


def post_events(
    mem: np.ndarray, ring: int, valid_idx: int, count: int, events: int, event_bytes: int, gpa: bool
) -> None:
    """Registration of an event queue: every slot posted to the host (valid, host-owned, the
    valid index full for good), slot i pointing at event i of the payload area at ``events``:
    its cookie the guest's own pointer, its ptr a guest-physical address (``gpa``: the PCI
    bridge's event queue) or the offset into the registered pool (venet's: ``ptr`` is an
    offset, as ``evq_send_event`` reads it)."""
    d64 = view(mem, np.uint64)
    for i in range(count):
        d = ring + DESC_BYTES * i
        ev = events + event_bytes * i
        d64[(d + DESC_COOKIE) >> 3] = ev
        d64[(d + DESC_PTR) >> 3] = ARENA_GPA + ev if gpa else event_bytes * i
        d64[(d + DESC_LEN) >> 3] = event_bytes
        mem[d + DESC_VALID] = 1
        mem[d + DESC_SOWN] = 1
    mem[valid_idx + IDX_FULL] = 1


def index_state(mem: np.ndarray, idx: int) -> tuple[int, int, int]:
    """An IOQ index's (head, tail, full), for audits."""
    w = view(mem, np.uint32)
    return int(w[(idx + IDX_HEAD) >> 2]), int(w[(idx + IDX_TAIL) >> 2]), int(mem[idx + IDX_FULL])
