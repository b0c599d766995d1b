"""virtio split virtqueue: the Linux driver and a vhost/QEMU-style device over the real layout.

Follows the virtio 1.x "Split Virtqueues" rules and the code paths of Linux
``drivers/virtio/virtio_ring.c`` (add, kick_prepare, get_buf, disable/enable_cb) and
``drivers/vhost/vhost.c`` (get_vq_desc, add_used, notify, disable/enable_notify). Options:

- ``event_idx``: EVENT_IDX suppression (used_event / avail_event) or flag suppression
  (NO_NOTIFY / NO_INTERRUPT);
- ``indirect``: a request of more than one segment goes out as one INDIRECT descriptor pointing
  at a table in its own memory (as Linux does when the feature is on);
- ``publish``: ``"add"`` publishes avail.idx after every add (Linux since 2012), ``"kick"`` only
  at the end of a batch (the 2009 driver of the seed's era);
- ``avail_event``: ``"vhost"`` writes avail_event only when re-enabling kicks; ``"qemu"`` also on
  every pop, as QEMU's virtqueue_pop does (so under EVENT_IDX QEMU never really stops kicks);
- ``used_batch``: the device publishes used.idx once every k completions (and when it runs
  empty). Default: vhost-net's, ``VHOST_NET_BATCH`` = 64 (at most the queue size):
  ``handle_tx_copy`` keeps finished heads in ``vq->heads`` and ``vhost_tx_batch`` /
  ``vhost_net_signal_used`` add them with one used.idx write once 64 are done, before a busy
  poll of an empty ring, and when the ring runs empty (``drivers/vhost/net.c``); 1 is a device
  that publishes every completion (vhost-scsi's ``vhost_add_used`` per command, QEMU's
  ``virtqueue_push``);
- ``signal_batch``: the device decides whether to interrupt once k completions have been
  published since its last decision (and when it runs empty). Default: ``used_batch``, as
  vhost-net, whose ``vhost_add_used_and_signal_n`` decides with every flush; ``used_batch`` 1
  with a larger ``signal_batch`` is vhost-scsi's completion work (``vhost_add_used`` per
  command, one ``vhost_signal`` after the batch);
- ``in_order``: VIRTIO_F_IN_ORDER: descriptors are allocated and used in ring order, the device
  takes each head after the last chain it took without reading the avail ring (vhost's
  ``next_avail_head``) and writes one used element per flush (the id of the batch's last
  buffer), and the driver's free list is a counter;
- ``reap``: the driver's interrupt policy: ``"napi"`` (disable in the handler, poll at most
  ``napi_budget`` buffers, re-enable with a re-check), ``"get_buf"`` (interrupts stay armed in the
  handler and every ``virtqueue_get_buf`` re-arms used_event), ``"delayed"``
  (``virtqueue_enable_cb_delayed``: re-arm at 3/4 of the outstanding buffers);
- ``lookahead``: W > 0 lets the device read ahead over W available entries and serve the
  highest class first (it reads each candidate's class from the ioprio field of the request
  header at the chain's head, as a virtio-blk device could), completing out of order; every
  extra entry examined costs its reads. Illegal with IN_ORDER;
- ``tx_timer_ns``: the 2009 QEMU virtio-net TX mitigation timer (150000 ns there): a kick
  disables notifications and arms the timer; the queue is flushed when it fires.
"""

from __future__ import annotations

import sys
from typing import Literal

import numpy as np
from numba import njit
from pydantic import Field

from vbench.counters import (
    C_DESC_READ,
    C_DESC_WRITTEN,
    C_RING_SLOTS,
    C_SEGMENTS,
    IO_DIR,
    IO_HANDLE,
    IO_LAST,
    IO_LEN,
    IO_NOW,
    IO_PRIO,
    IO_REQ,
    IO_SEGS,
    IO_SIZE,
    IO_TRIGGERED,
    IO_WAKE_AT,
    SIDE_DEVICE,
    SIDE_DRIVER,
)
from vbench.layout import (
    SPLIT_MAX_QUEUE,
    VIRTIO_PCI_VRING_ALIGN,
    VRING_AVAIL_F_NO_INTERRUPT,
    VRING_DESC_F_INDIRECT,
    VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
    VRING_USED_F_NO_NOTIFY,
    ArenaLayout,
    split_layout,
)
from vbench.memory import (
    ARENA_GPA,
    ld16,
    ld32,
    ld64,
    mb,
    need_event,
    new_mem,
    req_of_addr,
    rmb,
    seg_addr,
    seg_len,
    st16,
    st32,
    st64,
    view,
    wmb,
)
from vbench.models.interface import Instance, ModelDef, Needs, implement
from vbench.models.used_batching import UsedBatching, batches_problem

NAME = "virtio-split"

