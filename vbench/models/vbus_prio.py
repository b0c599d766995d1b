"""vbus with one IOQ per priority class and host-to-guest signals routed through event queues.

This is vbus's priority *as proposed*: it never shipped. venet registered one TX queue with prio
0 (``vbus-enet.c``: ``queue_init`` passes prio 0 to ``vbus_driver_ioq_alloc``), which is
:mod:`vbench.models.vbus_ioq`; this model is what the design allows, for the thread's question
"what does one do with priority?".

Why a model of its own: vbus's ``prio`` does not reorder requests; it orders *notifications*.
Each class gets its own request IOQ (the venet TX path of :mod:`vbench.models.vbus_ioq`, whose
jitted ring and shm-signal primitives this module imports rather than repeats), registered with
its class as prio. The device never sees prio: which IOQ it serves next is its own schedule
(``schedule``: the highest class with work, as virtio-mq's device, or round-robin), so that a
comparison isolates what prio does from what a device scheduler does. Each IOQ's service pass
ends with its signal when it completed work (venet's ``venetdev_rx``: ``if (dirty)
ioq_signal``), also while other IOQs still have work: ``pop`` sends the signal of an IOQ it
finds run dry before the next request is served (``IO_SIGNALED``), and a signal also goes out
every ``txmitigation`` completions of one IOQ. Where prio acts is on the way back: a device signal that really fires (its north mailbox enabled and no
notification pending) is delivered as an *event* in event queue ``min(prio, E - 1)``, and the
event queue's own shm-signal raises one MSI on that queue's vector.

``eventq = "shipped"``: the guest registered one event queue (E = 1), so prio has no effect:
events are handled first come, first served. ``eventq = "designed"``: one event queue per class
(E = min(classes, 8)), the guest servicing the highest queue, and the highest open IOQ, first.

Event-queue slot ownership (as the AlacrityVM pci-bridge sets it up): the *guest* allocates the
events and, once at registration, posts every slot to the host on the valid index (valid = 1,
sown = 1: the valid index is then full forever). The host is the producer: it writes the event
payload into the slot at the inuse tail while that slot is south-owned, pushes the inuse tail
and flips the slot to the guest. The guest consumes at the inuse head while the slot is
north-owned and pops it, which flips it back to the host: an empty event queue has every slot
with the host. Every device signal owns one event and a signal whose event is still queued (or
being handled: its ``pending`` bit is set) is merged, so at most one event per signal is ever
queued: ``eventq_size >= classes`` is all the room the host needs. The guest's ``ioq_signal``
back to the host after draining a queue is kept (a ``dirty`` write), but the host's mailbox on
the event queue stays disabled because it never has to wait for room; the guest's memset of a
consumed event is left out (the host overwrites the header anyway).

Guest side: the event-queue ISR disables each event queue's mailbox and defers; the deferred
handler consumes events (marking the signalled IOQ "open" and starting its signal's wakeup:
``dirty = 0``), reaps the open IOQs one completion at a time, and closes an IOQ that has nothing
left (``pending = 0``, re-checked if ``dirty`` was set again), which is what merges a burst of
device signals into one event.
"""

from __future__ import annotations

import sys
from typing import Literal

import numpy as np
from numba import njit
from pydantic import Field

from vbench.counters import (
    IO_HANDLE,
    IO_LAST,
    IO_PRIO,
    IO_SIGNALED,
    SIDE_DEVICE,
    SIDE_DRIVER,
)
from vbench.layout import (
    IOQ_IDX_INUSE,
    IOQ_IDX_VALID,
    IOQ_MAX_COUNT,
    IOQ_RING_HEAD,
    IOQ_RING_IDX,
    SHM_NORTH,
    SHM_SOUTH,
    VBUS_EVENTQ_MAX,
    ArenaLayout,
    ioq_ring_offset,
    vbus_prio_layout,
)
from vbench.memory import ld8, ld32, new_mem
from vbench.models.interface import Instance, ModelDef, ModelOptions, Needs, implement
from vbench.models.vbus_ring import (
    DESC_BYTES,
    DESC_SOWN,
    DESC_VALID,
    EVENT_BYTES,
    IDX_HEAD,
    MBOX_ENABLED,
    MBOX_PENDING,
    SG_WHAT,
    bridge_signal,
    bridge_take,
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
)
from vbench.workload import MAX_CLASSES

