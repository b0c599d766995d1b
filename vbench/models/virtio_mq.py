"""virtio multi-queue: one split virtqueue per priority class, the highest class served first.

A virtio device may expose several virtqueues (virtio-blk ``num_queues``, virtio-net
multiqueue), each with its own rings, its own event suppression and its own MSI-X vector. Giving
every priority class its own queue is the way virtio can offer priorities without changing the
ring format: the device looks at the most urgent queue first, and a request of a high class
never waits behind a backlog of low-class requests in the same ring (head-of-line blocking).

The rings themselves are the split rings of :mod:`vbench.models.virtio_split`, unchanged: every
operation here calls that module's per-queue form of the operation (``add_q``, ``pop_q``...) on
one queue's config record, its range of the private state (a base index, not a slice: slices
would cost reference-count updates on every call) and, through the offsets in its config, its
rings in the shared arena; so each ring's algorithm is written once. The split operations read
their config by field name, so queue q's config is element ``1 + q`` of this model's own record
array, whose dtype has all of the split ring's fields plus this model's (element 0 holds the
global ones).

Per operation:

- ``add`` puts a request on the queue of its class (``min(prio, queues - 1)``);
- ``kick_needed``: every queue takes its own notification decision (its own doorbell, so two
  queues notified are two exits). The engine asks once per add and counts one kick per answer,
  so a batch that moves from queue p to queue q closes p's batch at that add (p's decision is
  the answer for that add) and the end of the batch decides the queue in use then. When the
  last add of a batch is also the one that switched queue, two decisions fall on one answer: the
  answer is 1 if either queue kicks, and the counters are kept exact by counting the other
  decision here (a second kick counts its kick and its exit; its exit's time is not charged,
  since only the engine charges exits);
- ``pop`` serves the highest non-empty queue (``schedule = "strict"``, the default) or the
  queues in turn (``"round-robin"``), a device choice offered for vbus-prio too; finding a
  queue empty costs what the split ring's pop costs to find it empty (a read of its
  ``avail.idx`` when the cached index is used up). Each queue keeps its own used batch
  (``used_batch``), as each vhost-net queue's ``handle_tx_copy`` does, flushing it when the
  queue runs empty (``vhost_tx_batch`` / ``vhost_net_signal_used`` in ``drivers/vhost/net.c``,
  see :mod:`vbench.models.used_batching`): a
  queue that ``pop`` looks at and finds dry, while the device goes on to another queue's
  request, publishes its completions and decides its interrupt then, before that request is
  served (``IO_SIGNALED``; vbus-prio signals a class IOQ run dry by the same rule); with every
  queue dry, the ring-empty decision of ``interrupt_needed`` does it for all. (Before
  2026-12-07 a queue's batch waited for the whole device to run dry.) With ``used_batch`` and
  ``signal_batch`` 1, the default (see :class:`Options`), every completion is published and
  decided as it is pushed, and a pop finds nothing left to do;
- ``push_used`` completes on the queue the request was popped from: ``pop`` answers the handle
  ``queue * queue_size + head``, so a device may hold requests of several queues and complete
  them in any order;
- ``interrupt_needed`` asks every queue (the split ring's decision is free for a queue with
  nothing published) and returns how many queues notify: each one has its own vector, so k
  queues notifying are k interrupts;
- ``reap`` takes completions of the highest class first, as a guest that services its most
  urgent queue's vector first would;
- ``disable_*`` / ``enable_*`` apply to every queue; an ``enable`` reports "nothing pending"
  only if every queue does (every queue is re-armed, none is skipped).

The options are the split ring's, plus ``queues`` (default: one per workload class). The TX
mitigation timer and the look-ahead window are single-queue device policies and are refused.
"""

from __future__ import annotations

import sys
import warnings
from typing import Literal

import numpy as np
from numba import njit
from pydantic import Field

from vbench.counters import (
    C_IRQS_SUPPRESSED,
    C_KICKS,
    C_KICKS_SUPPRESSED,
    C_VM_EXITS,
    IO_HANDLE,
    IO_LAST,
    IO_PRIO,
    IO_SIGNALED,
)
from vbench.layout import LINE, Area, ArenaLayout
from vbench.memory import new_mem
from vbench.models import virtio_split as split
from vbench.models.interface import Instance, ModelDef, Needs, implement

NAME = "virtio-mq"

# numba notes, once per compilation, that this model's record (the split ring's fields and more)
# "has been considered a subtype" of the split ring's when the split operations are typed for it;
# that is exactly the intent (they read only the split ring's fields), so it is noise to a user.
warnings.filterwarnings("ignore", message=r".*has been considered a subtype of Record")
MAX_QUEUES = 8

