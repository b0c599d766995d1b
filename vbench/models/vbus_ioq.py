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

``signal_path = "eventq"`` (the default): a device signal reaches the guest as AlacrityVM's PCI
bridge delivers every shm-signal: when the IOQ's north mailbox fires, the host pushes an event
naming the signal into the bridge's event queue and injects that queue's own signal, which
raises the MSI (``kernel/vbus/connectors``: ``event_inject`` / ``events_flush``); the guest's
event-queue interrupt disables that queue's mailbox and defers, the deferred handler takes the
events (``drivers/vbus/pci-bridge.c``: ``eventq_wakeup``), each one starting the named signal's
wakeup (``dirty = 0``), reaps, and ends the wakeup once the ring is drained (``pending = 0``,
looking again if ``dirty`` was set meanwhile); it signals the host after taking events (its
mailbox is off: a ``dirty`` write). A burst of device signals merges into one event while the
wakeup is open, and the event queue's own mailbox merges MSIs: the second layer of coalescing.
This is :mod:`vbench.models.vbus_prio`'s delivery with one IOQ and one event queue, from the same
primitives (:mod:`vbench.models.vbus_ring`). ``signal_path = "direct"`` is the what-if without
the hop: the IOQ's north mailbox raises the interrupt itself. ``eoi`` applies to the mailbox
that raises the interrupt (the event queue's with the hop).

``tx_completion = "event"``: venet's TX-complete events (``VENET_CAP_EVQ_TXC``, which the
shipped guest driver requests and the device grants): after handing each slot back the device
writes a ``venet_event_txc`` naming the packet into venet's own event queue (``venetdev_rx``:
``ioq_iter_pop`` then ``evq_send_txc``, without a signal), and signals *that* queue (not the TX
ring) every ``txmitigation`` packets and when it runs dry. The guest's event handler
(``deferred_evq_isr`` / ``evq_txc_event``) first reaps every slot handed back
(``vbus_enet_tx_reap``), then completes the packet the event names, clears the event and pops
it with auto-update (a signal to the host, whose mailbox on that queue is off). The queue has as
many slots as the TX ring (``vbus_enet_evq_negcap(priv, tx_ringlen)``); venet's backpressure
path for a full event queue (``txclist``) is not modelled: vbench's driver drains every queued
event in each reap round and hands a slot back only while handling an event queued after it,
so at most ``queue_size`` events are ever queued (a full queue is reported by ``audit``).
``tx_completion = "ring"`` (the default): the driver reaps completions from the ring itself.

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
    IOQ_RING_IDX,
    LINE,
    SHM_NORTH,
    SHM_SOUTH,
    VBUS_PCI_DEVICECALL,
    VBUS_PCI_FASTCALL_DESC,
    VBUS_PCI_HC_DEVCALL,
    VENET_EVENT_HEADER,
    VENET_EVENT_ID_TXC,
    VENET_EVENT_TXC,
    VENET_SG,
    ArenaLayout,
    ioq_layout,
)
from vbench.memory import (
    ARENA_GPA,
    ld8,
    ld32,
    ld64,
    new_mem,
    req_of_addr,
    seg_addr,
    st8,
    st32,
    st64,
    view,
    wmb,
)
from vbench.models.interface import Instance, ModelDef, ModelOptions, Needs, implement
from vbench.models.vbus_ring import (
    DESC_BYTES,
    DESC_COOKIE,
    DESC_SOWN,
    DESC_VALID,
    EVENT_BYTES,
    IDX_HEAD,
    MBOX_DIRTY,
    MBOX_ENABLED,
    MBOX_PENDING,
    SG_WHAT,
    bridge_signal,
    bridge_take,
    evq_claim,
    evq_next,
    evq_publish,
    evq_release,
    index_state,
    inject,
    ioq_complete,
    ioq_post,
    ioq_read,
    ioq_reap,
    mailbox_disable,
    mailbox_enable,
    mailbox_offset,
    post_events,
    register_ioq,
    signal_close,
    signal_open,
    store_then_check,
)

NAME = "vbus-ioq"