CFG = np.dtype(
    [
        ("split_n", np.int64),
        ("desc", np.int64),
        ("avail", np.int64),
        ("used", np.int64),
        ("ind", np.int64),
        ("ind_stride", np.int64),
        ("event_idx", np.int64),
        ("indirect", np.int64),
        ("publish_on_add", np.int64),
        ("qemu_avail_event", np.int64),
        ("used_batch", np.int64),
        ("signal_batch", np.int64),
        ("in_order", np.int64),
        ("reap_policy", np.int64),
        ("napi_budget", np.int64),
        ("tx_timer_ns", np.int64),
        ("lookahead", np.int64),
        ("hdr", np.int64),  # offset of the request headers (look-ahead only)
    ]
)
REAP_GET_BUF, REAP_DELAYED, REAP_NAPI = 0, 1, 2
REAP_POLICIES = {"get_buf": REAP_GET_BUF, "delayed": REAP_DELAYED, "napi": REAP_NAPI}

# driver private state (Linux keeps these in struct vring_virtqueue and desc_extra[])
DRV_FREE_HEAD, DRV_NUM_FREE, DRV_AVAIL_SHADOW, DRV_NUM_ADDED, DRV_LAST_USED, DRV_FLAGS_SHADOW = (
    range(6)
)
DRV_REAPED, DRV_IO_ACTIVE, DRV_IO_LAST_ID, DRV_IO_NEXT, DRV_IO_LAST_LEN = range(
    6, 11
)  # NAPI; in-order
DRV_BASE = 12  # then NEXT[n] (free-list links), TOKEN[n] (request per head), CHAIN[n] (descs)
# device private state (vhost_virtqueue)
DEV_LAST_AVAIL, DEV_AVAIL_CACHE, DEV_USED_SHADOW, DEV_SIGNALLED, DEV_PENDING, DEV_FLAGS = range(6)
DEV_IO_LAST_ID, DEV_IO_LAST_LEN, DEV_TIMER_ARMED, DEV_TIMER_AT, DEV_WIN, DEV_IO_NEXT_HEAD = range(
    6, 12
)
DEV_BASE = 12  # then the look-ahead window: HEAD[n], CLASS[n] (DEV_WIN entries in ring order)


class Options(UsedBatching):
    """Options of the split ring; see the module docstring for what each one means."""

    queue_size: int = Field(
        256, ge=1, le=SPLIT_MAX_QUEUE, description="descriptors in the ring: a power of two ≤ 32768"
    )
    event_idx: bool = Field(
        True,
        description="EVENT_IDX suppression (used_event / avail_event), or flag suppression "
        "(NO_NOTIFY / NO_INTERRUPT)",
    )
    indirect: bool = Field(
        True,
        description="a multi-segment request goes out as one INDIRECT descriptor pointing at a "
        "table in its own memory, as Linux does when the feature is on",
    )
    publish: Literal["add", "kick"] = Field(
        "add",
        description="add: avail.idx published after every add (Linux since 2012); kick: only at "
        "the end of a batch (the 2009 driver)",
    )
    avail_event: Literal["vhost", "qemu"] = Field(
        "vhost",
        description="vhost: the device writes avail_event only when re-enabling kicks; qemu: "
        "also on every pop, as virtqueue_pop (so under EVENT_IDX kicks never really stop)",
    )
    align: int = Field(
        VIRTIO_PCI_VRING_ALIGN,
        ge=4,
        description="the used ring's alignment in bytes, a power of two (vring_init's align; "
        "4096 is legacy PCI's VIRTIO_PCI_VRING_ALIGN)",
    )
    in_order: bool = Field(
        False,
        description="VIRTIO_F_IN_ORDER: descriptors allocated and used in ring order (the "
        "device does not read the avail ring), one used element per flush, the driver's free "
        "list a counter",
    )
    reap: Literal["napi", "get_buf", "delayed"] = Field(
        "napi",
        description="the driver's interrupt policy: napi (disable in the handler, poll at most "
        "napi_budget, re-enable with a re-check), get_buf (every get_buf re-arms used_event), "
        "delayed (enable_cb_delayed: re-arm at 3/4 of the outstanding buffers)",
    )
    napi_budget: int = Field(
        64, ge=1, description="buffers one NAPI poll reaps at most before re-enabling (reap = napi)"
    )
    tx_timer_ns: float = Field(
        0.0,
        ge=0,
        description="the 2009 QEMU virtio-net TX mitigation timer (150000 there; 0: none): a kick "
        "disables notifications and arms it, the queue is flushed when it fires",
    )
    lookahead: int = Field(
        0,
        ge=0,
        description="W > 0: the device reads ahead over W available entries and serves the "
        "highest class first (the ioprio of each request header), out of order; not with in_order",
    )


# Every operation is written once, in a per-queue form ``<op>_q(c, mem, st, b, ctr, io)``: ``c``
# is the queue's config record and ``b`` the index of the queue's first word in the private
# state array ``st``. The interface operations (at the end) run them on queue 0 of a lone ring;
# virtio_mq runs them on each of its queues.


