"""virtio packed virtqueue: the Linux driver and a QEMU-style device over the real layout.

Follows the virtio 1.1+ "Packed Virtqueues" rules, the packed code paths of Linux
``drivers/virtio/virtio_ring.c`` (add, kick_prepare, get_buf, disable/enable_cb) and QEMU's
``hw/virtio/virtio.c`` packed device (pop, fill/flush, should_notify, set_notification).

One ring of descriptors carries both directions: the driver makes a descriptor available by
setting AVAIL to its wrap counter and USED to the inverse; the device marks it used by setting
both to its own wrap counter. There are no indexes in shared memory, only each side's position
and wrap counter, so every "is there work" test reads a descriptor's flags. Options:

- ``queue_size``: any value from 1 to 32768 (positions wrap at N, not at a power of two);
- ``event_idx``: EVENT_IDX suppression (flags DESC with off_wrap naming the descriptor at which
  to notify) or flag suppression (ENABLE / DISABLE);
- ``indirect``: a request of more than one segment goes out as one INDIRECT descriptor pointing
  at a table of its own (one table per buffer id), as Linux does when the feature is on;
- ``used_batch``: the device writes its used descriptors once every k completions (and when it
  runs empty), the batch's first descriptor's flags last, as QEMU's fill/flush does; default
  vhost-net's 64 (see :mod:`vbench.models.used_batching`);
- ``signal_batch``: the device decides whether to interrupt once k completions have been
  written since its last decision (and when it runs empty); default ``used_batch``;
- ``in_order``: VIRTIO_F_IN_ORDER: buffers are used in the order they were made available, the
  device writes one used descriptor per flush (the id of the batch's last buffer) and skips the
  whole batch; buffer ids are the head slots, so the driver's free list is a counter.
"""

from __future__ import annotations