CFG = np.dtype(
    [
        ("ioq_count", np.int64),
        ("ring", np.int64),
        ("valid_idx", np.int64),
        ("inuse_idx", np.int64),
        ("north", np.int64),  # the TX ring's driver mailbox {enabled, pending, dirty}
        ("south", np.int64),  # the TX ring's device mailbox
        ("pool", np.int64),
        ("entry", np.int64),
        ("sg_pool", np.int64),
        ("txmitigation", np.int64),
        ("call", np.int64),  # offset of the call() area, or -1 for the ring transport
        ("eoi_windows", np.int64),
        ("signal_mb", np.int64),  # 1: a full barrier in shm-signal's store-then-check steps
        ("signal", np.int64),  # the mailbox the device signals: the TX ring's or the TXC queue's
        ("irq", np.int64),  # the mailbox that raises the interrupt: ``signal`` or the bridge's
        ("bridge", np.int64),  # 1: signals go through the bridge's event queue (the hop)
        ("evq_ring", np.int64),  # the bridge's event queue ...
        ("evq_inuse", np.int64),
        ("evq_count", np.int64),
        ("evq_north", np.int64),
        ("evq_south", np.int64),
        ("txc", np.int64),  # 1: tx_completion = "event"
        ("txc_ring", np.int64),  # venet's event queue ...
        ("txc_inuse", np.int64),
        ("txc_count", np.int64),
        ("txc_south", np.int64),
        ("txc_base", np.int64),  # its event pool: an event's offset is its slot's ptr + this
    ]
)

_SG_COOKIE = VENET_SG.offset("cookie")
_TXC_FLAGS = VENET_EVENT_TXC.offset("header") + VENET_EVENT_HEADER.offset("flags")
_TXC_SIZE = VENET_EVENT_TXC.offset("header") + VENET_EVENT_HEADER.offset("size")
_TXC_ID = VENET_EVENT_TXC.offset("header") + VENET_EVENT_HEADER.offset("id")
_TXC_QID = VENET_EVENT_TXC.offset("txqid")
_TXC_COOKIE = VENET_EVENT_TXC.offset("cookie")
_TXC_BYTES = VENET_EVENT_TXC.size

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
DRV_OPEN = 2  # with the hop: 1 while the signal's wakeup is open (an event started it)
DRV_SLOTS = 3
# device private state
DEV_UNSIGNALLED = 0  # completions not yet signalled
DEV_CURSOR = 1  # the device's iterator position on the inuse index (ioq_iter: pos)
DEV_TAKEN = 2  # slots read but not yet popped (completed), in order
DEV_TXC_LOST = 3  # TX-complete events that found venet's event queue full (must stay 0)
DEV_BASE = 4  # tx_completion = "event": per slot, the cookie of the packet taken from it


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
        description="the interrupting mailbox's policy: linux (pending cleared once all dirty "
        "state is drained), or windows (pending cleared only when the deferred handler ends)",
    )
    signal_barrier: Literal["wmb", "mb"] = Field(
        "wmb",
        description=(
            "the barrier between shm-signal's store and its check of the peer's flags: wmb as "
            "lib/shm_signal.c ships (x86 may reorder the pair: a native sleeping run can lose "
            "a wakeup), or mb, the full barrier that closes the race, at its price"
        ),
    )
    signal_path: Literal["eventq", "direct"] = Field(
        "eventq",
        description="eventq: a device signal reaches the guest as an event in the PCI bridge's "
        "event queue, whose own signal raises the MSI (as shipped); direct: the signal's "
        "mailbox raises the interrupt itself (a what-if without that hop)",
    )
    eventq_size: int = Field(
        1024, ge=1, le=65536, description="slots in the bridge's event queue (signal_path eventq)"
    )
    tx_completion: Literal["ring", "event"] = Field(
        "ring",
        description="ring: the driver reaps completions from the TX ring; event: venet's "
        "VENET_CAP_EVQ_TXC, one TX-complete event per packet in venet's event queue, which the "
        "device signals instead of the ring",
    )


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
    st[DRV_KICK] = inject(mem, ctr, SIDE_DRIVER, c.south, c.signal_mb)
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


