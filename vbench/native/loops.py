"""The two jitted loops of a native run: the driver thread's and the device thread's.

Each loop is one ``@njit(nogil=True, cache=True)`` entry point that a Python thread calls with
the GIL released; numba specialises it per model (on the model's config dtype), exactly as the
simulation's engine is specialised. Both call only the model's own operations from
:mod:`vbench.models.interface` on the shared arena (a uint64 view, so the accessors of
:mod:`vbench.memory` compile to acquire loads, release stores and real fences): there is no
second ring implementation here, only the two sides' control flow, modelled on Linux
``tools/virtio/ringtest`` (``run_guest``/``run_host``) and on the simulation's engine, so that
the decisions each side makes (when to kick, when to re-enable, when to sleep) are the same:

driver
    closed loop, at most ``cap`` requests in flight; a batch is up to ``batch`` adds with a kick
    decision (``kick_needed``) after each, ``IO_LAST`` on the last one; every request's payload
    (a pattern derived from its id, a header and a checksum) is written into the payload pool
    before its add. Completions: interrupt mode waits on the call eventfd when it cannot
    submit, then runs the handler (disable, reap all, enable with the re-check, again while
    the re-check finds more); poll mode runs a poll round after every batch and spins with
    ``pause`` when there is nothing to do. Every completion is checked: a known outstanding
    id, once, the device's stamp, a used length of 0 or the request's size.
device
    pop, verify the payload (header id and size, checksum), stamp it, ``push_used``,
    ``interrupt_needed`` (``IO_LAST`` when the ring ran empty). Empty ring: poll mode spins;
    sleep mode optionally spins ``spin_ns`` on the ring, then ``enable_kicks`` with its re-check
    and blocks on the kick eventfd.

Notifications are eventfd writes, wrapped as ringtest wraps them (``notify`` and
``wait_for_notify`` in its main.c): ``exit_cycles`` of busy-waiting on the TSC before the
write or the blocking read (the VM exit), ``entry_cycles`` after it (the VM entry).

Every spin and every wait checks the shared stop flag and an absolute deadline
(CLOCK_MONOTONIC): a wedged run ends, both threads return a status, and the runner turns it
into a clear error. Blocking waits are sliced (``WAIT_SLICE_NS``) so a sleeping side sees the
stop flag too. Nothing is raised from here: statuses and details go to ``out``.
"""

from __future__ import annotations

import warnings

import numpy as np
from numba import njit
from numba.core.errors import NumbaIRAssumptionWarning

from vbench.counters import (
    C_BYTES,
    C_DEV_WAKEUPS,
    C_IRQS,
    C_IRQS_DELIVERED,
    C_IRQS_SUPPRESSED,
    C_KICKS,
    C_KICKS_SUPPRESSED,
    C_REQUESTS,
    C_RING_FULL,
    C_SPURIOUS_DEV,
    C_SPURIOUS_DRV,
    IO_DIR,
    IO_LAST,
    IO_LEN,
    IO_NOW,
    IO_PRIO,
    IO_REQ,
    IO_SEGS,
    IO_SIZE,
    IO_SYNC,
)
from vbench.histogram import record
from vbench.models import interface as m
from vbench.native import atomics as A
from vbench.native import sysio

# numba's IR inliner trips an internal "pedantic check" warning on the inlined model operations
# (as in vbench.engine): noise to a vbench user
warnings.filterwarnings("ignore", category=NumbaIRAssumptionWarning)

# --- the shared control block: one int64 per cache line (no false sharing with hot data) ------
LINE_WORDS = 8
K_GO = 0  # set by the runner once both threads are ready: the clock starts
K_READY = 1 * LINE_WORDS  # each thread adds 1 when it is ready
K_STOP = 2 * LINE_WORDS  # set by a side that fails or times out: the other stops too
K_DRV_WAIT = 3 * LINE_WORDS  # what the driver is waiting for (W_*), for the stall message
K_DEV_WAIT = 4 * LINE_WORDS  # what the device is waiting for
K_DEV_DONE = 5 * LINE_WORDS  # set by the device when its loop has ended (the driver settles)
N_CTL = 6 * LINE_WORDS