# --- driver ------------------------------------------------------------------------------------
@njit(inline="always")
def add_q(c, mem, st, b, ctr, io):
    n = c.split_n
    segs = io[IO_SEGS]
    size = io[IO_SIZE]
    req = io[IO_REQ]
    use_ind = c.indirect != 0 and segs > 1
    need = 1 if use_ind else segs
    if st[b + DRV_NUM_FREE] < need:
        return 0
    wflag = VRING_DESC_F_WRITE if io[IO_DIR] != 0 else 0
    head = st[b + DRV_FREE_HEAD]
    nxt = DRV_BASE
    if use_ind:
        tbl = c.ind + head * c.ind_stride
        for j in range(segs):
            d = tbl + 16 * j
            last = j == segs - 1
            st64(mem, ctr, SIDE_DRIVER, d, seg_addr(req, size, segs, j))
            st32(mem, ctr, SIDE_DRIVER, d + 8, seg_len(size, segs, j))
            st16(mem, ctr, SIDE_DRIVER, d + 12, wflag | (0 if last else VRING_DESC_F_NEXT))
            st16(mem, ctr, SIDE_DRIVER, d + 14, 0 if last else j + 1)
        d = c.desc + 16 * head
        st64(mem, ctr, SIDE_DRIVER, d, ARENA_GPA + tbl)
        st32(mem, ctr, SIDE_DRIVER, d + 8, 16 * segs)
        st16(mem, ctr, SIDE_DRIVER, d + 12, VRING_DESC_F_INDIRECT)
        st16(mem, ctr, SIDE_DRIVER, d + 14, st[b + nxt + head])
        ctr[C_DESC_WRITTEN] += segs + 1
        # n is a power of two (checked with the options): & (n - 1) is % n without a division
        free = (head + 1) & (n - 1) if c.in_order != 0 else st[b + nxt + head]
    else:
        i = head
        for j in range(segs):
            d = c.desc + 16 * i
            last = j == segs - 1
            link = (i + 1) & (n - 1) if c.in_order != 0 else st[b + nxt + i]
            st64(mem, ctr, SIDE_DRIVER, d, seg_addr(req, size, segs, j))
            st32(mem, ctr, SIDE_DRIVER, d + 8, seg_len(size, segs, j))
            st16(mem, ctr, SIDE_DRIVER, d + 12, wflag | (0 if last else VRING_DESC_F_NEXT))
            st16(mem, ctr, SIDE_DRIVER, d + 14, link)
            i = link
        ctr[C_DESC_WRITTEN] += segs
        free = i
    if c.lookahead > 0:
        h = c.hdr + 16 * head  # virtio_blk_outhdr: type, ioprio, sector
        st32(mem, ctr, SIDE_DRIVER, h, 1 if io[IO_DIR] == 0 else 0)
        st32(mem, ctr, SIDE_DRIVER, h + 4, io[IO_PRIO])
        st64(mem, ctr, SIDE_DRIVER, h + 8, req)
    st[b + DRV_FREE_HEAD] = free
    st[b + DRV_NUM_FREE] -= need
    ctr[C_RING_SLOTS] += need
    st[b + DRV_BASE + n + head] = req
    st[b + DRV_BASE + 2 * n + head] = need
    shadow = st[b + DRV_AVAIL_SHADOW]
    st16(mem, ctr, SIDE_DRIVER, c.avail + 4 + 2 * (shadow & (n - 1)), head)
    shadow = (shadow + 1) & 0xFFFF
    st[b + DRV_AVAIL_SHADOW] = shadow
    st[b + DRV_NUM_ADDED] += 1
    if c.publish_on_add != 0:
        wmb(mem, ctr)
        st16(mem, ctr, SIDE_DRIVER, c.avail + 2, shadow)
    return 1


@njit(inline="always")
def kick_needed_q(c, mem, st, b, ctr, io):
    if io[IO_LAST] == 0:
        return -1
    n = c.split_n
    new = st[b + DRV_AVAIL_SHADOW]
    old = (new - st[b + DRV_NUM_ADDED]) & 0xFFFF
    if c.publish_on_add == 0:
        wmb(mem, ctr)
        st16(mem, ctr, SIDE_DRIVER, c.avail + 2, new)
    st[b + DRV_NUM_ADDED] = 0
    mb(mem, ctr, SIDE_DRIVER)
    if c.event_idx != 0:
        ev = ld16(mem, ctr, SIDE_DRIVER, c.used + 4 + 8 * n)
        return 1 if need_event(ev, new, old) else 0
    flags = ld16(mem, ctr, SIDE_DRIVER, c.used)
    return 0 if flags & VRING_USED_F_NO_NOTIFY else 1