@njit  # out of line: only tx_completion = "event" uses it; keeps the compile and hot path small
def _txc_reap(c, mem, ctr):
    """One TX-complete event (vbus-enet.c ``deferred_evq_isr`` / ``evq_txc_event``): reap every
    slot the device handed back (``vbus_enet_tx_reap``), then the packet the event names; clear
    the event and pop it with auto-update. The request id, -1 none queued, -2 a bad event."""
    h, d, ev = evq_next(mem, ctr, c.txc_ring, c.txc_inuse)
    if d < 0:
        return -1
    while ioq_reap(mem, ctr, c.ring, c.valid_idx, c.ioq_count) >= 0:
        pass  # the slots go back to the free list; the packets complete by their events
    ld32(mem, ctr, SIDE_DRIVER, ev + _TXC_SIZE)
    kind = ld32(mem, ctr, SIDE_DRIVER, ev + _TXC_ID)
    req = ld64(mem, ctr, SIDE_DRIVER, ev + _TXC_COOKIE)
    ctr[C_DESC_READ] += 1
    if kind != VENET_EVENT_ID_TXC:
        return -2
    # memset(event, 0, evsize)
    st32(mem, ctr, SIDE_DRIVER, ev + _TXC_FLAGS, 0)
    st32(mem, ctr, SIDE_DRIVER, ev + _TXC_SIZE, 0)
    st32(mem, ctr, SIDE_DRIVER, ev + _TXC_ID, 0)
    st32(mem, ctr, SIDE_DRIVER, ev + _TXC_QID, 0)
    st64(mem, ctr, SIDE_DRIVER, ev + _TXC_COOKIE, 0)
    evq_release(mem, ctr, c.txc_inuse, c.txc_count, h, d)
    inject(mem, ctr, SIDE_DRIVER, c.txc_south, c.signal_mb)  # auto-update; the host's is off
    return req


@njit(inline="always")
def _reap_one(c, mem, ctr):
    """One completion from the TX ring or, with TX-complete events, from venet's event queue."""
    if c.txc != 0:
        return _txc_reap(c, mem, ctr)
    return ioq_reap(mem, ctr, c.ring, c.valid_idx, c.ioq_count)


@njit(inline="always")
def _take_events(c, mem, st, ctr):
    """The bridge's event queue (pci-bridge.c ``eventq_wakeup``): each event names the device
    signal (cookie 0: this model has one) and starts its wakeup. 0, or -2 for a bad event."""
    took = 0
    while True:
        found, signal = bridge_take(mem, ctr, c.evq_ring, c.evq_inuse, c.evq_count)
        if not found:
            break
        if signal != 0:
            return -2
        signal_open(mem, ctr, c.signal)
        st[DRV_OPEN] = 1
        took += 1
    if took > 0:
        inject(mem, ctr, SIDE_DRIVER, c.evq_south, c.signal_mb)  # the host's mailbox is off
    return 0


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
    if c.bridge == 0:
        return _reap_one(c, mem, ctr)
    if _take_events(c, mem, st, ctr) != 0:
        return -2
    while st[DRV_OPEN] != 0:
        r = _reap_one(c, mem, ctr)
        if r != -1:
            return r
        # drained: the signal's wakeup ends, unless the device signalled again meanwhile
        if signal_close(mem, ctr, c.signal, c.signal_mb) != 0:
            st[DRV_OPEN] = 0
    return -1


@njit(inline="always")
def disable_interrupts(cfg, mem, st, ctr, io):
    c = cfg[0]
    if c.eoi_windows != 0:
        # Windows: the wakeup clears dirty and defers the handler; enabled and pending stay
        st8(mem, ctr, SIDE_DRIVER, c.irq + MBOX_DIRTY, 0)
        return 0
    return mailbox_disable(mem, ctr, SIDE_DRIVER, c.irq)


@njit(inline="always")
def enable_interrupts(cfg, mem, st, ctr, io):
    c = cfg[0]
    r = 0 if st[DRV_OPEN] != 0 else 1
    if c.eoi_windows != 0:
        # the deferred handler finished: EOI (pending = 0), then look at dirty again
        st8(mem, ctr, SIDE_DRIVER, c.irq + MBOX_PENDING, 0)
        store_then_check(mem, ctr, SIDE_DRIVER, c.signal_mb)
        return 0 if ld8(mem, ctr, SIDE_DRIVER, c.irq + MBOX_DIRTY) != 0 else r
    if mailbox_enable(mem, ctr, SIDE_DRIVER, c.irq, c.signal_mb) == 0:
        return 0
    return r