W_NONE, W_CALL, W_POLL_USED, W_KICK, W_POLL_AVAIL, W_GO, W_STALLED_HOOK = range(7)
WAIT_TEXT = {
    W_NONE: "running",
    W_CALL: "asleep waiting for an interrupt (call eventfd)",
    W_POLL_USED: "polling the ring for completions",
    W_KICK: "asleep waiting for a kick (kick eventfd)",
    W_POLL_AVAIL: "polling the ring for requests",
    W_GO: "waiting for the peer thread to start",
    W_STALLED_HOOK: "not consuming (test hook)",
}

# --- integer parameters (one int64 array, so a loop is compiled once per model) --------------
(
    P_N,
    P_BATCH,
    P_CAP,
    P_DEV_POLL,
    P_DRV_POLL,
    P_SPIN_NS,
    P_EXIT_CYC,
    P_ENTRY_CYC,
    P_DEADLINE,
    P_KICK_FD,
    P_CALL_FD,
    P_POOL_MASK,
    P_SLOT_WORDS,
    P_HOOK_CORRUPT,
    P_HOOK_STALL,
    P_HOOK_LATE_NS,
) = range(16)
N_PARAMS = 16

# --- per-side results (int64) -----------------------------------------------------------------
O_STATUS, O_DETAIL, O_T0, O_T1, O_TSC0, O_TSC1, O_RECEIVED, O_DONE, O_STARTED = range(9)
N_OUT = 9

ST_OK = 0
ST_STALL = 1  # the deadline passed
ST_PEER = 2  # stopped because the other side failed
ST_BAD_ID = 3  # a completion or a pop that is no outstanding request (detail: the id)
ST_DUPLICATE = 4  # a request completed twice (detail: the id)
ST_CHECKSUM = 5  # the device found a payload whose checksum does not match (detail: the id)
ST_HEADER = 6  # the device found another request's buffer or size there (detail: the id)
ST_STAMP = 7  # a completion the device never processed (detail: the id)
ST_LENGTH = 8  # a used length that is neither 0 nor the request's size (detail: the id)
ST_ERRNO = 9  # an eventfd call failed (detail: -errno)
STATUS_TEXT = {
    ST_STALL: "stalled",
    ST_PEER: "stopped by the other side",
    ST_BAD_ID: "a side took something from the ring that is not an outstanding request",
    ST_DUPLICATE: "a request completed twice",
    ST_CHECKSUM: "payload checksum mismatch (a corrupted buffer)",
    ST_HEADER: "the device found another request's buffer or a wrong size",
    ST_STAMP: "a completion the device never processed",
    ST_LENGTH: "a completion with a wrong used length",
    ST_ERRNO: "an eventfd call failed",
}

WAIT_SLICE_NS = 10_000_000  # a blocked side looks at the stop flag this often
CHECK_EVERY = 256  # hot-loop iterations between two looks at the clock

# payload slot: [id, size, checksum, stamp, words of payload...]
H_ID, H_SIZE, H_SUM, H_STAMP = range(4)
HEADER_WORDS = 4
_MIX = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15 as int64: a golden-ratio stride


@njit(inline="always")
def _word(req, k):
    """Word k of request ``req``'s payload: a pattern nobody else's payload has."""
    return (req + 1) * _MIX + k


@njit(inline="always")
def _sum_step(c, w):
    return (c ^ w) * np.int64(1099511628211) + np.int64(7)


@njit
def _busy_cycles(cycles):
    """ringtest's ``wait_cycles``: spin on the TSC (an emulated VM exit or entry)."""
    if cycles <= 0:
        return
    t = A.rdtsc()
    while A.rdtsc() - t < cycles:
        pass