@njit(inline="always")
def reap_q(c, mem, st, b, ctr, io):
    n = c.split_n
    if c.reap_policy == REAP_NAPI and st[b + DRV_REAPED] >= c.napi_budget:
        return -1  # budget spent: the poll ends here and is rescheduled
    last = st[b + DRV_LAST_USED]
    if c.in_order != 0 and st[b + DRV_IO_ACTIVE] != 0:
        head = st[b + DRV_IO_NEXT]  # inside an in-order batch: no ring access needed
    else:
        if ld16(mem, ctr, SIDE_DRIVER, c.used + 2) == last:
            return -1
        rmb(mem, ctr)
        e = c.used + 4 + 8 * (last & (n - 1))
        head = ld32(mem, ctr, SIDE_DRIVER, e)
        ln = ld32(mem, ctr, SIDE_DRIVER, e + 4)
        ctr[C_DESC_READ] += 1
        if c.in_order != 0:
            # one element per batch carries the id and the length of its last buffer
            st[b + DRV_IO_ACTIVE] = 1
            st[b + DRV_IO_LAST_ID] = head
            st[b + DRV_IO_LAST_LEN] = ln
            head = st[b + DRV_IO_NEXT]
        else:
            io[IO_LEN] = ln
    if head >= n or st[b + DRV_BASE + 2 * n + head] == 0:
        return -2  # a used id the driver never made available: protocol violation
    req = st[b + DRV_BASE + n + head]
    chain = st[b + DRV_BASE + 2 * n + head]
    if c.in_order != 0:
        st[b + DRV_IO_NEXT] = (head + chain) & (n - 1)
        if head == st[b + DRV_IO_LAST_ID]:
            st[b + DRV_IO_ACTIVE] = 0
            io[IO_LEN] = st[b + DRV_IO_LAST_LEN]  # the element's length is its last buffer's
        else:
            io[IO_LEN] = 0  # the device wrote no length for buffers inside a batch
    else:
        # detach_buf: the chain's private links already lead from head to its last descriptor
        i = head
        for _ in range(chain - 1):
            i = st[b + DRV_BASE + i]
        st[b + DRV_BASE + i] = st[b + DRV_FREE_HEAD]
        st[b + DRV_FREE_HEAD] = head
    st[b + DRV_NUM_FREE] += chain
    st[b + DRV_BASE + 2 * n + head] = 0
    st[b + DRV_REAPED] += 1
    last = (last + 1) & 0xFFFF
    st[b + DRV_LAST_USED] = last
    if (st[b + DRV_FLAGS_SHADOW] & VRING_AVAIL_F_NO_INTERRUPT) == 0:
        # virtqueue_get_buf_ctx_split re-arms on every buffer, in flags mode too:
        # virtio_store_mb(used_event = last_used)
        st16(mem, ctr, SIDE_DRIVER, c.avail + 4 + 2 * n, last)
        mb(mem, ctr, SIDE_DRIVER)
    return req


@njit(inline="always")
def disable_interrupts_q(c, mem, st, b, ctr, io):
    st[b + DRV_REAPED] = 0
    if c.reap_policy == REAP_GET_BUF:
        return 0  # the handler leaves interrupts armed; get_buf re-arms as it goes
    if (st[b + DRV_FLAGS_SHADOW] & VRING_AVAIL_F_NO_INTERRUPT) == 0:
        st[b + DRV_FLAGS_SHADOW] |= VRING_AVAIL_F_NO_INTERRUPT
        if c.event_idx != 0 and io[IO_TRIGGERED] != 0:
            # virtqueue_disable_cb_split: "If device triggered an event already it won't
            # trigger one again: no need to disable" (event_triggered, set by vring_interrupt)
            return 0
        if c.event_idx != 0:
            # Linux writes used_event = 0 here ("a hack"): interrupts only at the u16 wrap
            st16(mem, ctr, SIDE_DRIVER, c.avail + 4 + 2 * c.split_n, 0)
        else:
            st16(mem, ctr, SIDE_DRIVER, c.avail, st[b + DRV_FLAGS_SHADOW])
    return 0


@njit(inline="always")
def enable_interrupts_q(c, mem, st, b, ctr, io):
    if c.reap_policy == REAP_NAPI and st[b + DRV_REAPED] >= c.napi_budget:
        return 0  # budget exhausted: stay disabled and poll again (napi_schedule)
    last = st[b + DRV_LAST_USED]
    if st[b + DRV_FLAGS_SHADOW] & VRING_AVAIL_F_NO_INTERRUPT:
        st[b + DRV_FLAGS_SHADOW] &= ~VRING_AVAIL_F_NO_INTERRUPT
        if c.event_idx == 0:
            st16(mem, ctr, SIDE_DRIVER, c.avail, st[b + DRV_FLAGS_SHADOW])
    bufs = 0
    if c.reap_policy == REAP_DELAYED:
        # virtqueue_enable_cb_delayed: interrupt once 3/4 of the outstanding buffers are used
        bufs = (((st[b + DRV_AVAIL_SHADOW] - last) & 0xFFFF) * 3) // 4
    # virtqueue_enable_cb_prepare_split: "Always do both" (the flag and used_event), so the
    # flags mode writes used_event too
    st16(mem, ctr, SIDE_DRIVER, c.avail + 4 + 2 * c.split_n, (last + bufs) & 0xFFFF)
    mb(mem, ctr, SIDE_DRIVER)  # virtqueue_poll: the lost-wakeup re-check
    pending = (ld16(mem, ctr, SIDE_DRIVER, c.used + 2) - last) & 0xFFFF
    return 0 if pending > (bufs if c.event_idx != 0 else 0) else 1