NAME = "vbus-prio"

# cfg element 0 holds the globals (vp_q .. vp_designed); element 1 + k describes request IOQ k,
# element 1 + Q + e event queue e (vp_count .. vp_events). One dtype for all elements.
CFG = np.dtype(
    [
        ("vp_q", np.int64),  # request IOQs = priority classes
        ("vp_e", np.int64),  # event queues
        ("vp_txmitigation", np.int64),
        ("vp_sg_pool", np.int64),
        ("vp_designed", np.int64),  # 1: serve the highest open IOQ first; 0: event order
        ("vp_strict", np.int64),  # the device serves: 1 the highest class with work; 0 round-robin
        ("vp_count", np.int64),  # descriptors in this queue
        ("vp_ring", np.int64),
        ("vp_valid_idx", np.int64),
        ("vp_inuse_idx", np.int64),
        ("vp_north", np.int64),  # the guest's mailbox of this queue's shm-signal
        ("vp_south", np.int64),  # the host's mailbox
        ("vp_pool", np.int64),  # request IOQ: its venet_sg pool
        ("vp_entry", np.int64),
        ("vp_events", np.int64),  # event queue: its payload area
        ("vp_signal_mb", np.int64),  # 1: shm-signal's store-then-check uses a full barrier
    ]
)

_HANDLE_Q = 1 << 16  # io[IO_HANDLE] = queue * _HANDLE_Q + slot (slots < IOQ_MAX_COUNT)

# driver private state: the last push's inject, the number of open IOQs, then an open flag per
# IOQ (at DRV_BASE + k), then the open IOQs in the order they were opened (at DRV_BASE + Q + i)
DRV_KICK = 0
DRV_OPEN_COUNT = 1
DRV_BASE = 2
# device private state: the IOQ served last (round-robin), then per IOQ the unsignalled
# completions (at DEV_BASE + k), the iterator position on its inuse index (ioq_iter: pos, at
# DEV_BASE + Q + k) and the slots read but not yet completed, in order (at DEV_BASE + 2Q + k)
DEV_LAST_SERVED = 0
DEV_BASE = 1


class Options(ModelOptions):
    """Options of the vbus priority model; see the module docstring."""

    queue_size: int = Field(256, ge=2, le=IOQ_MAX_COUNT, description="descriptors per class IOQ")
    txmitigation: int = Field(
        10,
        ge=1,
        description="a class IOQ signals every k of its completions and when it runs dry",
    )
    sg: Literal["pool", "flat"] = Field("pool", description=SG_WHAT)
    eventq: Literal["shipped", "designed"] = Field(
        "designed",
        description="shipped: one event queue, so prio has no effect; designed: one per class "
        "(up to 8), the guest servicing the highest first",
    )
    eventq_size: int = Field(1024, ge=1, le=65536, description="slots per event queue")
    signal_barrier: Literal["wmb", "mb"] = Field(
        "wmb", description="shm-signal's store-then-check barrier (see vbus-ioq)"
    )
    schedule: Literal["strict", "round-robin"] = Field(
        "strict",
        description="which class IOQ the device serves next: the highest with work, or in turn "
        "(a device choice, not vbus's: prio routes signals, not service)",
    )


# --- config records -------------------------------------------------------------------------------
# The config array holds the global record, one per class IOQ and one per event queue: at most
# 1 + 2 * 8 records. Masking an index with _CONFIG_MASK is exact for every valid one and tells
# LLVM it is not negative, so numba's negative-index wraparound (a compare and a select on each
# record access) folds away (measured with benchmarks/ab.py: see the commit).
_CONFIG_MASK = 31
assert 1 + MAX_CLASSES + VBUS_EVENTQ_MAX <= _CONFIG_MASK + 1