@njit
def _notify(fd, p):
    """ringtest's ``notify``: exit, write the eventfd, entry. 0 or -errno."""
    _busy_cycles(p[P_EXIT_CYC])
    r = sysio.efd_signal(fd)
    _busy_cycles(p[P_ENTRY_CYC])
    return r


@njit
def _wait_notify(fd, p, ctl, slot, what):
    """ringtest's ``wait_for_notify``: exit, block on the eventfd, entry. ``ctl[slot]`` says
    ``what`` this side waits for while it blocks (for the stall message). Returns (the counter
    read, status, detail): ST_OK with a counter >= 1; ST_PEER or ST_STALL if the stop flag or
    the deadline ended the wait; ST_ERRNO with -errno."""
    A.store_relaxed(ctl, slot, what)
    _busy_cycles(p[P_EXIT_CYC])
    v = np.int64(0)
    while True:
        left = p[P_DEADLINE] - sysio.monotonic_ns()
        if left <= 0 or A.load_relaxed(ctl, K_STOP) != 0:
            break
        v = sysio.efd_wait(fd, min(left, WAIT_SLICE_NS))
        if v != 0:
            break
    _busy_cycles(p[P_ENTRY_CYC])
    if v < 0:
        return v, ST_ERRNO, v
    if v == 0:
        return v, (ST_PEER if A.load_relaxed(ctl, K_STOP) != 0 else ST_STALL), np.int64(0)
    A.store_relaxed(ctl, slot, W_NONE)
    return v, ST_OK, np.int64(0)


@njit
def _should_stop(ctl, p, it):
    """The spin loops' stop condition: the stop flag (every call), the deadline (every
    CHECK_EVERY calls: the clock is a few tens of ns). 0 go on, ST_PEER, or ST_STALL."""
    if A.load_relaxed(ctl, K_STOP) != 0:
        return ST_PEER
    if (it & (CHECK_EVERY - 1)) == 0 and sysio.monotonic_ns() > p[P_DEADLINE]:
        return ST_STALL
    return ST_OK


@njit
def _fail(ctl, out, status, detail):
    out[O_STATUS] = status
    out[O_DETAIL] = detail
    A.store_release(ctl, K_STOP, 1)  # the peer stops at its next look
    return status


@njit
def _start(ctl, p, me):
    """Meet the peer: announce readiness, spin until the runner says go (or time runs out)."""
    A.fetch_add(ctl, K_READY, 1)
    A.store_relaxed(ctl, me, W_GO)
    it = 0
    while A.load_acquire(ctl, K_GO) == 0:
        A.cpu_relax()
        it += 1
        s = _should_stop(ctl, p, it)
        if s != ST_OK:
            return s
    A.store_relaxed(ctl, me, W_NONE)
    return ST_OK


# --- the driver ----------------------------------------------------------------------------------
@njit
def _fill(pool, p, req, size):
    """Write request ``req``'s payload, header and checksum into its pool slot (plain stores:
    the model's add, a release, publishes them)."""
    base = (req & p[P_POOL_MASK]) * p[P_SLOT_WORDS]
    words = (size + 7) >> 3
    c = np.int64(size)
    for k in range(words):
        w = _word(req, k)
        pool[base + HEADER_WORDS + k] = w
        c = _sum_step(c, w)
    pool[base + H_ID] = req
    pool[base + H_SIZE] = size
    pool[base + H_SUM] = c
    pool[base + H_STAMP] = -1
    if req == p[P_HOOK_CORRUPT] and words > 0:
        pool[base + HEADER_WORDS] ^= 0x40  # test hook: one flipped bit after the checksum