# --- device ------------------------------------------------------------------------------------
@njit  # out of line: only this option uses it; keeps the hot path small
def _lookahead_take(c, mem, st, b, ctr):
    """Fill the private window from the avail ring in ring order (the ring itself is consumed
    in order, so no entry can be overwritten), reading each new entry's class from its request
    header; then serve the highest class in the window, oldest first among equals."""
    n = c.split_n
    while st[b + DEV_WIN] < c.lookahead and st[b + DEV_LAST_AVAIL] != st[b + DEV_AVAIL_CACHE]:
        la = st[b + DEV_LAST_AVAIL]
        head = ld16(mem, ctr, SIDE_DEVICE, c.avail + 4 + 2 * (la & (n - 1)))
        k = st[b + DEV_WIN]
        st[b + DEV_BASE + k] = head
        st[b + DEV_BASE + n + k] = ld32(mem, ctr, SIDE_DEVICE, c.hdr + 16 * head + 4)
        ctr[C_DESC_READ] += 1
        st[b + DEV_WIN] = k + 1
        st[b + DEV_LAST_AVAIL] = (la + 1) & 0xFFFF
    w = st[b + DEV_WIN]
    if w == 0:
        return -1
    best = 0
    for k in range(1, w):
        if st[b + DEV_BASE + n + k] > st[b + DEV_BASE + n + best]:
            best = k
    head = st[b + DEV_BASE + best]
    for k in range(best, w - 1):
        st[b + DEV_BASE + k] = st[b + DEV_BASE + k + 1]
        st[b + DEV_BASE + n + k] = st[b + DEV_BASE + n + k + 1]
    st[b + DEV_WIN] = w - 1
    return head


@njit(inline="always")
def avail_ready_q(c, mem, st, b, ctr):
    """1 if the queue has an available entry to pop, else 0, making exactly the reads (and the
    read barrier) with which pop_q would find that out; a pop_q that follows reads no more.
    For a device choosing among queues (virtio-mq). Not for a look-ahead device."""
    la = st[b + DEV_LAST_AVAIL]
    if la != st[b + DEV_AVAIL_CACHE]:
        return 1
    ai = ld16(mem, ctr, SIDE_DEVICE, c.avail + 2)
    st[b + DEV_AVAIL_CACHE] = ai
    if ai == la:
        return 0
    rmb(mem, ctr)
    return 1


@njit(inline="always")
def used_ready_q(c, mem, st, b, ctr):
    """1 if reap_q would take a buffer now, else 0, with the read reap_q makes to find the
    ring empty (a reap_q that follows re-reads that line from its own cache: no cost). For a
    driver choosing among queues (virtio-mq)."""
    if c.reap_policy == REAP_NAPI and st[b + DRV_REAPED] >= c.napi_budget:
        return 0
    if c.in_order != 0 and st[b + DRV_IO_ACTIVE] != 0:
        return 1
    return 0 if ld16(mem, ctr, SIDE_DRIVER, c.used + 2) == st[b + DRV_LAST_USED] else 1


@njit(inline="always")
def irq_decision_due_q(st, b):
    """False when interrupt_needed_q would answer -1 without touching anything: no used entry
    pending and nothing published since the last decision."""
    return st[b + DEV_PENDING] > 0 or st[b + DEV_USED_SHADOW] != st[b + DEV_SIGNALLED]