# --- device (south) ------------------------------------------------------------------------------
@njit(inline="always")
def pop(cfg, mem, st, ctr, io):
    c = cfg[0]
    if c.call >= 0:
        return _call_serve(c, mem, st, ctr, io)
    if st[DEV_TAKEN] == 0:
        st[DEV_CURSOR] = ld32(mem, ctr, SIDE_DEVICE, c.inuse_idx + IDX_HEAD)  # seek to the head
    h = st[DEV_CURSOR]
    d = c.ring + DESC_BYTES * h
    if st[DEV_TAKEN] == c.ioq_count or ld8(mem, ctr, SIDE_DEVICE, d + DESC_SOWN) == 0:
        return -1
    st[DEV_CURSOR] = h + 1 if h + 1 < c.ioq_count else 0  # ioq_seek_next: the next slot
    st[DEV_TAKEN] += 1
    io[IO_HANDLE] = h
    req = ioq_read(mem, ctr, io, d, c.pool, c.entry, c.ioq_count, c.sg_pool)
    if c.txc != 0:
        # venetdev_rx keeps the packet's cookie for its TX-complete event: the venet_sg's
        # (from the copy of the entry just read) or the descriptor's
        if c.sg_pool != 0:
            st[DEV_BASE + h] = ld64(mem, ctr, SIDE_DEVICE, c.pool + c.entry * h + _SG_COOKIE)
        else:
            st[DEV_BASE + h] = ld64(mem, ctr, SIDE_DEVICE, d + DESC_COOKIE)
    return req


@njit  # out of line, as _txc_reap
def _send_txc(c, mem, st, ctr, h):
    """venet's ``evq_send_txc`` for the packet taken from slot ``h``: its event queued, with no
    signal (the signal follows the TX mitigation rule)."""
    d, ev = evq_claim(mem, ctr, c.txc_ring, c.txc_inuse, c.txc_base)
    if d < 0:
        st[DEV_TXC_LOST] += 1  # venet would hold it on its txclist: see the module docstring
        return
    st32(mem, ctr, SIDE_DEVICE, ev + _TXC_FLAGS, 0)
    st32(mem, ctr, SIDE_DEVICE, ev + _TXC_SIZE, _TXC_BYTES)
    st32(mem, ctr, SIDE_DEVICE, ev + _TXC_ID, VENET_EVENT_ID_TXC)
    st32(mem, ctr, SIDE_DEVICE, ev + _TXC_QID, 0)  # "we do not yet support multi-queue"
    st64(mem, ctr, SIDE_DEVICE, ev + _TXC_COOKIE, st[DEV_BASE + h])
    evq_publish(mem, ctr, c.txc_inuse, c.txc_count, d)


@njit(inline="always")
def push_used(cfg, mem, st, ctr, io):
    c = cfg[0]
    if c.call >= 0:
        ctr[C_BYTES_COPIED] += io[IO_SIZE]  # copy_to_guest of the results
        st32(mem, ctr, SIDE_DEVICE, c.call + _FASTCALL_RESULT, 0)
        return 0
    h = io[IO_HANDLE]  # completions come in ring order: h is the inuse head
    st[DEV_TAKEN] -= 1
    ioq_complete(mem, ctr, c.ring, c.inuse_idx, h, c.ioq_count)
    if c.txc != 0:
        _send_txc(c, mem, st, ctr, h)
    st[DEV_UNSIGNALLED] += 1
    return 0


@njit(inline="always")
def interrupt_needed(cfg, mem, st, ctr, io):
    c = cfg[0]
    k = st[DEV_UNSIGNALLED]
    if k == 0 or (k < c.txmitigation and io[IO_LAST] == 0):
        return -1
    st[DEV_UNSIGNALLED] = 0
    if c.bridge == 0:
        return inject(mem, ctr, SIDE_DEVICE, c.signal, c.signal_mb)
    return bridge_signal(
        mem, ctr, c.signal, c.evq_ring, c.evq_inuse, c.evq_count, c.evq_north, 0, c.signal_mb
    )