@njit
def _reap_all(rx, rnd):
    """Reap every completion the ring has now and check each; ``rnd``: a new poll round.
    ``rx`` is the driver's reaping context (see driver_loop). Returns (reaped, status, detail)."""
    cfg, mem, st, ctr, io, pool, p, slots, t_add, prio, size, hist, lat_max, nspc = rx
    got = 0
    if rnd:
        m.disable_interrupts(cfg, mem, st, ctr, io)  # a poll round (resets a NAPI budget)
    while True:
        r = m.reap(cfg, mem, st, ctr, io)
        if r < 0:
            if r < -1:
                return got, ST_BAD_ID, r
            return got, ST_OK, 0
        now = A.rdtsc()
        if r >= p[P_N]:
            return got, ST_BAD_ID, r
        s = r & p[P_POOL_MASK]
        if slots[s] != r:
            return got, (ST_DUPLICATE if slots[s] < r else ST_BAD_ID), r
        base = s * p[P_SLOT_WORDS]
        if pool[base + H_STAMP] != ~r:
            return got, ST_STAMP, r
        ln = io[IO_LEN]
        if ln != 0 and ln != size[r]:
            return got, ST_LENGTH, r
        slots[s] = -1
        lat = (now - t_add[s]) * nspc
        if lat < 0.0:
            lat = 0.0
        c = prio[r]
        record(hist, c, lat)
        if lat > lat_max[c]:
            lat_max[c] = lat
        got += 1