# The split ring's config fields first (same names, same order: the split operations find them
# by name), then this model's globals, meaningful in element 0 only.
CFG = np.dtype(
    [(name, split.CFG.fields[name][0]) for name in split.CFG.names]
    + [
        ("mq_queues", np.int64),  # number of virtqueues
        ("mq_drv_stride", np.int64),  # driver state words per queue
        ("mq_dev_stride", np.int64),  # device state words per queue
        ("mq_strict", np.int64),  # the device serves: 1 the highest queue with work; 0 in turn
    ]
)

# driver private state: every queue's split-ring state (mq_drv_stride slots each), then these
# global slots, at queues * mq_drv_stride + DRV_<NAME>
DRV_OPEN = 0  # the queue whose batch is open (added to since its last kick decision), or -1
DRV_CLOSING = 1  # a queue whose batch the last add closed by switching queue, or -1
DRV_GLOBAL_SLOTS = 2
# device private state: every queue's split-ring state (mq_dev_stride slots each), then these
# global slots, at queues * mq_dev_stride + DEV_<NAME>
DEV_LAST_SERVED = 0  # the queue served last (the round-robin schedule starts after it)
DEV_GLOBAL_SLOTS = 1
# io[IO_HANDLE] between pop and push_used: queue << _HANDLE_SHIFT | the split ring's head
# (a head is below the largest queue_size, 32768)
_HANDLE_SHIFT = 16


class Options(split.Options):
    """The split ring's options (applied to every queue) and the number of queues.

    ``used_batch`` defaults to 1 here, not to vhost-net's 64. virtio-mq is virtio's answer to
    priority, and priority is about latency: a used batch holds a queue's completions until
    ``used_batch`` are done or the queue runs dry (see ``pop``), and near saturation that costs
    the urgent class more than the queue split saves it. On ``tests/test_virtio_mq.py``'s
    priority workload (2 classes, 1.8 M req/s, 1500 bytes, batch 16), class 1's p99 is 8.3 µs
    at 1 and 14.1 µs at 64 (the split ring's: 18.2 and 39.9 µs). A throughput comparison sets
    64, and each queue then batches as a vhost-net queue does."""

    used_batch: int | None = Field(
        1,
        ge=1,
        description="completions per used.idx write, per queue (default 1: the urgent class's "
        "latency; 64 is vhost-net's, each queue flushing as it runs dry)",
    )

    queues: int | None = Field(
        None,
        ge=1,
        le=MAX_QUEUES,
        description="virtqueues, one per priority class (default: the workload's classes)",
    )
    schedule: Literal["strict", "round-robin"] = Field(
        "strict",
        description="which queue the device serves next: the highest with work, or in turn "
        "(a device choice, not the transport's)",
    )


# --- a queue's config and private state ---------------------------------------------------------
# Masks that are exact for every valid queue (q < MAX_QUEUES, a power of two) and slot index (a
# model's private state is far below 2**31 slots): they tell LLVM that the index is not negative,
# so numba's negative-index wraparound (a compare and a select on every access of a queue's
# config and private state) folds away. Measured with benchmarks/ab.py (bench.py's workload,
# medians of 7 interleaved rounds): polling 9.46 -> 10.77 and sleeping 13.59 -> 14.84 M
# simulated req/s, every counter and the event digest unchanged.
_QUEUE_MASK = MAX_QUEUES - 1
_SLOT_MASK = (1 << 31) - 1
assert MAX_QUEUES & _QUEUE_MASK == 0, "MAX_QUEUES must be a power of two"


@njit(inline="always")
def _queue(cfg, q):
    """Queue q's config record (element ``1 + q``; element 0 holds the global fields)."""
    return cfg[1 + (q & _QUEUE_MASK)]


@njit(inline="always")
def _base(q, stride):
    """Where queue q's range of a side's private state starts (or, for q = queues, the
    globals)."""
    return (q * stride) & _SLOT_MASK


# --- driver ------------------------------------------------------------------------------------
@njit(inline="always")
def add(cfg, mem, st, ctr, io):
    g = cfg[0]
    nq = g.mq_queues
    stride = g.mq_drv_stride
    globals_base = _base(nq, stride)
    q = min(max(io[IO_PRIO], 0), nq - 1)
    ok = split.add_q(_queue(cfg, q), mem, st, _base(q, stride), ctr, io)
    if ok == 1:
        cur = st[globals_base + DRV_OPEN]
        if cur >= 0 and cur != q:
            st[globals_base + DRV_CLOSING] = (
                cur  # its batch ends: decided at this add's kick_needed
            )
        st[globals_base + DRV_OPEN] = q
    return ok