@njit(inline="always")
def _config_of(cfg, index):
    """Record ``index`` of the config array (0 the globals, then the IOQs, then event queues)."""
    return cfg[index & _CONFIG_MASK]


# --- driver (north) ------------------------------------------------------------------------------
@njit(inline="always")
def add(cfg, mem, st, ctr, io):
    g = cfg[0]
    k = min(io[IO_PRIO], g.vp_q - 1)
    c = _config_of(cfg, 1 + k)
    if (
        ioq_post(
            mem,
            ctr,
            io,
            c.vp_ring,
            c.vp_valid_idx,
            c.vp_inuse_idx,
            c.vp_count,
            c.vp_pool,
            c.vp_entry,
            g.vp_sg_pool,
        )
        == 0
    ):
        return 0
    st[DRV_KICK] = inject(mem, ctr, SIDE_DRIVER, c.vp_south, g.vp_signal_mb)  # ignores prio
    return 1


@njit(inline="always")
def kick_needed(cfg, mem, st, ctr, io):
    r = st[DRV_KICK]
    st[DRV_KICK] = -1
    return r


@njit(inline="always")
def _open(cfg, mem, st, ctr, k):
    """An event named IOQ k's signal: start its wakeup (dirty = 0) and mark it open."""
    nq = cfg[0].vp_q
    signal_open(mem, ctr, _config_of(cfg, 1 + k).vp_north)
    if st[DRV_BASE + k] == 0:
        st[DRV_BASE + k] = 1
        st[DRV_BASE + nq + st[DRV_OPEN_COUNT]] = k
        st[DRV_OPEN_COUNT] += 1


@njit(inline="always")
def _take_events(cfg, mem, st, ctr):
    """Consume every queued event, highest event queue first. 0, or -2 for a bad event."""
    g = cfg[0]
    nq = g.vp_q
    ne = g.vp_e
    for i in range(ne):
        q = _config_of(cfg, 1 + nq + ne - 1 - i)
        took = 0
        while True:
            found, k = bridge_take(mem, ctr, q.vp_ring, q.vp_inuse_idx, q.vp_count)
            if not found:
                break  # still the host's: no more events here
            if k < 0 or k >= nq:
                return -2
            _open(cfg, mem, st, ctr, k)
            took += 1
        if took > 0:
            inject(mem, ctr, SIDE_DRIVER, q.vp_south, g.vp_signal_mb)  # its mailbox is off
    return 0


@njit(inline="always")
def _reap_ioq(c, mem, ctr):
    """vbus_ioq's driver reap on one IOQ: the request at the valid head, or -1."""
    return ioq_reap(mem, ctr, c.vp_ring, c.vp_valid_idx, c.vp_count)


@njit(inline="always")
def reap(cfg, mem, st, ctr, io):
    g = cfg[0]
    nq = g.vp_q
    if _take_events(cfg, mem, st, ctr) != 0:
        return -2
    order = DRV_BASE + nq
    while st[DRV_OPEN_COUNT] > 0:
        n = st[DRV_OPEN_COUNT]
        i = 0
        if g.vp_designed != 0:
            for j in range(1, n):
                if st[order + j] > st[order + i]:
                    i = j
        k = st[order + i]
        c = _config_of(cfg, 1 + k)
        r = _reap_ioq(c, mem, ctr)
        if r >= 0:
            return r
        # drained: the signal's wakeup ends, unless the device signalled again meanwhile
        if signal_close(mem, ctr, c.vp_north, g.vp_signal_mb) == 0:
            continue  # look at this IOQ again
        for j in range(i, n - 1):
            st[order + j] = st[order + j + 1]
        st[DRV_OPEN_COUNT] = n - 1
        st[DRV_BASE + k] = 0
    return -1


@njit(inline="always")
def disable_interrupts(cfg, mem, st, ctr, io):
    g = cfg[0]
    for e in range(g.vp_e):
        mailbox_disable(mem, ctr, SIDE_DRIVER, _config_of(cfg, 1 + g.vp_q + e).vp_north)
    return 0