import sys

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
    IO_REQ,
    IO_SEGS,
    IO_SIZE,
    IO_TRIGGERED,
    SIDE_DEVICE,
    SIDE_DRIVER,
)
from vbench.layout import (
    PACKED_MAX_QUEUE,
    VRING_DESC_F_INDIRECT,
    VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
    VRING_PACKED_DESC_F_AVAIL,
    VRING_PACKED_DESC_F_USED,
    VRING_PACKED_EVENT_F_WRAP_CTR,
    VRING_PACKED_EVENT_FLAG_DESC,
    VRING_PACKED_EVENT_FLAG_DISABLE,
    VRING_PACKED_EVENT_FLAG_ENABLE,
    ArenaLayout,
    packed_layout,
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

NAME = "virtio-packed"

CFG = np.dtype(
    [
        ("packed_n", np.int64),
        ("desc", np.int64),
        ("drv_event", np.int64),  # driver event suppression area (controls interrupts)
        ("dev_event", np.int64),  # device event suppression area (controls kicks)
        ("ind", np.int64),
        ("ind_stride", np.int64),
        ("event_idx", np.int64),
        ("indirect", np.int64),
        ("used_batch", np.int64),
        ("signal_batch", np.int64),
        ("in_order", np.int64),
    ]
)

# field offsets in struct vring_packed_desc and struct vring_packed_desc_event
DESC_ADDR, DESC_LEN, DESC_ID, DESC_FLAGS = 0, 8, 12, 14
EVENT_OFF_WRAP, EVENT_FLAGS = 0, 2
AVAIL_USED = VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED
WRAP_BIT = 1 << VRING_PACKED_EVENT_F_WRAP_CTR

# driver private state (Linux: struct vring_virtqueue_packed, desc_state[], desc_extra[])
DRV_FREE_HEAD, DRV_NUM_FREE, DRV_NEXT_AVAIL, DRV_AVAIL_WRAP, DRV_NUM_ADDED = range(5)
DRV_LAST_USED, DRV_USED_WRAP, DRV_FLAGS_SHADOW = range(5, 8)
DRV_IO_ACTIVE, DRV_IO_LAST_ID, DRV_IO_LAST_LEN = range(8, 11)  # the in-order batch being reaped
DRV_BASE = 12  # then NEXT[n] (free-id links), TOKEN[n] (request per id), CHAIN[n] (descs per id)
# device private state (QEMU VirtQueue: last_avail_idx/wrap, used_idx/wrap, used_elems[])
DEV_LAST_AVAIL, DEV_AVAIL_WRAP, DEV_NEXT_USED, DEV_USED_WRAP = range(4)
DEV_PENDING, DEV_SIG_ADDED, DEV_FLAGS_SHADOW = range(4, 7)
DEV_BASE = 8  # then CHAIN[n] (descs per popped id), PEND_ID[n], PEND_LEN[n] (unwritten used)


class Options(UsedBatching):
    """Options of the packed ring; see the module docstring for what each one means."""

    queue_size: int = Field(
        256,
        ge=1,
        le=PACKED_MAX_QUEUE,
        description="descriptors in the ring: any value ≤ 32768 (positions wrap at N)",
    )
    event_idx: bool = Field(
        True,
        description="EVENT_IDX suppression (flags DESC, off_wrap naming the descriptor at which "
        "to notify, the wrap-aware test), or flag suppression (ENABLE / DISABLE)",
    )
    indirect: bool = Field(
        True,
        description="a multi-segment request goes out as one INDIRECT descriptor pointing at a "
        "table of its own (one per buffer id), as Linux does when the feature is on",
    )
    in_order: bool = Field(
        False,
        description="VIRTIO_F_IN_ORDER: buffers used in the order made available, one used "
        "descriptor per flush skipping the whole batch, the driver's free list a counter",
    )


@njit(inline="always")
def _avail_flags(wrap):
    """Flags that make a descriptor available in lap ``wrap``: AVAIL = wrap, USED = !wrap."""
    return VRING_PACKED_DESC_F_AVAIL if wrap != 0 else VRING_PACKED_DESC_F_USED


@njit(inline="always")
def _is_avail(flags, wrap):
    """The device's test: AVAIL equals its wrap counter and USED does not."""
    a = 1 if flags & VRING_PACKED_DESC_F_AVAIL else 0
    u = 1 if flags & VRING_PACKED_DESC_F_USED else 0
    return a == wrap and u != wrap


@njit(inline="always")
def _is_used(flags, wrap):
    """The driver's test (``is_used_desc_packed``): AVAIL and USED both equal its wrap counter."""
    a = 1 if flags & VRING_PACKED_DESC_F_AVAIL else 0
    u = 1 if flags & VRING_PACKED_DESC_F_USED else 0
    return a == u and u == wrap


@njit(inline="always")
def _decide(snap, new, added, wrap, n):
    """A notification decision from the peer's suppression area (one 32-bit snapshot), after
    ``added`` slots were published ending at slot ``new`` in lap ``wrap``.

    Linux ``virtqueue_kick_prepare_packed``: an event offset whose wrap bit differs from the
    current lap lies in the previous one, so it moves back by N before ``vring_need_event``."""
    flags = (snap >> 16) & 0xFFFF
    if flags != VRING_PACKED_EVENT_FLAG_DESC:
        return 0 if flags == VRING_PACKED_EVENT_FLAG_DISABLE else 1
    off_wrap = snap & 0xFFFF
    ev = off_wrap & (WRAP_BIT - 1)
    if (off_wrap >> VRING_PACKED_EVENT_F_WRAP_CTR) != wrap:
        ev -= n
    old = (new - added) & 0xFFFF
    return 1 if need_event(ev & 0xFFFF, new, old) else 0


# --- driver ------------------------------------------------------------------------------------
@njit(inline="always")
def add(cfg, mem, st, ctr, io):
    c = cfg[0]
    n = c.packed_n
    segs = io[IO_SEGS]
    size = io[IO_SIZE]
    req = io[IO_REQ]
    use_ind = c.indirect != 0 and segs > 1
    need = 1 if use_ind else segs
    if st[DRV_NUM_FREE] < need:
        return 0
    head = st[DRV_NEXT_AVAIL]
    w = st[DRV_AVAIL_WRAP]
    # IN_ORDER: the id is the head slot; otherwise the front of the free-id list
    bid = head if c.in_order != 0 else st[DRV_FREE_HEAD]
    wflag = VRING_DESC_F_WRITE if io[IO_DIR] != 0 else 0
    i = head
    if use_ind:
        # the table's entries carry only WRITE: NEXT, ids and AVAIL/USED are not used there
        tbl = c.ind + bid * c.ind_stride
        for j in range(segs):
            d = tbl + 16 * j
            st64(mem, ctr, SIDE_DRIVER, d + DESC_ADDR, seg_addr(req, size, segs, j))
            st32(mem, ctr, SIDE_DRIVER, d + DESC_LEN, seg_len(size, segs, j))
            st16(mem, ctr, SIDE_DRIVER, d + DESC_FLAGS, wflag)
        d = c.desc + 16 * head
        st64(mem, ctr, SIDE_DRIVER, d + DESC_ADDR, ARENA_GPA + tbl)
        st32(mem, ctr, SIDE_DRIVER, d + DESC_LEN, 16 * segs)
        st16(mem, ctr, SIDE_DRIVER, d + DESC_ID, bid)
        head_flags = VRING_DESC_F_INDIRECT | _avail_flags(w)
        i += 1
        if i >= n:
            i = 0
            w ^= 1
        ctr[C_DESC_WRITTEN] += segs + 1
    else:
        head_flags = 0
        for j in range(segs):
            d = c.desc + 16 * i
            fl = wflag | (0 if j == segs - 1 else VRING_DESC_F_NEXT) | _avail_flags(w)
            st64(mem, ctr, SIDE_DRIVER, d + DESC_ADDR, seg_addr(req, size, segs, j))
            st32(mem, ctr, SIDE_DRIVER, d + DESC_LEN, seg_len(size, segs, j))
            st16(mem, ctr, SIDE_DRIVER, d + DESC_ID, bid)  # Linux writes the id in each
            if j == 0:
                head_flags = fl
            else:
                st16(mem, ctr, SIDE_DRIVER, d + DESC_FLAGS, fl)
            i += 1
            if i >= n:
                i = 0
                w ^= 1
        ctr[C_DESC_WRITTEN] += segs
    # the head's flags last: the device must never see part of a chain
    wmb(mem, ctr)
    st16(mem, ctr, SIDE_DRIVER, c.desc + 16 * head + DESC_FLAGS, head_flags)
    st[DRV_NEXT_AVAIL] = i
    st[DRV_AVAIL_WRAP] = w
    st[DRV_NUM_FREE] -= need
    ctr[C_RING_SLOTS] += need
    if c.in_order == 0:
        st[DRV_FREE_HEAD] = st[DRV_BASE + bid]
    st[DRV_BASE + n + bid] = req
    st[DRV_BASE + 2 * n + bid] = need
    st[DRV_NUM_ADDED] += need  # in descriptors: positions are slots, not buffers
    return 1


@njit(inline="always")
def kick_needed(cfg, mem, st, ctr, io):
    if io[IO_LAST] == 0:
        return -1
    c = cfg[0]
    mb(mem, ctr, SIDE_DRIVER)  # expose the new flags before reading the device's suppression
    added = st[DRV_NUM_ADDED]
    st[DRV_NUM_ADDED] = 0
    snap = ld32(mem, ctr, SIDE_DRIVER, c.dev_event)
    return _decide(snap, st[DRV_NEXT_AVAIL], added, st[DRV_AVAIL_WRAP], c.packed_n)


@njit(inline="always")
def reap(cfg, mem, st, ctr, io):
    c = cfg[0]
    n = c.packed_n
    last = st[DRV_LAST_USED]
    w = st[DRV_USED_WRAP]
    if c.in_order != 0 and st[DRV_IO_ACTIVE] != 0:
        bid = last  # inside an in-order batch: the next buffer is the one at last_used
    else:
        d = c.desc + 16 * last
        if not _is_used(ld16(mem, ctr, SIDE_DRIVER, d + DESC_FLAGS), w):
            return -1
        rmb(mem, ctr)
        bid = ld16(mem, ctr, SIDE_DRIVER, d + DESC_ID)
        ln = ld32(mem, ctr, SIDE_DRIVER, d + DESC_LEN)
        ctr[C_DESC_READ] += 1
        if c.in_order != 0:
            # one used descriptor per batch carries the id of its last buffer
            if bid >= n or st[DRV_BASE + 2 * n + bid] == 0:
                return -2
            st[DRV_IO_ACTIVE] = 1
            st[DRV_IO_LAST_ID] = bid
            st[DRV_IO_LAST_LEN] = ln
            bid = last
        else:
            io[IO_LEN] = ln
    if bid >= n or st[DRV_BASE + 2 * n + bid] == 0:
        return -2  # a used id the driver never made available: protocol violation
    req = st[DRV_BASE + n + bid]
    chain = st[DRV_BASE + 2 * n + bid]
    if c.in_order != 0:
        if bid == st[DRV_IO_LAST_ID]:
            st[DRV_IO_ACTIVE] = 0
            io[IO_LEN] = st[DRV_IO_LAST_LEN]
        else:
            io[IO_LEN] = 0  # the device wrote no length for buffers inside a batch
    else:
        st[DRV_BASE + bid] = st[DRV_FREE_HEAD]  # detach_buf_packed: the id back on the list
        st[DRV_FREE_HEAD] = bid
    st[DRV_NUM_FREE] += chain
    st[DRV_BASE + 2 * n + bid] = 0
    last += chain
    if last >= n:
        last -= n
        w ^= 1
    st[DRV_LAST_USED] = last
    st[DRV_USED_WRAP] = w
    if st[DRV_FLAGS_SHADOW] == VRING_PACKED_EVENT_FLAG_DESC:
        # get_buf re-arms on every buffer: virtio_store_mb(off_wrap = last_used_idx)
        st16(mem, ctr, SIDE_DRIVER, c.drv_event + EVENT_OFF_WRAP, last | (w << 15))
        mb(mem, ctr, SIDE_DRIVER)
    return req


@njit(inline="always")
def disable_interrupts(cfg, mem, st, ctr, io):
    c = cfg[0]
    if st[DRV_FLAGS_SHADOW] != VRING_PACKED_EVENT_FLAG_DISABLE:
        st[DRV_FLAGS_SHADOW] = VRING_PACKED_EVENT_FLAG_DISABLE
        if c.event_idx != 0 and io[IO_TRIGGERED] != 0:
            # virtqueue_disable_cb_packed: an interrupt just fired (event_triggered): the
            # device will not send another before the next enable, no need to write
            return 0
        st16(mem, ctr, SIDE_DRIVER, c.drv_event + EVENT_FLAGS, VRING_PACKED_EVENT_FLAG_DISABLE)
    return 0


@njit(inline="always")
def enable_interrupts(cfg, mem, st, ctr, io):
    c = cfg[0]
    last = st[DRV_LAST_USED]
    w = st[DRV_USED_WRAP]
    if c.event_idx != 0:
        # the offset and its wrap bit before the flags that make the device read them
        st16(mem, ctr, SIDE_DRIVER, c.drv_event + EVENT_OFF_WRAP, last | (w << 15))
        wmb(mem, ctr)
    if st[DRV_FLAGS_SHADOW] == VRING_PACKED_EVENT_FLAG_DISABLE:
        f = VRING_PACKED_EVENT_FLAG_DESC if c.event_idx != 0 else VRING_PACKED_EVENT_FLAG_ENABLE
        st[DRV_FLAGS_SHADOW] = f
        st16(mem, ctr, SIDE_DRIVER, c.drv_event + EVENT_FLAGS, f)
    mb(mem, ctr, SIDE_DRIVER)  # virtqueue_poll: the lost-wakeup re-check
    if c.in_order != 0 and st[DRV_IO_ACTIVE] != 0:
        return 0  # the rest of an in-order batch is already known to be used
    fl = ld16(mem, ctr, SIDE_DRIVER, c.desc + 16 * last + DESC_FLAGS)
    return 0 if _is_used(fl, w) else 1


# --- device ------------------------------------------------------------------------------------
@njit(inline="always")
def pop(cfg, mem, st, ctr, io):
    c = cfg[0]
    n = c.packed_n
    la = st[DEV_LAST_AVAIL]
    w = st[DEV_AVAIL_WRAP]
    d = c.desc + 16 * la
    fl = ld16(mem, ctr, SIDE_DEVICE, d + DESC_FLAGS)
    if not _is_avail(fl, w):
        return -1
    rmb(mem, ctr)
    addr = ld64(mem, ctr, SIDE_DEVICE, d + DESC_ADDR)
    ln = ld32(mem, ctr, SIDE_DEVICE, d + DESC_LEN)
    bid = ld16(mem, ctr, SIDE_DEVICE, d + DESC_ID)
    ctr[C_DESC_READ] += 1
    count = 1  # ring slots the buffer occupies
    if fl & VRING_DESC_F_INDIRECT:
        segs = ln // 16
        tbl = addr - ARENA_GPA
        # nbytes, not size: the arena's length in bytes in both flavours (uint8 or uint64)
        if segs < 1 or ln % 16 != 0 or fl & VRING_DESC_F_NEXT or tbl < 0 or tbl + ln > mem.nbytes:
            return -2  # INDIRECT with NEXT, or a table that is not in shared memory
        first = ld64(mem, ctr, SIDE_DEVICE, tbl + DESC_ADDR)
        total = 0
        wrote = 0
        for j in range(segs):
            e = tbl + 16 * j
            if j > 0:
                ld64(mem, ctr, SIDE_DEVICE, e + DESC_ADDR)
            total += ld32(mem, ctr, SIDE_DEVICE, e + DESC_LEN)
            wrote |= ld16(mem, ctr, SIDE_DEVICE, e + DESC_FLAGS) & VRING_DESC_F_WRITE
        ctr[C_DESC_READ] += segs
    else:
        first = addr
        total = ln
        wrote = fl & VRING_DESC_F_WRITE
        segs = 1
        i = la
        while fl & VRING_DESC_F_NEXT:
            if count >= n:
                return -2  # a chain longer than the ring: protocol violation
            i += 1
            if i >= n:
                i = 0
            d = c.desc + 16 * i
            ld64(mem, ctr, SIDE_DEVICE, d + DESC_ADDR)
            total += ld32(mem, ctr, SIDE_DEVICE, d + DESC_LEN)
            bid = ld16(mem, ctr, SIDE_DEVICE, d + DESC_ID)  # the id of the last one counts
            fl = ld16(mem, ctr, SIDE_DEVICE, d + DESC_FLAGS)
            ctr[C_DESC_READ] += 1
            wrote |= fl & VRING_DESC_F_WRITE
            count += 1
            segs += 1
    if bid >= n or st[DEV_BASE + bid] != 0:
        return -2  # an id out of range or already outstanding
    la += count
    if la >= n:
        la -= n
        w ^= 1
    st[DEV_LAST_AVAIL] = la
    st[DEV_AVAIL_WRAP] = w
    st[DEV_BASE + bid] = count
    ctr[C_SEGMENTS] += segs
    io[IO_SIZE] = total
    io[IO_SEGS] = segs
    io[IO_HANDLE] = bid
    io[IO_LEN] = total if wrote else 0
    return req_of_addr(first)


@njit(inline="always")
def _write_used(c, mem, st, ctr, pos, wrap, bid, ln, barrier):
    """One used descriptor: id and len, then flags AVAIL = USED = wrap (after a write barrier
    when it is the one that publishes the batch)."""
    d = c.desc + 16 * pos
    st16(mem, ctr, SIDE_DEVICE, d + DESC_ID, bid)
    st32(mem, ctr, SIDE_DEVICE, d + DESC_LEN, ln)
    if barrier:
        wmb(mem, ctr)
    st16(mem, ctr, SIDE_DEVICE, d + DESC_FLAGS, AVAIL_USED if wrap != 0 else 0)
    ctr[C_DESC_WRITTEN] += 1


@njit(inline="always")
def _flush(c, mem, st, ctr):
    """Write the pending used descriptors (QEMU ``virtqueue_packed_flush``): every one but the
    first, then the first, whose flags publish the whole batch; then skip the batch's slots."""
    n = c.packed_n
    p = st[DEV_PENDING]
    if p == 0:
        return
    pid = DEV_BASE + n
    plen = DEV_BASE + 2 * n
    u = st[DEV_NEXT_USED]
    w = st[DEV_USED_WRAP]
    total = 0
    if c.in_order != 0:
        for k in range(p):
            b = st[pid + k]
            total += st[DEV_BASE + b]
            st[DEV_BASE + b] = 0
        _write_used(c, mem, st, ctr, u, w, st[pid + p - 1], st[plen + p - 1], True)
    else:
        pos = u
        pw = w
        for k in range(p):
            b = st[pid + k]
            if k > 0:
                _write_used(c, mem, st, ctr, pos, pw, b, st[plen + k], False)
            ch = st[DEV_BASE + b]
            st[DEV_BASE + b] = 0
            total += ch
            pos += ch
            if pos >= n:
                pos -= n
                pw ^= 1
        _write_used(c, mem, st, ctr, u, w, st[pid], st[plen], True)
    u += total
    while u >= n:
        u -= n
        w ^= 1
    st[DEV_NEXT_USED] = u
    st[DEV_USED_WRAP] = w
    st[DEV_SIG_ADDED] += total
    st[DEV_PENDING] = 0


@njit(inline="always")
def push_used(cfg, mem, st, ctr, io):
    c = cfg[0]
    n = c.packed_n
    b = io[IO_HANDLE]
    p = st[DEV_PENDING]
    if b < 0 or b >= n or st[DEV_BASE + b] == 0 or p >= n:
        return -2  # not a buffer the device holds
    st[DEV_BASE + n + p] = b
    st[DEV_BASE + 2 * n + p] = io[IO_LEN]
    st[DEV_PENDING] = p + 1
    if p + 1 >= c.used_batch:
        _flush(c, mem, st, ctr)
    return 0


@njit(inline="always")
def interrupt_needed(cfg, mem, st, ctr, io):
    c = cfg[0]
    if st[DEV_PENDING] > 0:
        if io[IO_LAST] == 0:
            return -1  # the batch is not full yet: nothing written
        _flush(c, mem, st, ctr)
    added = st[DEV_SIG_ADDED]
    if added == 0:
        return -1  # nothing published since the last decision
    if added < c.signal_batch and io[IO_LAST] == 0:
        return -1  # vhost_signal after signal_batch completions or when the ring runs empty
    st[DEV_SIG_ADDED] = 0
    mb(mem, ctr, SIDE_DEVICE)
    snap = ld32(mem, ctr, SIDE_DEVICE, c.drv_event)
    return _decide(snap, st[DEV_NEXT_USED], added, st[DEV_USED_WRAP], c.packed_n)


@njit(inline="always")
def disable_kicks(cfg, mem, st, ctr, io):
    c = cfg[0]
    if st[DEV_FLAGS_SHADOW] != VRING_PACKED_EVENT_FLAG_DISABLE:
        st[DEV_FLAGS_SHADOW] = VRING_PACKED_EVENT_FLAG_DISABLE
        st16(mem, ctr, SIDE_DEVICE, c.dev_event + EVENT_FLAGS, VRING_PACKED_EVENT_FLAG_DISABLE)
    return 0


@njit(inline="always")
def enable_kicks(cfg, mem, st, ctr, io):
    c = cfg[0]
    la = st[DEV_LAST_AVAIL]
    w = st[DEV_AVAIL_WRAP]
    f = VRING_PACKED_EVENT_FLAG_ENABLE
    if c.event_idx != 0:
        st16(mem, ctr, SIDE_DEVICE, c.dev_event + EVENT_OFF_WRAP, la | (w << 15))
        wmb(mem, ctr)
        f = VRING_PACKED_EVENT_FLAG_DESC
    if st[DEV_FLAGS_SHADOW] != f:
        st[DEV_FLAGS_SHADOW] = f
        st16(mem, ctr, SIDE_DEVICE, c.dev_event + EVENT_FLAGS, f)
    mb(mem, ctr, SIDE_DEVICE)  # the lost-wakeup re-check
    fl = ld16(mem, ctr, SIDE_DEVICE, c.desc + 16 * la + DESC_FLAGS)
    return 0 if _is_avail(fl, w) else 1


implement(CFG, sys.modules[__name__])


# --- Python side: build, layout, audit, check ---------------------------------------------------
def layout(opts: Options, needs: Needs) -> ArenaLayout:
    ind = needs.max_segments if opts.indirect and needs.max_segments > 1 else 0
    return packed_layout(opts.queue_size, ind)


def build(opts: Options, needs: Needs) -> Instance:
    """A fresh ring: every descriptor's flags 0 (available in no lap while both wrap counters
    are 1) and both suppression areas ENABLE, as the zeroed arena already has them."""
    lay = layout(opts, needs)
    n = opts.queue_size
    cfg = np.zeros(1, dtype=CFG)
    c = cfg[0]
    c["packed_n"] = n
    c["desc"] = lay.area("desc").offset
    c["drv_event"] = lay.area("driver_event").offset
    c["dev_event"] = lay.area("device_event").offset
    if "indirect" in {a.name for a in lay.areas}:
        c["ind"] = lay.area("indirect").offset
        c["ind_stride"] = lay.params["indirect_stride"]
    c["event_idx"] = int(opts.event_idx)
    c["indirect"] = int(opts.indirect)
    c["used_batch"] = opts.used_batch
    c["signal_batch"] = opts.signal_batch
    c["in_order"] = int(opts.in_order)
    drv = np.zeros(DRV_BASE + 3 * n, dtype=np.int64)
    drv[DRV_BASE : DRV_BASE + n] = np.arange(1, n + 1)  # free ids 0 -> 1 -> ... -> n-1
    drv[DRV_NUM_FREE] = n
    drv[DRV_AVAIL_WRAP] = 1
    drv[DRV_USED_WRAP] = 1
    drv[DRV_FLAGS_SHADOW] = VRING_PACKED_EVENT_FLAG_ENABLE
    dev = np.zeros(DEV_BASE + 3 * n, dtype=np.int64)
    dev[DEV_AVAIL_WRAP] = 1
    dev[DEV_USED_WRAP] = 1
    dev[DEV_FLAGS_SHADOW] = VRING_PACKED_EVENT_FLAG_ENABLE
    return Instance(NAME, lay, cfg, new_mem(lay.size), drv, dev)


def audit(inst: Instance) -> list[str]:
    """End-of-run invariants: every id free, both sides at one position in one lap, and no
    descriptor that the device would take as available in the lap it would read it in."""
    c, drv, dev, mem = inst.cfg[0], inst.drv, inst.dev, inst.mem
    n = int(c["packed_n"])
    out = []
    if drv[DRV_NUM_FREE] != n:
        out.append(f"{drv[DRV_NUM_FREE]} of {n} descriptors free")
    if np.any(drv[DRV_BASE + 2 * n : DRV_BASE + 3 * n]):
        out.append("a buffer id is still outstanding at the driver")
    if not c["in_order"]:
        seen = np.zeros(n, dtype=bool)
        i = int(drv[DRV_FREE_HEAD])
        for _ in range(n):
            if i >= n or seen[i]:
                out.append(f"free-id list broken at id {i}")
                break
            seen[i] = True
            i = int(drv[DRV_BASE + i])
    elif drv[DRV_IO_ACTIVE]:
        out.append("an in-order batch is half reaped")
    if np.any(dev[DEV_BASE : DEV_BASE + n]) or dev[DEV_PENDING]:
        out.append("the device still holds buffers or unwritten used descriptors")
    pos = {
        "driver next_avail": (int(drv[DRV_NEXT_AVAIL]), int(drv[DRV_AVAIL_WRAP])),
        "device last_avail": (int(dev[DEV_LAST_AVAIL]), int(dev[DEV_AVAIL_WRAP])),
        "device next_used": (int(dev[DEV_NEXT_USED]), int(dev[DEV_USED_WRAP])),
        "driver last_used": (int(drv[DRV_LAST_USED]), int(drv[DRV_USED_WRAP])),
    }
    if len(set(pos.values())) != 1:
        out.append(
            "positions (slot, wrap) disagree: " + ", ".join(f"{k} {v}" for k, v in pos.items())
        )
    p, w = pos["device last_avail"]
    flags = view(mem, np.uint16)[(int(c["desc"]) + DESC_FLAGS) // 2 :][: 8 * n : 8]
    for s in range(n):
        lap = w if s >= p else w ^ 1  # the wrap the device will have when it reaches s
        a = 1 if flags[s] & VRING_PACKED_DESC_F_AVAIL else 0
        u = 1 if flags[s] & VRING_PACKED_DESC_F_USED else 0
        if a == lap and u != lap:
            out.append(f"descriptor {s} is available but was never used")
            break
    return out


def check(opts: Options, needs: Needs, batch: int) -> str | None:
    n = opts.queue_size
    if batch > n:
        return f"batch = {batch} is larger than the ring (queue_size = {n}): lower the batch or raise queue_size"
    if needs.max_segments > n and not opts.indirect:
        return (
            f"a chain of {needs.max_segments} segments is longer than the queue (queue_size = {n}): "
            "turn indirect on or raise queue_size"
        )
    return batches_problem(opts)


MODEL = ModelDef(
    name=NAME,
    summary="virtio packed virtqueue: one descriptor ring with wrap counters, any queue size",
    options=Options,
    build=build,
    layout=layout,
    audit=audit,
    check=check,
)