@njit(inline="always")
def kick_needed(cfg, mem, st, ctr, io):
    g = cfg[0]
    nq = g.mq_queues
    stride = g.mq_drv_stride
    globals_base = _base(nq, stride)
    k = -1
    p = st[globals_base + DRV_CLOSING]
    if p >= 0:
        last = io[IO_LAST]
        io[IO_LAST] = 1
        k = split.kick_needed_q(_queue(cfg, p), mem, st, _base(p, stride), ctr, io)
        io[IO_LAST] = last
        st[globals_base + DRV_CLOSING] = -1
    q = st[globals_base + DRV_OPEN]
    if io[IO_LAST] != 0 and q >= 0:
        k2 = split.kick_needed_q(_queue(cfg, q), mem, st, _base(q, stride), ctr, io)
        st[globals_base + DRV_OPEN] = -1
        if k < 0:
            k = k2
        else:
            # two queues decided on one answer: the engine counts the answer, we the other one
            if k == 1 and k2 == 1:
                ctr[C_KICKS] += 1
                ctr[C_VM_EXITS] += 1
            elif k2 == 0 or k == 0:
                ctr[C_KICKS_SUPPRESSED] += 1
            k = 1 if (k == 1 or k2 == 1) else 0
    return k


@njit(inline="always")
def reap(cfg, mem, st, ctr, io):
    g = cfg[0]
    stride = g.mq_drv_stride
    q = g.mq_queues - 1  # the highest queue with a completion, then reap once (as pop does)
    while q > 0 and split.used_ready_q(_queue(cfg, q), mem, st, _base(q, stride), ctr) == 0:
        q -= 1
    return split.reap_q(_queue(cfg, q), mem, st, _base(q, stride), ctr, io)  # a request, -1, or -2


@njit(inline="always")
def disable_interrupts(cfg, mem, st, ctr, io):
    g = cfg[0]
    stride = g.mq_drv_stride
    for q in range(g.mq_queues):
        split.disable_interrupts_q(_queue(cfg, q), mem, st, _base(q, stride), ctr, io)
    return 0


@njit(inline="always")
def enable_interrupts(cfg, mem, st, ctr, io):
    g = cfg[0]
    stride = g.mq_drv_stride
    quiet = 1
    for q in range(g.mq_queues):
        e = split.enable_interrupts_q(_queue(cfg, q), mem, st, _base(q, stride), ctr, io)
        if e != 1:
            quiet = 0  # keep going: every queue must be re-armed
    return quiet


# --- device ------------------------------------------------------------------------------------
@njit(inline="always")
def pop(cfg, mem, st, ctr, io):
    g = cfg[0]
    stride = g.mq_dev_stride
    # find the highest queue with work by the reads pop would make to find each one empty, then
    # pop once: the ring operation sits outside the loop (inlined into a loop over queues, numba
    # adds reference-count updates of its array arguments to every call: slow)
    # the queues looked at and found dry with completions not yet published or decided (a bit
    # each): their service pass has ended
    nq = g.mq_queues
    dry = 0
    if g.mq_strict != 0:
        q = nq - 1
        while q > 0 and split.avail_ready_q(_queue(cfg, q), mem, st, _base(q, stride), ctr) == 0:
            if split.irq_decision_due_q(st, _base(q, stride)):
                dry |= 1 << q
            q -= 1
    else:
        # round-robin: the first queue with work after the one served last (the last one
        # looked at is that one itself, so an empty device reads every queue once, as strict)
        last = st[_base(nq, stride) + DEV_LAST_SERVED]
        q = last + 1 if last + 1 < nq else 0
        for _ in range(nq - 1):
            if split.avail_ready_q(_queue(cfg, q), mem, st, _base(q, stride), ctr) != 0:
                break
            if split.irq_decision_due_q(st, _base(q, stride)):
                dry |= 1 << q
            q = q + 1 if q + 1 < nq else 0
    r = split.pop_q(_queue(cfg, q), mem, st, _base(q, stride), ctr, io)
    if r >= 0:
        io[IO_HANDLE] += q << _HANDLE_SHIFT  # the handle names the queue as well
        st[_base(nq, stride) + DEV_LAST_SERVED] = q
        if dry != 0:
            # the device goes on to another queue's request: each queue it found dry flushes
            # its used batch and decides its interrupt first, as vhost-net's handle_tx does
            # when its queue runs empty (vhost_net_signal_used as the handler returns). With
            # every queue dry, the ring-empty decision does it for all (interrupt_needed).
            last = io[IO_LAST]
            io[IO_LAST] = 1  # the end of those queues' passes: publish all, then decide
            io[IO_SIGNALED] = _decide_queues(cfg, mem, st, ctr, io, dry)
            io[IO_LAST] = last
    return r