@njit(nogil=True, cache=True)
def driver_loop(
    cfg, mem, st, ctr, io, pool, ctl, p, ns_per_cyc, size, segs, prio, direction, hist, lat_max, out
):
    """The driver thread: submit every request, reap and check every completion."""
    n = p[P_N]
    if n == 0:
        return
    batch = p[P_BATCH]
    cap = p[P_CAP]
    poll = p[P_DRV_POLL] != 0
    slots = np.full(p[P_POOL_MASK] + 1, -1, dtype=np.int64)  # the request in each pool slot
    t_add = np.zeros(p[P_POOL_MASK] + 1, dtype=np.int64)
    # what every reap needs, in one tuple (the reaps are in four places below)
    rx = (cfg, mem, st, ctr, io, pool, p, slots, t_add, prio, size, hist, lat_max, ns_per_cyc)
    kick_fd = p[P_KICK_FD]
    call_fd = p[P_CALL_FD]
    s = _start(ctl, p, K_DRV_WAIT)
    if s != ST_OK:
        _fail(ctl, out, s, 0)
        return
    out[O_T0] = sysio.monotonic_ns()
    out[O_TSC0] = A.rdtsc()
    if poll:
        m.disable_interrupts(cfg, mem, st, ctr, io)
    started = np.int64(0)
    completed = np.int64(0)
    blocked = False
    it = 0
    status = ST_OK
    detail = np.int64(0)
    while completed < n:
        it += 1
        s = _should_stop(ctl, p, it)
        if s != ST_OK:
            status = s
            break
        # --- submit batches while there is room -------------------------------------------
        while not blocked and started < n and started - completed < cap:
            added = 0
            decided = False
            while True:
                i = started
                _fill(pool, p, i, size[i])  # the pool holds >= cap slots: this one is free
                io[IO_REQ] = i
                io[IO_SIZE] = size[i]
                io[IO_SEGS] = segs[i]
                io[IO_DIR] = direction[i]
                io[IO_PRIO] = prio[i]
                io[IO_NOW] = 0
                io[IO_SYNC] = 0
                t = A.rdtsc()
                ok = m.add(cfg, mem, st, ctr, io)
                if ok == 0:
                    blocked = True
                    ctr[C_RING_FULL] += 1
                    last = True
                else:
                    slots[i & p[P_POOL_MASK]] = i
                    t_add[i & p[P_POOL_MASK]] = t
                    started += 1
                    added += 1
                    last = not (added < batch and started < n and started - completed < cap)
                if added == 0:
                    break
                io[IO_LAST] = 1 if last else 0
                if ok == 0 and decided:
                    break
                k = m.kick_needed(cfg, mem, st, ctr, io)
                if last:
                    decided = True
                if k == 1:
                    ctr[C_KICKS] += 1
                    r = _notify(kick_fd, p)
                    if r < 0:
                        status = ST_ERRNO
                        detail = r
                        break
                elif k == 0:
                    ctr[C_KICKS_SUPPRESSED] += 1
                if last:
                    break
            if status != ST_OK or poll:
                break  # a polling driver looks at the ring after every batch
        if status != ST_OK:
            break
        # --- completions -------------------------------------------------------------------
        if poll:
            got, status, detail = _reap_all(rx, True)
            if status != ST_OK:
                break
            if got > 0:
                completed += got
                blocked = False
            elif blocked or started >= n or started - completed >= cap:
                A.store_relaxed(ctl, K_DRV_WAIT, W_POLL_USED)
                A.cpu_relax()
            continue
        if not blocked and started < n and started - completed < cap:
            continue
        # interrupt mode, nothing to submit: sleep until the device calls, then the handler
        v, status, detail = _wait_notify(call_fd, p, ctl, K_DRV_WAIT, W_CALL)
        if status != ST_OK:
            break
        out[O_RECEIVED] += v
        ctr[C_IRQS_DELIVERED] += 1
        round_got = 0
        while True:
            got, status, detail = _reap_all(rx, True)
            round_got += got
            if status != ST_OK:
                break
            if p[P_SPIN_NS] > 0:
                # busy-poll the ring a while before re-enabling (NAPI busy polling)
                t_end = sysio.monotonic_ns() + p[P_SPIN_NS]
                while sysio.monotonic_ns() < t_end:
                    got, status, detail = _reap_all(rx, False)
                    round_got += got
                    if status != ST_OK or got > 0:
                        break
                    A.cpu_relax()
                if status != ST_OK:
                    break
            if m.enable_interrupts(cfg, mem, st, ctr, io) == 1:
                break
        completed += round_got
        if round_got > 0:
            blocked = False
        else:
            ctr[C_SPURIOUS_DRV] += 1
        if status != ST_OK:
            break
    out[O_T1] = sysio.monotonic_ns()
    out[O_TSC1] = A.rdtsc()
    if status == ST_OK:
        # Settle, after the clock has stopped. The device notifies *after* publishing a
        # completion, so its last notification can land once this side has reaped everything
        # and left (vbus-prio: a signal and its event, never taken). Wait for the device to
        # finish, then handle what it sent as the driver would (a poll round; in interrupt mode
        # the handler: disable, reap, re-enable), so the end-of-run audit sees a quiet ring. Any
        # completion found now is one too many (the slot check calls it a duplicate).
        while A.load_acquire(ctl, K_DEV_DONE) == 0:
            it += 1
            status = _should_stop(ctl, p, it)
            if status != ST_OK:
                break
            A.cpu_relax()
    if status == ST_OK:
        for _ in range(4):  # a replay found on re-enabling is handled again, a few times at most
            got, status, detail = _reap_all(rx, True)
            if status != ST_OK or poll or m.enable_interrupts(cfg, mem, st, ctr, io) == 1:
                break
    out[O_DONE] = completed
    out[O_STARTED] = started
    ctr[C_REQUESTS] = completed
    if status != ST_OK:
        _fail(ctl, out, status, detail)


# --- the device ----------------------------------------------------------------------------------
@njit
def _verify(pool, p, r, io):
    """Check the popped request's buffer, stamp it as processed. A status."""
    base = (r & p[P_POOL_MASK]) * p[P_SLOT_WORDS]
    size = pool[base + H_SIZE]
    if pool[base + H_ID] != r or io[IO_SIZE] != size:
        return ST_HEADER
    c = np.int64(size)
    for k in range((size + 7) >> 3):
        c = _sum_step(c, pool[base + HEADER_WORDS + k])
    if c != pool[base + H_SUM]:
        return ST_CHECKSUM
    pool[base + H_STAMP] = ~r  # published to the driver by push_used (a release)
    return ST_OK