@njit(inline="always")
def pop_q(c, mem, st, b, ctr, io):
    n = c.split_n
    la = st[b + DEV_LAST_AVAIL]
    if c.lookahead > 0:
        if st[b + DEV_WIN] < c.lookahead and la == st[b + DEV_AVAIL_CACHE]:
            ai = ld16(mem, ctr, SIDE_DEVICE, c.avail + 2)  # look for more to choose from
            st[b + DEV_AVAIL_CACHE] = ai
            if ai != la:
                rmb(mem, ctr)
        head = _lookahead_take(c, mem, st, b, ctr)
        if head < 0:
            return -1
        la = st[b + DEV_LAST_AVAIL]
    else:
        if la == st[b + DEV_AVAIL_CACHE]:
            ai = ld16(mem, ctr, SIDE_DEVICE, c.avail + 2)
            st[b + DEV_AVAIL_CACHE] = ai
            if ai == la:
                return -1
            rmb(mem, ctr)
        if c.in_order != 0:
            # vhost's in-order pop (Jason Wang's "vhost: basic in order support", 2025:
            # vhost_get_vq_desc_n, drivers/vhost/vhost.c): the next head is the descriptor
            # after the last chain taken (vq->next_avail_head); the avail ring entry is not read
            head = st[b + DEV_IO_NEXT_HEAD]
        else:
            head = ld16(mem, ctr, SIDE_DEVICE, c.avail + 4 + 2 * (la & (n - 1)))
        la = (la + 1) & 0xFFFF
        st[b + DEV_LAST_AVAIL] = la
    if c.event_idx != 0 and c.qemu_avail_event != 0:
        st16(mem, ctr, SIDE_DEVICE, c.used + 4 + 8 * n, la)
    d = c.desc + 16 * head
    addr = ld64(mem, ctr, SIDE_DEVICE, d)
    ln = ld32(mem, ctr, SIDE_DEVICE, d + 8)
    fl = ld16(mem, ctr, SIDE_DEVICE, d + 12)
    nx = ld16(mem, ctr, SIDE_DEVICE, d + 14)
    ctr[C_DESC_READ] += 1
    base = c.desc
    limit = n
    indirect = fl & VRING_DESC_F_INDIRECT
    if indirect:
        base = addr - ARENA_GPA
        limit = ln // 16
        d = base
        addr = ld64(mem, ctr, SIDE_DEVICE, d)
        ln = ld32(mem, ctr, SIDE_DEVICE, d + 8)
        fl = ld16(mem, ctr, SIDE_DEVICE, d + 12)
        nx = ld16(mem, ctr, SIDE_DEVICE, d + 14)
        ctr[C_DESC_READ] += 1
    first = addr
    total = ln
    wrote = fl & VRING_DESC_F_WRITE
    segs = 1
    while fl & VRING_DESC_F_NEXT:
        if segs >= limit or nx >= limit:
            return -2  # a loop or a link out of the table: protocol violation
        d = base + 16 * nx
        ln = ld32(mem, ctr, SIDE_DEVICE, d + 8)
        fl = ld16(mem, ctr, SIDE_DEVICE, d + 12)
        nx = ld16(mem, ctr, SIDE_DEVICE, d + 14)
        ld64(mem, ctr, SIDE_DEVICE, d)
        ctr[C_DESC_READ] += 1
        total += ln
        wrote |= fl & VRING_DESC_F_WRITE
        segs += 1
    ctr[C_SEGMENTS] += segs
    # in order, the next chain starts after this one's table slots: one if indirect, else one
    # per segment. Stored in either mode: behind an in_order test the simulator measured 1-3 %
    # slower (benchmarks/ab.py, virtio-split and virtio-mq), unconditional level with before
    st[b + DEV_IO_NEXT_HEAD] = (head + (1 if indirect else segs)) & (n - 1)
    io[IO_SIZE] = total
    io[IO_SEGS] = segs
    io[IO_HANDLE] = head
    io[IO_LEN] = total if wrote else 0
    return req_of_addr(first)


@njit(inline="always")
def push_used_q(c, mem, st, b, ctr, io):
    st[b + DEV_PENDING] += 1
    if c.in_order != 0:
        # IN_ORDER: one used element per flush, for the batch's last buffer
        st[b + DEV_IO_LAST_ID] = io[IO_HANDLE]
        st[b + DEV_IO_LAST_LEN] = io[IO_LEN]
        return 0
    u = st[b + DEV_USED_SHADOW]
    e = c.used + 4 + 8 * (u & (c.split_n - 1))
    st32(mem, ctr, SIDE_DEVICE, e, io[IO_HANDLE])
    st32(mem, ctr, SIDE_DEVICE, e + 4, io[IO_LEN])
    ctr[C_DESC_WRITTEN] += 1
    st[b + DEV_USED_SHADOW] = (u + 1) & 0xFFFF
    return 0