@njit(inline="always")
def disable_kicks(cfg, mem, st, ctr, io):
    return mailbox_disable(mem, ctr, SIDE_DEVICE, cfg[0].south)


@njit(inline="always")
def enable_kicks(cfg, mem, st, ctr, io):
    return mailbox_enable(mem, ctr, SIDE_DEVICE, cfg[0].south, cfg[0].signal_mb)


implement(CFG, sys.modules[__name__])


# --- Python side ---------------------------------------------------------------------------------
def _ring(opts: Options) -> bool:
    return opts.transport == "ring"


def layout(opts: Options, needs: Needs) -> ArenaLayout:
    ring = _ring(opts)
    return ioq_layout(
        opts.queue_size,
        needs.max_segments if opts.sg == "pool" and ring else 0,
        call=not ring,
        eventq_size=opts.eventq_size if ring and opts.signal_path == "eventq" else 0,
        txc=ring and opts.tx_completion == "event",
    )


def _fill_eventq(mem: np.ndarray, c: np.void, lay: ArenaLayout, name: str, count: int) -> dict:
    """Register the event queue ``name`` ("txc": venet's; "evq0": the PCI bridge's): its slots
    posted to the host, its mailboxes as the guest and the host leave them; turn it on in the
    config and set the offsets the jitted code reads (the CFG fields of its prefix). Returns
    the offsets."""
    txc = name == "txc"
    region = lay.area(f"{name}.ioq").offset
    idx = lay.area(f"{name}.ioq").at("idx")
    q = {
        "ring": lay.area(f"{name}.ioq").at("ring"),
        "inuse": idx + IOQ_RING_IDX.size * IOQ_IDX_INUSE,
        "count": count,
        "north": mailbox_offset(region, SHM_NORTH),
        "south": mailbox_offset(region, SHM_SOUTH),
        "base": lay.area(f"{name}.events").offset,
    }
    register_ioq(mem, region, count)
    mem[q["north"] + MBOX_ENABLED] = 1  # the guest takes this queue's signal; the host's is off
    size = VENET_EVENT_TXC.size if txc else EVENT_BYTES
    valid = idx + IOQ_RING_IDX.size * IOQ_IDX_VALID
    post_events(mem, q["ring"], valid, count, q["base"], size, gpa=not txc)
    prefix = "txc" if txc else "evq"
    c["txc" if txc else "bridge"] = 1
    for key, value in q.items():
        if f"{prefix}_{key}" in CFG.names:
            c[f"{prefix}_{key}"] = value
    return q


def build(opts: Options, needs: Needs) -> Instance:
    lay = layout(opts, needs)
    ioq = lay.area("ioq")
    cfg = np.zeros(1, dtype=CFG)
    c = cfg[0]
    c["ioq_count"] = opts.queue_size
    c["ring"] = ioq.at("ring")
    c["valid_idx"] = ioq.at("idx") + IOQ_RING_IDX.size * IOQ_IDX_VALID
    c["inuse_idx"] = ioq.at("idx") + IOQ_RING_IDX.size * IOQ_IDX_INUSE
    c["north"] = mailbox_offset(ioq.offset, SHM_NORTH)
    c["south"] = mailbox_offset(ioq.offset, SHM_SOUTH)
    ring = _ring(opts)
    if opts.sg == "pool" and ring:
        c["pool"] = lay.area("sg_pool").offset
        c["entry"] = lay.params["sg_entry_size"]
    c["txmitigation"] = opts.txmitigation
    c["call"] = -1 if ring else lay.area("call").offset
    c["eoi_windows"] = int(opts.eoi == "windows")
    c["signal_mb"] = int(opts.signal_barrier == "mb")
    c["sg_pool"] = int(opts.sg == "pool" and ring)
    mem = new_mem(lay.size)
    register_ioq(mem, ioq.offset, opts.queue_size)
    mem[c["north"] + MBOX_ENABLED] = 1  # the driver takes the ring's signals
    mem[c["south"] + MBOX_ENABLED] = 1  # the device sleeps waiting for kicks
    c["signal"] = c["north"]
    if ring and opts.tx_completion == "event":
        q = _fill_eventq(mem, c, lay, "txc", opts.queue_size)
        c["signal"] = q["north"]  # venetdev_rx signals the event queue, not the ring
    c["irq"] = c["signal"]
    if ring and opts.signal_path == "eventq":
        q = _fill_eventq(mem, c, lay, "evq0", opts.eventq_size)
        c["irq"] = q["north"]  # the bridge's event queue raises the MSI
    drv = np.full(DRV_SLOTS, -1, dtype=np.int64)
    drv[DRV_OPEN] = 0
    dev = np.zeros(DEV_BASE + (opts.queue_size if c["txc"] else 0), dtype=np.int64)
    return Instance(NAME, lay, cfg, mem, drv, dev)