@njit(inline="always")
def enable_interrupts(cfg, mem, st, ctr, io):
    g = cfg[0]
    r = 0 if st[DRV_OPEN_COUNT] > 0 else 1
    for e in range(g.vp_e):
        if (
            mailbox_enable(
                mem, ctr, SIDE_DRIVER, _config_of(cfg, 1 + g.vp_q + e).vp_north, cfg[0].vp_signal_mb
            )
            == 0
        ):
            r = 0
    return r


# --- device (south) ------------------------------------------------------------------------------
@njit(inline="always")
def pop(cfg, mem, st, ctr, io):
    g = cfg[0]
    nq = g.vp_q
    last = st[DEV_LAST_SERVED]
    signals = -1
    for i in range(1, nq + 1):
        # the device's schedule: strict (the highest class with work) or round-robin
        k = nq - i if g.vp_strict != 0 else (last + i) % nq
        c = _config_of(cfg, 1 + k)
        cur = DEV_BASE + nq + k
        taken = cur + nq
        if st[taken] == 0:
            st[cur] = ld32(mem, ctr, SIDE_DEVICE, c.vp_inuse_idx + IDX_HEAD)  # seek to the head
        h = st[cur]
        d = c.vp_ring + DESC_BYTES * h
        if st[taken] == c.vp_count:
            continue  # every slot taken, none completed: not run dry
        if ld8(mem, ctr, SIDE_DEVICE, d + DESC_SOWN) == 0:
            if st[DEV_BASE + k] > 0:
                # this queue ran dry: its service pass ends with its signal, as venet's
                # venetdev_rx ends its loop with `if (dirty) ioq_signal(...)`
                st[DEV_BASE + k] = 0
                signals = max(signals, 0) + _signal(cfg, mem, ctr, k)
                io[IO_SIGNALED] = signals
            continue
        st[cur] = h + 1 if h + 1 < c.vp_count else 0  # ioq_seek_next: the next slot
        st[taken] += 1
        st[DEV_LAST_SERVED] = k
        io[IO_HANDLE] = k * _HANDLE_Q + h
        return ioq_read(mem, ctr, io, d, c.vp_pool, c.vp_entry, c.vp_count, g.vp_sg_pool)
    return -1


@njit(inline="always")
def push_used(cfg, mem, st, ctr, io):
    k = io[IO_HANDLE] // _HANDLE_Q
    h = io[IO_HANDLE] - k * _HANDLE_Q  # completions come in ring order: h is the inuse head
    c = _config_of(cfg, 1 + k)
    st[DEV_BASE + 2 * cfg[0].vp_q + k] -= 1
    ioq_complete(mem, ctr, c.vp_ring, c.vp_inuse_idx, h, c.vp_count)
    st[DEV_BASE + k] += 1
    return 0


@njit(inline="always")
def _signal(cfg, mem, ctr, k):
    """IOQ k's signal, delivered through event queue ``min(k, E - 1)`` (the connector's routing
    by prio): 1 when that raised an MSI, else 0 (see :func:`vbus_ring.bridge_signal`)."""
    g = cfg[0]
    q = _config_of(cfg, 1 + g.vp_q + min(k, g.vp_e - 1))
    return bridge_signal(
        mem,
        ctr,
        _config_of(cfg, 1 + k).vp_north,
        q.vp_ring,
        q.vp_inuse_idx,
        q.vp_count,
        q.vp_north,
        k,
        g.vp_signal_mb,
    )