@njit(inline="always")
def push_used(cfg, mem, st, ctr, io):
    stride = cfg[0].mq_dev_stride
    h = io[IO_HANDLE]
    q = h >> _HANDLE_SHIFT  # a shift, not a division by the queue size: one per request
    io[IO_HANDLE] = h & ((1 << _HANDLE_SHIFT) - 1)
    r = split.push_used_q(_queue(cfg, q), mem, st, _base(q, stride), ctr, io)
    io[IO_HANDLE] = h
    return r


@njit(inline="always")
def interrupt_needed(cfg, mem, st, ctr, io):
    g = cfg[0]
    stride = g.mq_dev_stride
    due = -1
    n_due = 0
    for q in range(g.mq_queues):
        if split.irq_decision_due_q(st, _base(q, stride)):
            due = q
            n_due += 1
    if n_due == 0:
        return -1  # every queue would answer -1 without touching anything
    if n_due == 1:
        # the common case, outside any loop (see pop): that queue's own answer is the answer
        return split.interrupt_needed_q(_queue(cfg, due), mem, st, _base(due, stride), ctr, io)
    return _decide_queues(cfg, mem, st, ctr, io, (1 << g.mq_queues) - 1)  # every queue decides


@njit  # out of line: several queues due at once, or a queue run dry, are the rare cases
def _decide_queues(cfg, mem, st, ctr, io, queues):
    """The queues of the bit mask ``queues`` each decide (with ``io[IO_LAST]`` as given); k
    queues notifying are k interrupts (one vector each), and the suppressed decisions beyond
    the one the answer carries are counted here."""
    g = cfg[0]
    stride = g.mq_dev_stride
    sent = 0
    suppressed = 0
    for q in range(g.mq_queues):
        if (queues >> q) & 1 == 0:
            continue
        d = split.interrupt_needed_q(_queue(cfg, q), mem, st, _base(q, stride), ctr, io)
        if d >= 1:
            sent += d
        elif d == 0:
            suppressed += 1
    if sent > 0:
        ctr[C_IRQS_SUPPRESSED] += suppressed  # the engine counts only the interrupts sent
        return sent
    if suppressed > 0:
        ctr[C_IRQS_SUPPRESSED] += suppressed - 1  # the engine counts one for the answer 0
        return 0
    return -1


@njit(inline="always")
def disable_kicks(cfg, mem, st, ctr, io):
    g = cfg[0]
    stride = g.mq_dev_stride
    for q in range(g.mq_queues):
        split.disable_kicks_q(_queue(cfg, q), mem, st, _base(q, stride), ctr, io)
    return 0  # no mitigation timer (refused by check): work is never deferred


@njit(inline="always")
def enable_kicks(cfg, mem, st, ctr, io):
    g = cfg[0]
    stride = g.mq_dev_stride
    empty = 1
    for q in range(g.mq_queues):
        e = split.enable_kicks_q(_queue(cfg, q), mem, st, _base(q, stride), ctr, io)
        if e != 1:
            empty = 0  # keep going: every queue must be re-armed before the device sleeps
    return empty


implement(CFG, sys.modules[__name__])


# --- Python side: build, layout, audit, check ---------------------------------------------------
def queues_of(opts: Options, needs: Needs) -> int:
    """The number of virtqueues: as asked, or one per priority class of the workload."""
    return opts.queues if opts.queues is not None else max(needs.classes, 1)


def _split_options(opts: Options) -> split.Options:
    return split.Options(**opts.model_dump(exclude={"queues", "schedule"}))


def _align_up(x: int, a: int) -> int:
    return (x + a - 1) & ~(a - 1)


def layout(opts: Options, needs: Needs) -> ArenaLayout:
    """The split ring's layout once per queue, each ring at the next ``align`` boundary (so
    queue 0 sits exactly where a lone split ring does), areas named ``q<k>.<area>``."""
    one = split.layout(_split_options(opts), needs)
    nq = queues_of(opts, needs)
    stride = _align_up(one.size, max(opts.align, LINE))
    areas = tuple(
        Area(
            f"q{q}.{a.name}",
            a.offset + q * stride,
            a.size,
            a.align,
            a.writer,
            a.fields,
            f"queue {q} (class {q}{' and up' if q == nq - 1 and q > 0 else ''}): {a.what}",
        )
        for q in range(nq)
        for a in one.areas
    )
    params = dict(one.params)
    params["queues"] = nq
    params["queue_stride"] = stride
    return ArenaLayout(NAME, opts.queue_size, areas, params)