@njit(nogil=True, cache=True)
def device_loop(cfg, mem, st, ctr, io, pool, ctl, p, out):
    """The device thread: consume every request, verify it, complete it, notify."""
    n = p[P_N]
    if n == 0:
        return
    poll = p[P_DEV_POLL] != 0
    kick_fd = p[P_KICK_FD]
    call_fd = p[P_CALL_FD]
    s = _start(ctl, p, K_DEV_WAIT)
    if s != ST_OK:
        _fail(ctl, out, s, 0)
        return
    if poll:
        m.disable_kicks(cfg, mem, st, ctr, io)
    asleep = not poll
    found = True
    spin_until = np.int64(0)
    done = np.int64(0)
    it = 0
    status = ST_OK
    detail = np.int64(0)
    while True:
        if asleep:
            v, status, detail = _wait_notify(kick_fd, p, ctl, K_DEV_WAIT, W_KICK)
            if status != ST_OK:
                break
            out[O_RECEIVED] += v
            asleep = False
            ctr[C_DEV_WAKEUPS] += 1
            found = False
            m.disable_kicks(cfg, mem, st, ctr, io)
        it += 1
        s = _should_stop(ctl, p, it)
        if s != ST_OK:
            status = s
            break
        if p[P_HOOK_STALL] != 0:
            A.store_relaxed(ctl, K_DEV_WAIT, W_STALLED_HOOK)
            A.cpu_relax()
            continue  # test hook: a device that never consumes
        io[IO_DIR] = 0
        io[IO_NOW] = 0
        io[IO_SYNC] = 0
        r = m.pop(cfg, mem, st, ctr, io)
        if r >= 0:
            if r >= n:
                status = ST_BAD_ID
                detail = r
                break
            status = _verify(pool, p, r, io)
            if status != ST_OK:
                detail = r
                break
            found = True
            spin_until = np.int64(0)
            ctr[C_BYTES] += io[IO_SIZE]
            m.push_used(cfg, mem, st, ctr, io)
            done += 1
            io[IO_LAST] = 0
        elif r < -1:
            status = ST_BAD_ID
            detail = r
            break
        else:
            io[IO_LAST] = 1
            if p[P_HOOK_LATE_NS] > 0 and done >= n:
                # test hook: the last notify decision comes late, after the driver has reaped
                t_late = sysio.monotonic_ns() + p[P_HOOK_LATE_NS]
                while sysio.monotonic_ns() < t_late:
                    A.cpu_relax()
        d = m.interrupt_needed(cfg, mem, st, ctr, io)
        if d >= 1:
            ctr[C_IRQS] += d
            for _ in range(d):
                e = _notify(call_fd, p)
                if e < 0:
                    status = ST_ERRNO
                    detail = e
                    break
            if status != ST_OK:
                break
        elif d == 0:
            ctr[C_IRQS_SUPPRESSED] += 1
        if r >= 0:
            continue
        if done >= n:
            break  # every request completed and the empty-ring decision made: finished
        if poll:
            A.store_relaxed(ctl, K_DEV_WAIT, W_POLL_AVAIL)
            A.cpu_relax()
            continue
        if p[P_SPIN_NS] > 0:
            # keep polling a while before re-enabling kicks (vhost's busyloop_timeout)
            now = sysio.monotonic_ns()
            if spin_until == 0:
                spin_until = now + p[P_SPIN_NS]
            if now < spin_until:
                A.cpu_relax()
                continue
        spin_until = np.int64(0)
        s2 = m.enable_kicks(cfg, mem, st, ctr, io)
        if not found:
            ctr[C_SPURIOUS_DEV] += 1
        if s2 == 1:
            asleep = True
        else:
            # the re-check found work (or a replay is due): look again
            ctr[C_DEV_WAKEUPS] += 1
            found = False
            m.disable_kicks(cfg, mem, st, ctr, io)
    out[O_DONE] = done
    if status != ST_OK:
        _fail(ctl, out, status, detail)
    A.store_release(ctl, K_DEV_DONE, 1)  # after its last notification: the driver settles