@njit(inline="always")
def interrupt_needed_q(c, mem, st, b, ctr, io):
    pend = st[b + DEV_PENDING]
    if pend > 0:
        if pend < c.used_batch and io[IO_LAST] == 0:
            return -1
        if c.in_order != 0:
            u = st[b + DEV_USED_SHADOW]
            e = c.used + 4 + 8 * (u & (c.split_n - 1))
            st32(mem, ctr, SIDE_DEVICE, e, st[b + DEV_IO_LAST_ID])
            st32(mem, ctr, SIDE_DEVICE, e + 4, st[b + DEV_IO_LAST_LEN])
            ctr[C_DESC_WRITTEN] += 1
            st[b + DEV_USED_SHADOW] = (u + pend) & 0xFFFF
        wmb(mem, ctr)
        st16(mem, ctr, SIDE_DEVICE, c.used + 2, st[b + DEV_USED_SHADOW])
        st[b + DEV_PENDING] = 0
    new = st[b + DEV_USED_SHADOW]
    old = st[b + DEV_SIGNALLED]
    if new == old:
        return -1  # nothing published since the last decision
    if ((new - old) & 0xFFFF) < c.signal_batch and io[IO_LAST] == 0:
        return -1  # vhost_signal after signal_batch completions or when the ring runs empty
    st[b + DEV_SIGNALLED] = new
    mb(mem, ctr, SIDE_DEVICE)
    if c.event_idx == 0:
        flags = ld16(mem, ctr, SIDE_DEVICE, c.avail)
        return 0 if flags & VRING_AVAIL_F_NO_INTERRUPT else 1
    ev = ld16(mem, ctr, SIDE_DEVICE, c.avail + 4 + 2 * c.split_n)
    return 1 if need_event(ev, new, old) else 0


@njit(inline="always")
def disable_kicks_q(c, mem, st, b, ctr, io):
    if c.event_idx == 0 and (st[b + DEV_FLAGS] & VRING_USED_F_NO_NOTIFY) == 0:
        st[b + DEV_FLAGS] |= VRING_USED_F_NO_NOTIFY
        st16(mem, ctr, SIDE_DEVICE, c.used, st[b + DEV_FLAGS])
    if c.tx_timer_ns > 0:
        # QEMU 2009 virtio_net_handle_tx_timer: the first kick arms the timer; work waits
        if st[b + DEV_TIMER_ARMED] == 0:
            st[b + DEV_TIMER_ARMED] = 1
            st[b + DEV_TIMER_AT] = io[IO_NOW] + c.tx_timer_ns
        if io[IO_NOW] < st[b + DEV_TIMER_AT]:
            io[IO_WAKE_AT] = st[b + DEV_TIMER_AT]
            return 1
        st[b + DEV_TIMER_ARMED] = 0  # virtio_net_tx_timer: flush the queue now
    return 0


@njit(inline="always")
def enable_kicks_q(c, mem, st, b, ctr, io):
    if c.event_idx != 0:
        st16(mem, ctr, SIDE_DEVICE, c.used + 4 + 8 * c.split_n, st[b + DEV_AVAIL_CACHE])
    elif st[b + DEV_FLAGS] & VRING_USED_F_NO_NOTIFY:
        st[b + DEV_FLAGS] &= ~VRING_USED_F_NO_NOTIFY
        st16(mem, ctr, SIDE_DEVICE, c.used, st[b + DEV_FLAGS])
    mb(mem, ctr, SIDE_DEVICE)  # the lost-wakeup re-check
    return 1 if ld16(mem, ctr, SIDE_DEVICE, c.avail + 2) == st[b + DEV_AVAIL_CACHE] else 0


# --- the interface: a lone ring is queue 0 of its own config and state arrays ---------------
@njit(inline="always")
def add(cfg, mem, st, ctr, io):
    return add_q(cfg[0], mem, st, 0, ctr, io)


@njit(inline="always")
def kick_needed(cfg, mem, st, ctr, io):
    return kick_needed_q(cfg[0], mem, st, 0, ctr, io)


@njit(inline="always")
def reap(cfg, mem, st, ctr, io):
    return reap_q(cfg[0], mem, st, 0, ctr, io)


@njit(inline="always")
def disable_interrupts(cfg, mem, st, ctr, io):
    return disable_interrupts_q(cfg[0], mem, st, 0, ctr, io)


@njit(inline="always")
def enable_interrupts(cfg, mem, st, ctr, io):
    return enable_interrupts_q(cfg[0], mem, st, 0, ctr, io)


@njit(inline="always")
def pop(cfg, mem, st, ctr, io):
    return pop_q(cfg[0], mem, st, 0, ctr, io)


@njit(inline="always")
def push_used(cfg, mem, st, ctr, io):
    return push_used_q(cfg[0], mem, st, 0, ctr, io)


@njit(inline="always")
def interrupt_needed(cfg, mem, st, ctr, io):
    return interrupt_needed_q(cfg[0], mem, st, 0, ctr, io)


@njit(inline="always")
def disable_kicks(cfg, mem, st, ctr, io):
    return disable_kicks_q(cfg[0], mem, st, 0, ctr, io)


@njit(inline="always")
def enable_kicks(cfg, mem, st, ctr, io):
    return enable_kicks_q(cfg[0], mem, st, 0, ctr, io)


implement(CFG, sys.modules[__name__])


# --- Python side: build, layout, audit, check ---------------------------------------------------
def layout(opts: Options, needs: Needs) -> ArenaLayout:
    ind = needs.max_segments if opts.indirect and needs.max_segments > 1 else 0
    return split_layout(opts.queue_size, opts.align, ind, headers=opts.lookahead > 0)