@njit(inline="always")
def interrupt_needed(cfg, mem, st, ctr, io):
    g = cfg[0]
    nq = g.vp_q
    decided = False
    msi = 0
    if io[IO_LAST] == 0:
        k = st[DEV_LAST_SERVED]
        if st[DEV_BASE + k] >= g.vp_txmitigation:
            st[DEV_BASE + k] = 0
            decided = True
            msi += _signal(cfg, mem, ctr, k)
    else:
        last = st[DEV_LAST_SERVED]
        for i in range(1, nq + 1):
            k = nq - i if g.vp_strict != 0 else (last + i) % nq  # in service order
            if st[DEV_BASE + k] > 0:
                st[DEV_BASE + k] = 0
                decided = True
                msi += _signal(cfg, mem, ctr, k)
    if not decided:
        return -1
    return msi


@njit(inline="always")
def disable_kicks(cfg, mem, st, ctr, io):
    g = cfg[0]
    for k in range(g.vp_q):
        mailbox_disable(mem, ctr, SIDE_DEVICE, _config_of(cfg, 1 + k).vp_south)
    return 0


@njit(inline="always")
def enable_kicks(cfg, mem, st, ctr, io):
    g = cfg[0]
    r = 1
    for k in range(g.vp_q):
        if (
            mailbox_enable(
                mem, ctr, SIDE_DEVICE, _config_of(cfg, 1 + k).vp_south, cfg[0].vp_signal_mb
            )
            == 0
        ):
            r = 0
    return r


implement(CFG, sys.modules[__name__])


# --- Python side ---------------------------------------------------------------------------------
def eventqs(opts: Options, classes: int) -> int:
    """As shipped the guest registered one event queue; as designed one per class, up to 8."""
    return 1 if opts.eventq == "shipped" else min(classes, VBUS_EVENTQ_MAX)


def layout(opts: Options, needs: Needs) -> ArenaLayout:
    sg = needs.max_segments if opts.sg == "pool" else 0
    return vbus_prio_layout(
        opts.queue_size, needs.classes, sg, eventqs(opts, needs.classes), opts.eventq_size
    )


def _fill_queue(c: np.void, region: int, count: int) -> None:
    c["vp_count"] = count
    c["vp_ring"] = region + ioq_ring_offset()
    c["vp_valid_idx"] = region + IOQ_RING_HEAD.offset("idx") + IOQ_RING_IDX.size * IOQ_IDX_VALID
    c["vp_inuse_idx"] = region + IOQ_RING_HEAD.offset("idx") + IOQ_RING_IDX.size * IOQ_IDX_INUSE
    c["vp_north"] = mailbox_offset(region, SHM_NORTH)
    c["vp_south"] = mailbox_offset(region, SHM_SOUTH)


def build(opts: Options, needs: Needs) -> Instance:
    lay = layout(opts, needs)
    nq = needs.classes
    ne = eventqs(opts, nq)
    cfg = np.zeros(1 + nq + ne, dtype=CFG)
    g = cfg[0]
    g["vp_q"] = nq
    g["vp_e"] = ne
    g["vp_txmitigation"] = opts.txmitigation
    g["vp_sg_pool"] = int(opts.sg == "pool")
    g["vp_designed"] = int(opts.eventq == "designed")
    g["vp_strict"] = int(opts.schedule == "strict")
    g["vp_signal_mb"] = int(opts.signal_barrier == "mb")
    mem = new_mem(lay.size)
    for k in range(nq):
        a = lay.area(f"q{k}.ioq")
        c = cfg[1 + k]
        _fill_queue(c, a.offset, opts.queue_size)
        assert c["vp_ring"] == a.at("ring")
        if opts.sg == "pool":
            c["vp_pool"] = lay.area(f"q{k}.sg_pool").offset
            c["vp_entry"] = lay.params["sg_entry_size"]
        register_ioq(mem, a.offset, opts.queue_size)
        mem[c["vp_north"] + MBOX_ENABLED] = 1  # the guest takes this IOQ's signals (as events)
        mem[c["vp_south"] + MBOX_ENABLED] = 1  # the device sleeps waiting for kicks
    n = opts.eventq_size
    for e in range(ne):
        a = lay.area(f"evq{e}.ioq")
        c = cfg[1 + nq + e]
        _fill_queue(c, a.offset, n)
        assert c["vp_ring"] == a.at("ring")
        ev = lay.area(f"evq{e}.events").offset
        c["vp_events"] = ev
        register_ioq(mem, a.offset, n)
        mem[c["vp_north"] + MBOX_ENABLED] = 1  # the guest takes this queue's MSI
        # eventq_init: every slot posted to the host with an empty event (valid index full)
        post_events(mem, int(c["vp_ring"]), int(c["vp_valid_idx"]), n, ev, EVENT_BYTES, gpa=True)
    drv = np.zeros(DRV_BASE + 2 * nq, dtype=np.int64)
    drv[DRV_KICK] = -1
    dev = np.zeros(DEV_BASE + 3 * nq, dtype=np.int64)
    dev[DEV_LAST_SERVED] = nq - 1  # round-robin starts at IOQ 0
    return Instance(NAME, lay, cfg, mem, drv, dev)