def _audit_eventq(mem: np.ndarray, name: str, ring: int, inuse: int, count: int) -> list[str]:
    """An event queue at the end: every event consumed, every slot posted back to the host."""
    out = []
    sown = mem[ring + DESC_SOWN : ring + DESC_BYTES * count : DESC_BYTES]
    if not np.all(sown):
        out.append(f"{name}: {int(count - np.count_nonzero(sown))} events not consumed")
    h, t, full = index_state(mem, inuse)
    if full or h != t:
        out.append(f"{name}: inuse index head {h}, tail {t}, full {full}: not empty")
    return out


def audit(inst: Instance) -> list[str]:
    """End-of-run invariants: every slot back with the driver and empty, indexes agree, every
    event consumed, no signal's wakeup left open, no TX-complete event lost."""
    c, mem = inst.cfg[0], inst.mem
    count = int(c["ioq_count"])
    out = []
    ring = int(c["ring"])
    b = view(mem, np.uint8)
    sown = b[ring + DESC_SOWN : ring + DESC_BYTES * count : DESC_BYTES]
    valid = b[ring + DESC_VALID : ring + DESC_BYTES * count : DESC_BYTES]
    if np.any(sown):
        out.append(f"{int(np.count_nonzero(sown))} slots still owned by the device")
    if np.any(valid):
        out.append(f"{int(np.count_nonzero(valid))} slots still valid (not reaped)")
    heads = []
    for name in ("valid_idx", "inuse_idx"):
        h, t, full = index_state(mem, int(c[name]))
        if full or h != t:
            out.append(f"{name}: head {h}, tail {t}, full {full}: not empty")
        heads.append(h)
    if heads[0] != heads[1]:
        out.append(f"valid head {heads[0]} and inuse head {heads[1]} disagree")
    if c["txc"]:
        out += _audit_eventq(mem, "txc", int(c["txc_ring"]), int(c["txc_inuse"]), count)
        if inst.dev[DEV_TXC_LOST]:
            out.append(f"{int(inst.dev[DEV_TXC_LOST])} TX-complete events found the queue full")
    if c["bridge"]:
        n = int(c["evq_count"])
        out += _audit_eventq(mem, "evq0", int(c["evq_ring"]), int(c["evq_inuse"]), n)
        if inst.drv[DRV_OPEN]:
            out.append("the signal's wakeup left open by the guest")
        if mem[int(c["signal"]) + MBOX_PENDING]:
            out.append("the device's signal still pending")
    return out


def check(opts: Options, needs: Needs, batch: int) -> str | None:
    if batch > opts.queue_size:
        return (
            f"batch = {batch} is larger than the ring (queue_size = {opts.queue_size}): "
            "lower the batch or raise queue_size"
        )
    if opts.transport == "call" and opts.tx_completion == "event":
        return (
            'tx_completion = "event" needs the ring transport (a call() completes inside its '
            'exit): use transport = "ring" or tx_completion = "ring"'
        )
    return None


MODEL = ModelDef(
    name=NAME,
    summary="vbus IOQ + shm-signal, the venet TX path as shipped (one TX queue, prio 0: vbus-enet.c "
    "queue_init); device signals delivered through the PCI bridge's event queue; SG through "
    "the pre-registered venet_sg pool",
    options=Options,
    build=build,
    layout=layout,
    audit=audit,
    check=check,
)