def build(opts: Options, needs: Needs) -> Instance:
    lay = layout(opts, needs)
    n = opts.queue_size
    cfg = np.zeros(1, dtype=CFG)
    c = cfg[0]
    c["split_n"] = n
    c["desc"] = lay.area("desc").offset
    c["avail"] = lay.area("avail").offset
    c["used"] = lay.area("used").offset
    if "indirect" in {a.name for a in lay.areas}:
        c["ind"] = lay.area("indirect").offset
        c["ind_stride"] = lay.params["indirect_stride"]
    c["event_idx"] = int(opts.event_idx)
    c["indirect"] = int(opts.indirect)
    c["publish_on_add"] = int(opts.publish == "add")
    c["qemu_avail_event"] = int(opts.avail_event == "qemu")
    c["used_batch"] = opts.used_batch
    c["signal_batch"] = opts.signal_batch
    c["in_order"] = int(opts.in_order)
    c["reap_policy"] = REAP_POLICIES[opts.reap]
    c["napi_budget"] = opts.napi_budget
    c["tx_timer_ns"] = int(opts.tx_timer_ns)
    c["lookahead"] = opts.lookahead
    c["hdr"] = lay.area("headers").offset if opts.lookahead > 0 else 0
    drv = np.zeros(DRV_BASE + 3 * n, dtype=np.int64)
    drv[DRV_BASE : DRV_BASE + n] = np.arange(1, n + 1)  # free list 0 -> 1 -> ... (desc_extra.next)
    if opts.in_order:
        drv[DRV_BASE + n - 1] = 0  # in order the free "list" is the ring itself, a counter
    drv[DRV_NUM_FREE] = n
    dev = np.zeros(DEV_BASE + 2 * n, dtype=np.int64)
    return Instance(NAME, lay, cfg, new_mem(lay.size), drv, dev)


def audit(inst: Instance) -> list[str]:
    """End-of-run invariants: every descriptor free, indexes consistent."""
    c, drv, dev, mem = inst.cfg[0], inst.drv, inst.dev, inst.mem
    n = int(c["split_n"])
    out = []
    if drv[DRV_NUM_FREE] != n:
        out.append(f"{drv[DRV_NUM_FREE]} of {n} descriptors on the free list")
    seen = np.zeros(n, dtype=bool)
    i = int(drv[DRV_FREE_HEAD])
    for _ in range(int(drv[DRV_NUM_FREE])):
        if i >= n or seen[i]:
            out.append(f"free list broken at descriptor {i}")
            break
        seen[i] = True
        i = int(drv[DRV_BASE + i])
    if np.any(drv[DRV_BASE + 2 * n : DRV_BASE + 3 * n]):
        out.append("a chain is still outstanding")
    h = view(mem, np.uint16)
    avail_idx = int(h[(int(c["avail"]) + 2) >> 1])
    used_idx = int(h[(int(c["used"]) + 2) >> 1])
    if not (avail_idx == drv[DRV_AVAIL_SHADOW] == dev[DEV_LAST_AVAIL]):
        out.append(
            f"avail.idx {avail_idx}, driver shadow {drv[DRV_AVAIL_SHADOW]}, device {dev[DEV_LAST_AVAIL]}"
        )
    if not (used_idx == dev[DEV_USED_SHADOW] == drv[DRV_LAST_USED] == avail_idx):
        out.append(
            f"used.idx {used_idx}, device shadow {dev[DEV_USED_SHADOW]}, driver last_used {drv[DRV_LAST_USED]}"
        )
    return out


def check(opts: Options, needs: Needs, batch: int) -> str | None:
    n = opts.queue_size
    if n & (n - 1):
        return f"queue_size = {n} is not a power of two: the split ring needs one (e.g. {1 << n.bit_length()})"
    if batch > n:
        return f"batch = {batch} is larger than the ring (queue_size = {n}): lower the batch or raise queue_size"
    if needs.max_segments > n and not opts.indirect:
        return (
            f"a chain of {needs.max_segments} segments is longer than the queue (queue_size = {n}): "
            "turn indirect on or raise queue_size"
        )
    if opts.align & (opts.align - 1):
        return f"align = {opts.align} is not a power of two"
    if opts.lookahead > 0 and opts.in_order:
        return (
            f"lookahead = {opts.lookahead} completes requests out of order, which IN_ORDER forbids: "
            "set lookahead = 0 or in_order = false"
        )
    if opts.lookahead > n:
        return (
            f"lookahead = {opts.lookahead} is larger than the ring (queue_size = {n}): at most {n}"
        )
    return batches_problem(opts)


MODEL = ModelDef(
    name=NAME,
    summary="virtio split virtqueue: chains or indirect tables, EVENT_IDX or flag suppression",
    options=Options,
    build=build,
    layout=layout,
    audit=audit,
    check=check,
)