def audit(inst: Instance) -> list[str]:
    """End-of-run invariants: every request IOQ back with the driver and empty, every event
    queue empty with all slots posted to the host, no IOQ left open, no signal pending."""
    cfg, mem = inst.cfg, inst.mem
    nq, ne = int(cfg[0]["vp_q"]), int(cfg[0]["vp_e"])
    out: list[str] = []
    for j in range(nq + ne):
        c = cfg[1 + j]
        name = f"q{j}" if j < nq else f"evq{j - nq}"
        count, ring = int(c["vp_count"]), int(c["vp_ring"])
        sown = mem[ring + DESC_SOWN : ring + DESC_BYTES * count : DESC_BYTES]
        valid = mem[ring + DESC_VALID : ring + DESC_BYTES * count : DESC_BYTES]
        vh, vt, vf = index_state(mem, int(c["vp_valid_idx"]))
        ih, it, ifull = index_state(mem, int(c["vp_inuse_idx"]))
        if j < nq:
            if np.any(sown):
                out.append(f"{name}: {int(np.count_nonzero(sown))} slots still owned by the device")
            if np.any(valid):
                out.append(f"{name}: {int(np.count_nonzero(valid))} slots still valid (not reaped)")
            if vf or vh != vt:
                out.append(f"{name}: valid index head {vh}, tail {vt}, full {vf}: not empty")
            if vh != ih:
                out.append(f"{name}: valid head {vh} and inuse head {ih} disagree")
        else:
            if not np.all(sown):
                out.append(f"{name}: {int(count - np.count_nonzero(sown))} events not consumed")
            if not np.all(valid):
                out.append(f"{name}: {int(count - np.count_nonzero(valid))} slots not posted")
            if not vf or vh != vt:
                out.append(f"{name}: valid index head {vh}, tail {vt}, full {vf}: not all posted")
        if ifull or ih != it:
            out.append(f"{name}: inuse index head {ih}, tail {it}, full {ifull}: not empty")
        for side, m in (("north", int(c["vp_north"])), ("south", int(c["vp_south"]))):
            if mem[m + MBOX_PENDING]:
                out.append(f"{name}: {side} signal still pending")
    if inst.drv[DRV_OPEN_COUNT] != 0:
        out.append(f"{int(inst.drv[DRV_OPEN_COUNT])} IOQs left open by the guest")
    return out


def check(opts: Options, needs: Needs, batch: int) -> str | None:
    if batch > opts.queue_size:
        return (
            f"batch = {batch} is larger than a class IOQ (queue_size = {opts.queue_size}): "
            "lower the batch or raise queue_size"
        )
    if opts.eventq_size < needs.classes:
        return (
            f"eventq_size = {opts.eventq_size} cannot hold one event per signal "
            f"({needs.classes} classes): raise eventq_size to at least {needs.classes}"
        )
    return None


MODEL = ModelDef(
    name=NAME,
    summary="vbus as proposed, never shipped: one IOQ per priority class; device signals delivered "
    "as events through one event queue (shipped) or one per class, highest first (designed)",
    options=Options,
    build=build,
    layout=layout,
    audit=audit,
    check=check,
    queue_per_class=True,  # one IOQ per class
)
