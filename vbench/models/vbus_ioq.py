"""vbus: one IOQ ring with its shm-signal, driven as venet drives its TX queue.

Follows AlacrityVM ``lib/ioq.c`` (push/pop on a ring index with the explicit ``full`` flag and
the ``sown`` ownership flip), ``lib/shm_signal.c`` (inject / enable / disable / wakeup with
dirty, pending and enabled mailboxes) and the venet request path:

1. the driver fills the slot at the tail (cookie, ptr, len, valid = 1) and pushes on *both*
   indexes, which flips ``sown`` to the device and, with auto-update, injects the device's
   signal (one exit unless the device's mailbox is disabled or a notification is pending);
2. the device pops at the ``inuse`` head while ``sown`` is 1, flipping each slot back to the
   driver, and injects the driver's signal every ``txmitigation`` completions and when it runs
   empty;
3. the driver reaps at the ``valid`` head without flipping: while ``valid`` and not ``sown``,
   complete, clear ``valid``, pop the valid index.

Scatter/gather (``sg = "pool"``): every request is described by a ``venet_sg`` entry in the
pool the driver registered once (venet's pre-mapped descriptors); the ring descriptor's ptr is
the entry's offset in that pool. ``sg = "flat"`` gathers a multi-segment request into one
contiguous buffer by a copy (charged per byte by the preset) and points the descriptor at it.

``transport = "call"`` sends every request as a synchronous ``call()`` instead: the driver fills
its per-CPU fastcall and devicecall descriptors and rings the doorbell (one exit); the host
copies the parameters in, runs the device's handler, copies the result out and writes the
status, all inside that exit: no ring, no signal, no interrupt.

``eoi = "windows"``: the Windows guest drivers' policy on the driver's mailbox: ``pending`` is
cleared only when the deferred handler finishes (an end-of-interrupt), and the mailbox is not
disabled meanwhile.

The shm-signal wakeup with the Linux policy (pending cleared once all dirty state is drained)
maps onto the interface the same way on both sides: ``disable_*`` is the wakeup whose handler
disables the mailbox and works the ring in a deferred context (as venet's NAPI poll and the
device's TX thread do); ``enable_*`` is ``shm_signal_enable`` with its replay check (dirty or
pending: look again, which may find nothing: a spurious wakeup).
"""

from __future__ import annotations

import sys
from typing import Literal

import numpy as np
from numba import njit
from pydantic import Field