def build(opts: Options, needs: Needs) -> Instance:
    """One split ring built by the split model per queue, placed in one arena: each queue's
    config, driver and device state are the split ring's own, with its offsets moved."""
    lay = layout(opts, needs)
    one = split.build(_split_options(opts), needs)
    nq = queues_of(opts, needs)
    drv_stride, dev_stride = one.drv.shape[0], one.dev.shape[0]
    names = {a.name for a in lay.areas}
    cfg = np.zeros(1 + nq, dtype=CFG)
    cfg[0]["mq_queues"] = nq
    cfg[0]["mq_drv_stride"] = drv_stride
    cfg[0]["mq_dev_stride"] = dev_stride
    cfg[0]["mq_strict"] = int(opts.schedule == "strict")
    for q in range(nq):
        c = cfg[1 + q]
        for name in split.CFG.names:
            c[name] = one.cfg[0][name]
        c["desc"] = lay.area(f"q{q}.desc").offset
        c["avail"] = lay.area(f"q{q}.avail").offset
        c["used"] = lay.area(f"q{q}.used").offset
        if f"q{q}.indirect" in names:
            c["ind"] = lay.area(f"q{q}.indirect").offset
    drv = np.concatenate([np.tile(one.drv, nq), np.full(DRV_GLOBAL_SLOTS, -1, dtype=np.int64)])
    dev = np.concatenate([np.tile(one.dev, nq), np.zeros(DEV_GLOBAL_SLOTS, dtype=np.int64)])
    dev[nq * dev_stride + DEV_LAST_SERVED] = nq - 1  # round-robin starts at queue 0
    return Instance(NAME, lay, cfg, new_mem(lay.size), drv, dev)


def _queue_view(inst: Instance, q: int) -> Instance:
    """Queue q as a lone split ring (views, not copies), for the split model's audit."""
    g = inst.cfg[0]
    drv_stride, dev_stride = int(g["mq_drv_stride"]), int(g["mq_dev_stride"])
    return Instance(
        split.NAME,
        inst.layout,
        inst.cfg[1 + q : 2 + q],
        inst.mem,
        inst.drv[q * drv_stride : (q + 1) * drv_stride],
        inst.dev[q * dev_stride : (q + 1) * dev_stride],
    )


def audit(inst: Instance) -> list[str]:
    """End-of-run invariants: every queue passes the split ring's audit, no batch left open."""
    nq = int(inst.cfg[0]["mq_queues"])
    out = [f"q{q}: {p}" for q in range(nq) for p in split.audit(_queue_view(inst, q))]
    globals_base = nq * int(inst.cfg[0]["mq_drv_stride"])
    if inst.drv[globals_base + DRV_OPEN] != -1 or inst.drv[globals_base + DRV_CLOSING] != -1:
        out.append(
            f"a batch was left without a kick decision (open q{inst.drv[globals_base + DRV_OPEN]}, "
            f"closing q{inst.drv[globals_base + DRV_CLOSING]})"
        )
    return out


def check(opts: Options, needs: Needs, batch: int) -> str | None:
    nq = queues_of(opts, needs)
    if opts.tx_timer_ns != 0:
        return (
            f"tx_timer_ns = {opts.tx_timer_ns:g}: the TX mitigation timer is a single-queue device "
            "policy that virtio-mq does not model: set tx_timer_ns = 0 (or use virtio-split)"
        )
    if opts.lookahead != 0:
        return (
            f"lookahead = {opts.lookahead}: virtio-mq orders by class with one queue per class, "
            "not with a look-ahead window: set lookahead = 0 (or use virtio-split)"
        )
    if nq > MAX_QUEUES:
        return f"{nq} queues (one per class) is more than {MAX_QUEUES}: set queues <= {MAX_QUEUES}"
    if nq < needs.classes:
        return (
            f"queues = {nq} is fewer than the workload's {needs.classes} priority classes: "
            f"set queues >= {needs.classes} (or leave it unset for one queue per class)"
        )
    return split.check(_split_options(opts), needs, batch)


MODEL = ModelDef(
    name=NAME,
    summary="virtio with one split virtqueue per priority class; the device serves the highest "
    "queue with work (strict) or in turn (round-robin)",
    options=Options,
    build=build,
    layout=layout,
    audit=audit,
    check=check,
    queue_per_class=True,  # check refuses fewer queues than classes
)