from vbench.counters import (
    C_BYTES_COPIED,
    C_DESC_READ,
    C_DESC_WRITTEN,
    C_INJECTS,
    C_SEGMENTS,
    IO_HANDLE,
    IO_LAST,
    IO_LEN,
    IO_REQ,
    IO_SEGS,
    IO_SIZE,
    IO_SYNC,
    SIDE_DEVICE,
    SIDE_DRIVER,
)
from vbench.layout import (
    IOQ_IDX_INUSE,
    IOQ_IDX_VALID,
    IOQ_MAX_COUNT,
    IOQ_RING_DESC,
    IOQ_RING_HEAD,
    IOQ_RING_IDX,
    IOQ_RING_MAGIC,
    IOQ_RING_VER,
    LINE,
    SHM_NORTH,
    SHM_SIGNAL_DESC,
    SHM_SIGNAL_IRQ,
    SHM_SIGNAL_MAGIC,
    SHM_SIGNAL_VER,
    SHM_SOUTH,
    VBUS_PCI_DEVICECALL,
    VBUS_PCI_FASTCALL_DESC,
    VBUS_PCI_HC_DEVCALL,
    VENET_IOV,
    VENET_SG,
    ArenaLayout,
    ioq_layout,
)
from vbench.memory import (
    ARENA_GPA,
    ld8,
    ld32,
    ld64,
    mb,
    new_mem,
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
from vbench.models.interface import Instance, ModelDef, ModelOptions, Needs, implement

NAME = "vbus-ioq"

CFG = np.dtype(
    [
        ("ioq_count", np.int64),
        ("ring", np.int64),
        ("valid_idx", np.int64),
        ("inuse_idx", np.int64),
        ("north", np.int64),  # the driver's mailbox {enabled, pending, dirty}
        ("south", np.int64),  # the device's mailbox
        ("pool", np.int64),
        ("entry", np.int64),
        ("sg_pool", np.int64),
        ("txmitigation", np.int64),
        ("call", np.int64),  # offset of the call() area, or -1 for the ring transport
        ("eoi_windows", np.int64),
        ("signal_mb", np.int64),  # 1: a full barrier in shm-signal's store-then-check steps
    ]
)

# offsets inside the structures, from the one layout definition
_DESC_COOKIE = IOQ_RING_DESC.offset("cookie")
_DESC_PTR = IOQ_RING_DESC.offset("ptr")
_DESC_LEN = IOQ_RING_DESC.offset("len")
_DESC_VALID = IOQ_RING_DESC.offset("valid")
_DESC_SOWN = IOQ_RING_DESC.offset("sown")
_DESC_BYTES = IOQ_RING_DESC.size
_IDX_HEAD = IOQ_RING_IDX.offset("head")
_IDX_TAIL = IOQ_RING_IDX.offset("tail")
_IDX_FULL = IOQ_RING_IDX.offset("full")
_MBOX_ENABLED = SHM_SIGNAL_IRQ.offset("enabled")
_MBOX_PENDING = SHM_SIGNAL_IRQ.offset("pending")
_MBOX_DIRTY = SHM_SIGNAL_IRQ.offset("dirty")
_SG_COOKIE = VENET_SG.offset("cookie")
_SG_LEN = VENET_SG.offset("len")
_SG_COUNT = VENET_SG.offset("count")
_SG_IOV = VENET_SG.offset("iov")
_IOV_LEN = VENET_IOV.offset("len")
_IOV_PTR = VENET_IOV.offset("ptr")
_IOV_BYTES = VENET_IOV.size

_FASTCALL_VECTOR = VBUS_PCI_FASTCALL_DESC.offset("call.vector")
_FASTCALL_LEN = VBUS_PCI_FASTCALL_DESC.offset("call.len")
_FASTCALL_DATAP = VBUS_PCI_FASTCALL_DESC.offset("call.datap")
_FASTCALL_RESULT = VBUS_PCI_FASTCALL_DESC.offset("result")
_DEVCALL_DEVH = VBUS_PCI_DEVICECALL.offset("devh")
_DEVCALL_FUNC = VBUS_PCI_DEVICECALL.offset("func")
_DEVCALL_LEN = VBUS_PCI_DEVICECALL.offset("len")
_DEVCALL_FLAGS = VBUS_PCI_DEVICECALL.offset("flags")
_DEVCALL_DATAP = VBUS_PCI_DEVICECALL.offset("datap")
_DEVCALL_OFF = LINE  # the devicecall sits on the line after the fastcall
_DEVCALL_BYTES = VBUS_PCI_DEVICECALL.size

# driver private state
DRV_KICK = 0  # the result of the last push's inject (-1: none)
DRV_CALL_REQ = 1  # the request of the open call() (-1: none)
DRV_SLOTS = 2
# device private state
DEV_UNSIGNALLED = 0  # completions not yet signalled
DEV_CURSOR = 1  # the device's iterator position on the inuse index (ioq_iter: pos)
DEV_TAKEN = 2  # slots read but not yet popped (completed), in order
DEV_SLOTS = 3


#: What ``sg`` means, for this model and for vbus-prio's class IOQs alike.
SG_WHAT = (
    "pool: each request a venet_sg list in the pool registered once; flat: a multi-segment "
    "request gathered into one buffer by a copy"
)


class Options(ModelOptions):
    """Options of the vbus IOQ model; see the module docstring."""

    queue_size: int = Field(
        256, ge=2, le=IOQ_MAX_COUNT, description="slots in the IOQ: ≤ 2048, the host's venet limit"
    )
    txmitigation: int = Field(
        10,
        ge=1,
        description="the device signals the driver every k completions and when it runs empty",
    )
    sg: Literal["pool", "flat"] = Field("pool", description=SG_WHAT)
    transport: Literal["ring", "call"] = Field(
        "ring",
        description="ring: the IOQ and its shm-signals; call: each request one synchronous call(), "
        "parameters copied in and out inside one exit (no ring, no signal, no interrupt)",
    )
    eoi: Literal["linux", "windows"] = Field(
        "linux",
        description="the driver mailbox's policy: linux (pending cleared once all dirty state is "
        "drained), or windows (pending cleared only when the deferred handler ends)",
    )
    signal_barrier: Literal["wmb", "mb"] = Field(
        "wmb",
        description=(
            "the barrier between shm-signal's store and its check of the peer's flags: wmb as "
            "lib/shm_signal.c ships (x86 may reorder the pair: a native sleeping run can lose "
            "a wakeup), or mb, the full barrier that closes the race, at its price"
        ),
    )


# --- the shm-signal and IOQ primitives ----------------------------------------------------------
@njit(inline="always")
def _store_then_check(mem, ctr, side, full):
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
def _inject(mem, ctr, side, mbox, full):
    """shm_signal_inject towards the mailbox at ``mbox``: 1 a real notification, 0 suppressed."""
    ctr[C_INJECTS] += 1
    st8(mem, ctr, side, mbox + _MBOX_DIRTY, 1)
    _store_then_check(mem, ctr, side, full)
    if (
        ld8(mem, ctr, side, mbox + _MBOX_ENABLED) != 0
        and ld8(mem, ctr, side, mbox + _MBOX_PENDING) == 0
    ):
        st8(mem, ctr, side, mbox + _MBOX_PENDING, 1)
        wmb(mem, ctr)
        return 1
    return 0


@njit(inline="always")
def _tail_push(mem, ctr, side, idx, count):
    """idx_tail_push: advance the tail, setting ``full`` first when it meets the head."""
    t = ld32(mem, ctr, side, idx + _IDX_TAIL) + 1
    if t == count:
        t = 0
    if ld32(mem, ctr, side, idx + _IDX_HEAD) == t:
        rmb(mem, ctr)
        st8(mem, ctr, side, idx + _IDX_FULL, 1)
        wmb(mem, ctr)
    st32(mem, ctr, side, idx + _IDX_TAIL, t)


@njit(inline="always")
def _head_pop(mem, ctr, side, idx, head, count):
    """The index part of ioq_iter_pop: advance the head, then clear ``full``."""
    h = head + 1
    if h == count:
        h = 0
    st32(mem, ctr, side, idx + _IDX_HEAD, h)
    wmb(mem, ctr)
    if ld8(mem, ctr, side, idx + _IDX_FULL) != 0:
        st8(mem, ctr, side, idx + _IDX_FULL, 0)
        wmb(mem, ctr)


# --- the venet request path on one IOQ, shared with the per-class model (vbus_prio) --------
@njit(inline="always")
def ioq_post(mem, ctr, io, ring, vidx, inuse, count, pool, entry, sg_pool):
    """Driver: fill the slot at the valid tail (through the venet_sg pool or flat) and push on
    both indexes, which hands the slot to the device. 1 posted, 0 no room (nothing changed).
    The caller injects the device's signal (auto-update)."""
    pos = ld32(mem, ctr, SIDE_DRIVER, vidx + _IDX_TAIL)
    if ld8(mem, ctr, SIDE_DRIVER, vidx + _IDX_FULL) != 0:
        return 0  # ioq_full(valid): tail == head with full set
    d = ring + _DESC_BYTES * pos
    if ld8(mem, ctr, SIDE_DRIVER, d + _DESC_SOWN) != 0:
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
    st64(mem, ctr, SIDE_DRIVER, d + _DESC_COOKIE, req)
    st64(mem, ctr, SIDE_DRIVER, d + _DESC_PTR, ptr)
    st64(mem, ctr, SIDE_DRIVER, d + _DESC_LEN, ln)
    st8(mem, ctr, SIDE_DRIVER, d + _DESC_VALID, 1)
    ctr[C_DESC_WRITTEN] += 1
    # ioq_iter_push on a "both" iterator: both tails, then the owner flip
    _tail_push(mem, ctr, SIDE_DRIVER, vidx, count)
    _tail_push(mem, ctr, SIDE_DRIVER, inuse, count)
    wmb(mem, ctr)
    st8(mem, ctr, SIDE_DRIVER, d + _DESC_SOWN, 1)
    wmb(mem, ctr)
    return 1


@njit(inline="always")
def ioq_read(mem, ctr, io, d, pool, entry, count, sg_pool):
    """Device: read the descriptor at ``d`` (and its venet_sg list); the request id, or -2."""
    rmb(mem, ctr)
    ptr = ld64(mem, ctr, SIDE_DEVICE, d + _DESC_PTR)
    ln = ld64(mem, ctr, SIDE_DEVICE, d + _DESC_LEN)
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
    h = ld32(mem, ctr, SIDE_DRIVER, vidx + _IDX_HEAD)
    d = ring + _DESC_BYTES * h
    if (
        ld8(mem, ctr, SIDE_DRIVER, d + _DESC_VALID) == 0
        or ld8(mem, ctr, SIDE_DRIVER, d + _DESC_SOWN) != 0
    ):
        return -1
    req = ld64(mem, ctr, SIDE_DRIVER, d + _DESC_COOKIE)
    ctr[C_DESC_READ] += 1
    st8(mem, ctr, SIDE_DRIVER, d + _DESC_VALID, 0)
    _head_pop(mem, ctr, SIDE_DRIVER, vidx, h, count)  # NOFLIPOWNER, no update
    return req


# --- driver (north) ------------------------------------------------------------------------------
@njit(inline="always")
def add(cfg, mem, st, ctr, io):
    c = cfg[0]
    if c.call >= 0:
        return _call_submit(c, mem, st, ctr, io)
    if (
        ioq_post(
            mem, ctr, io, c.ring, c.valid_idx, c.inuse_idx, c.ioq_count, c.pool, c.entry, c.sg_pool
        )
        == 0
    ):
        return 0
    st[DRV_KICK] = _inject(mem, ctr, SIDE_DRIVER, c.south, c.signal_mb)
    return 1


@njit  # out of line: only this option uses it; keeps the hot path small
def _call_submit(c, mem, st, ctr, io):
    """call(): fill the devicecall and the fastcall that points at it; one exit follows."""
    if st[DRV_CALL_REQ] >= 0:
        return 0  # one call at a time per vCPU
    req = io[IO_REQ]
    size = io[IO_SIZE]
    if io[IO_SEGS] > 1:
        ctr[C_BYTES_COPIED] += size  # call() takes one buffer: gather the segments first
    dc = c.call + _DEVCALL_OFF
    st64(mem, ctr, SIDE_DRIVER, dc + _DEVCALL_DEVH, 1)
    st32(mem, ctr, SIDE_DRIVER, dc + _DEVCALL_FUNC, 0)
    st32(mem, ctr, SIDE_DRIVER, dc + _DEVCALL_LEN, size)
    st32(mem, ctr, SIDE_DRIVER, dc + _DEVCALL_FLAGS, 0)
    st64(mem, ctr, SIDE_DRIVER, dc + _DEVCALL_DATAP, seg_addr(req, size, 1, 0))
    st32(mem, ctr, SIDE_DRIVER, c.call + _FASTCALL_VECTOR, VBUS_PCI_HC_DEVCALL)
    st32(mem, ctr, SIDE_DRIVER, c.call + _FASTCALL_LEN, _DEVCALL_BYTES)
    st64(mem, ctr, SIDE_DRIVER, c.call + _FASTCALL_DATAP, ARENA_GPA + dc)
    wmb(mem, ctr)
    ctr[C_DESC_WRITTEN] += 2
    st[DRV_CALL_REQ] = req
    io[IO_SYNC] = 1
    return 1


@njit  # out of line: only this option uses it; keeps the hot path small
def _call_serve(c, mem, st, ctr, io):
    """The host side of the exit: read both descriptors, copy the parameters in. The host
    serves a call only inside the exit its doorbell caused (the engine sets IO_SYNC on that
    pop); at any other time (a polling device looking) there is nothing to serve."""
    if io[IO_SYNC] == 0:
        return -1
    ln = ld32(mem, ctr, SIDE_DEVICE, c.call + _FASTCALL_LEN)
    dc = ld64(mem, ctr, SIDE_DEVICE, c.call + _FASTCALL_DATAP) - ARENA_GPA
    if (
        ld32(mem, ctr, SIDE_DEVICE, c.call + _FASTCALL_VECTOR) != VBUS_PCI_HC_DEVCALL
        or dc != c.call + _DEVCALL_OFF
        or ln != _DEVCALL_BYTES
    ):
        return -2
    ld64(mem, ctr, SIDE_DEVICE, dc + _DEVCALL_DEVH)
    ld32(mem, ctr, SIDE_DEVICE, dc + _DEVCALL_FUNC)
    size = ld32(mem, ctr, SIDE_DEVICE, dc + _DEVCALL_LEN)
    ld32(mem, ctr, SIDE_DEVICE, dc + _DEVCALL_FLAGS)
    data = ld64(mem, ctr, SIDE_DEVICE, dc + _DEVCALL_DATAP)
    ctr[C_DESC_READ] += 2
    ctr[C_BYTES_COPIED] += size  # copy_from_guest of the parameters
    io[IO_SIZE] = size
    io[IO_SEGS] = 1
    io[IO_HANDLE] = 0
    io[IO_LEN] = 0
    return req_of_addr(data)


@njit(inline="always")
def kick_needed(cfg, mem, st, ctr, io):
    r = st[DRV_KICK]  # decided by the push's own inject
    st[DRV_KICK] = -1
    return r


@njit(inline="always")
def reap(cfg, mem, st, ctr, io):
    c = cfg[0]
    if c.call >= 0:
        req = st[DRV_CALL_REQ]
        if req < 0:
            return -1
        if ld32(mem, ctr, SIDE_DRIVER, c.call + _FASTCALL_RESULT) != 0:
            return -2
        st[DRV_CALL_REQ] = -1
        return req
    return ioq_reap(mem, ctr, c.ring, c.valid_idx, c.ioq_count)


@njit(inline="always")
def _disable_mailbox(mem, ctr, side, m):
    """The shm_signal wakeup whose handler disables the mailbox and defers the ring work.

    The loop clears ``dirty``, the handler sets ``enabled = 0`` (so the loop ends) and
    ``pending`` is cleared: from now on the peer's injects only set ``dirty``.
    """
    if ld8(mem, ctr, side, m + _MBOX_ENABLED) == 0:
        return 0  # already disabled (a polling side): nothing to hand over
    st8(mem, ctr, side, m + _MBOX_DIRTY, 0)
    st8(mem, ctr, side, m + _MBOX_ENABLED, 0)
    st8(mem, ctr, side, m + _MBOX_PENDING, 0)
    wmb(mem, ctr)
    return 0


@njit(inline="always")
def _enable_mailbox(mem, ctr, side, m, full):
    """shm_signal_enable: 1 nothing happened meanwhile; 0 a replay is due (dirty or pending)."""
    st8(mem, ctr, side, m + _MBOX_ENABLED, 1)
    _store_then_check(mem, ctr, side, full)
    if ld8(mem, ctr, side, m + _MBOX_DIRTY) != 0 or ld8(mem, ctr, side, m + _MBOX_PENDING) != 0:
        return 0  # a deferred wakeup, which may find nothing new (a spurious wakeup)
    return 1


@njit(inline="always")
def disable_interrupts(cfg, mem, st, ctr, io):
    c = cfg[0]
    if c.eoi_windows != 0:
        # Windows: the wakeup clears dirty and defers the handler; enabled and pending stay
        st8(mem, ctr, SIDE_DRIVER, c.north + _MBOX_DIRTY, 0)
        return 0
    return _disable_mailbox(mem, ctr, SIDE_DRIVER, c.north)


@njit(inline="always")
def enable_interrupts(cfg, mem, st, ctr, io):
    c = cfg[0]
    if c.eoi_windows != 0:
        # the deferred handler finished: EOI (pending = 0), then look at dirty again
        st8(mem, ctr, SIDE_DRIVER, c.north + _MBOX_PENDING, 0)
        _store_then_check(mem, ctr, SIDE_DRIVER, c.signal_mb)
        return 0 if ld8(mem, ctr, SIDE_DRIVER, c.north + _MBOX_DIRTY) != 0 else 1
    return _enable_mailbox(mem, ctr, SIDE_DRIVER, c.north, c.signal_mb)


# --- device (south) ------------------------------------------------------------------------------
@njit(inline="always")
def pop(cfg, mem, st, ctr, io):
    c = cfg[0]
    if c.call >= 0:
        return _call_serve(c, mem, st, ctr, io)
    if st[DEV_TAKEN] == 0:
        st[DEV_CURSOR] = ld32(mem, ctr, SIDE_DEVICE, c.inuse_idx + _IDX_HEAD)  # seek to the head
    h = st[DEV_CURSOR]
    d = c.ring + _DESC_BYTES * h
    if st[DEV_TAKEN] == c.ioq_count or ld8(mem, ctr, SIDE_DEVICE, d + _DESC_SOWN) == 0:
        return -1
    st[DEV_CURSOR] = h + 1 if h + 1 < c.ioq_count else 0  # ioq_seek_next: the next slot
    st[DEV_TAKEN] += 1
    io[IO_HANDLE] = h
    return ioq_read(mem, ctr, io, d, c.pool, c.entry, c.ioq_count, c.sg_pool)


@njit(inline="always")
def push_used(cfg, mem, st, ctr, io):
    c = cfg[0]
    if c.call >= 0:
        ctr[C_BYTES_COPIED] += io[IO_SIZE]  # copy_to_guest of the results
        st32(mem, ctr, SIDE_DEVICE, c.call + _FASTCALL_RESULT, 0)
        return 0
    h = io[IO_HANDLE]  # completions come in ring order: h is the inuse head
    st[DEV_TAKEN] -= 1
    _head_pop(mem, ctr, SIDE_DEVICE, c.inuse_idx, h, c.ioq_count)
    st8(mem, ctr, SIDE_DEVICE, c.ring + _DESC_BYTES * h + _DESC_SOWN, 0)  # flip back to the driver
    wmb(mem, ctr)
    st[DEV_UNSIGNALLED] += 1
    return 0


@njit(inline="always")
def interrupt_needed(cfg, mem, st, ctr, io):
    c = cfg[0]
    k = st[DEV_UNSIGNALLED]
    if k == 0 or (k < c.txmitigation and io[IO_LAST] == 0):
        return -1
    st[DEV_UNSIGNALLED] = 0
    return _inject(mem, ctr, SIDE_DEVICE, c.north, c.signal_mb)


@njit(inline="always")
def disable_kicks(cfg, mem, st, ctr, io):
    return _disable_mailbox(mem, ctr, SIDE_DEVICE, cfg[0].south)


@njit(inline="always")
def enable_kicks(cfg, mem, st, ctr, io):
    return _enable_mailbox(mem, ctr, SIDE_DEVICE, cfg[0].south, cfg[0].signal_mb)


implement(CFG, sys.modules[__name__])


# --- Python side ---------------------------------------------------------------------------------
def layout(opts: Options, needs: Needs) -> ArenaLayout:
    sg = needs.max_segments if opts.sg == "pool" and opts.transport == "ring" else 0
    return ioq_layout(opts.queue_size, sg, call=opts.transport == "call")


def _mailbox(region: int, side: int) -> int:
    return (
        region
        + IOQ_RING_HEAD.offset("signal")
        + SHM_SIGNAL_DESC.offset("irq")
        + SHM_SIGNAL_IRQ.size * side
    )


def build(opts: Options, needs: Needs) -> Instance:
    lay = layout(opts, needs)
    ioq = lay.area("ioq")
    cfg = np.zeros(1, dtype=CFG)
    c = cfg[0]
    c["ioq_count"] = opts.queue_size
    c["ring"] = ioq.at("ring")
    c["valid_idx"] = ioq.at("idx") + IOQ_RING_IDX.size * IOQ_IDX_VALID
    c["inuse_idx"] = ioq.at("idx") + IOQ_RING_IDX.size * IOQ_IDX_INUSE
    c["north"] = _mailbox(ioq.offset, SHM_NORTH)
    c["south"] = _mailbox(ioq.offset, SHM_SOUTH)
    if opts.sg == "pool" and opts.transport == "ring":
        c["pool"] = lay.area("sg_pool").offset
        c["entry"] = lay.params["sg_entry_size"]
    c["txmitigation"] = opts.txmitigation
    c["call"] = lay.area("call").offset if opts.transport == "call" else -1
    c["eoi_windows"] = int(opts.eoi == "windows")
    c["signal_mb"] = int(opts.signal_barrier == "mb")
    c["sg_pool"] = int(opts.sg == "pool" and opts.transport == "ring")
    mem = new_mem(lay.size)
    w = view(mem, np.uint32)
    # what the guest writes when it registers the region (before the run: not counted)
    w[(ioq.offset + IOQ_RING_HEAD.offset("magic")) >> 2] = IOQ_RING_MAGIC
    w[(ioq.offset + IOQ_RING_HEAD.offset("ver")) >> 2] = IOQ_RING_VER
    sig = ioq.offset + IOQ_RING_HEAD.offset("signal")
    w[(sig + SHM_SIGNAL_DESC.offset("magic")) >> 2] = SHM_SIGNAL_MAGIC
    w[(sig + SHM_SIGNAL_DESC.offset("ver")) >> 2] = SHM_SIGNAL_VER
    w[(ioq.offset + IOQ_RING_HEAD.offset("count")) >> 2] = opts.queue_size
    mem[c["north"] + _MBOX_ENABLED] = 1  # the driver takes interrupts
    mem[c["south"] + _MBOX_ENABLED] = 1  # the device sleeps waiting for kicks
    drv = np.full(DRV_SLOTS, -1, dtype=np.int64)
    dev = np.zeros(DEV_SLOTS, dtype=np.int64)
    return Instance(NAME, lay, cfg, mem, drv, dev)


def audit(inst: Instance) -> list[str]:
    """End-of-run invariants: every slot back with the driver and empty, indexes agree."""
    c, mem = inst.cfg[0], inst.mem
    count = int(c["ioq_count"])
    out = []
    ring = int(c["ring"])
    b = view(mem, np.uint8)
    w = view(mem, np.uint32)
    sown = b[ring + _DESC_SOWN : ring + _DESC_BYTES * count : _DESC_BYTES]
    valid = b[ring + _DESC_VALID : ring + _DESC_BYTES * count : _DESC_BYTES]
    if np.any(sown):
        out.append(f"{int(np.count_nonzero(sown))} slots still owned by the device")
    if np.any(valid):
        out.append(f"{int(np.count_nonzero(valid))} slots still valid (not reaped)")
    heads = []
    for name in ("valid_idx", "inuse_idx"):
        idx = int(c[name])
        h, t = int(w[(idx + _IDX_HEAD) >> 2]), int(w[(idx + _IDX_TAIL) >> 2])
        full = int(b[idx + _IDX_FULL])
        if full or h != t:
            out.append(f"{name}: head {h}, tail {t}, full {full}: not empty")
        heads.append(h)
    if heads[0] != heads[1]:
        out.append(f"valid head {heads[0]} and inuse head {heads[1]} disagree")
    return out


def check(opts: Options, needs: Needs, batch: int) -> str | None:
    if batch > opts.queue_size:
        return (
            f"batch = {batch} is larger than the ring (queue_size = {opts.queue_size}): "
            "lower the batch or raise queue_size"
        )
    return None


MODEL = ModelDef(
    name=NAME,
    summary="vbus IOQ + shm-signal, the venet TX path as shipped (one TX queue, prio 0: vbus-enet.c "
    "queue_init); SG through the pre-registered venet_sg pool",
    options=Options,
    build=build,
    layout=layout,
    audit=audit,
    check=check,
)
