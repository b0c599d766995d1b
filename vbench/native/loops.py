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
    decision (``kick_needed``) after each, ``IO_LAST`` on the last one; every request's header
    (id, size) and, where ``verify`` takes it, its payload (a pattern derived from its id) and
    checksum are written into its payload pool slot before its add. Completions: interrupt mode waits on the call eventfd when it cannot
    submit, then runs the handler (disable, reap all, enable with the re-check, again while
    the re-check finds more); poll mode runs a poll round after every batch and spins with
    ``pause`` when there is nothing to do. Every completion is checked: a known outstanding
    id, once, the device's stamp, a used length of 0 or the request's size.
device
    pop, verify the buffer (header id and size; the checksum where ``verify`` takes it), stamp it, ``push_used``,
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

import sys
import warnings

import numpy as np
from numba import njit
from numba.core.errors import NumbaIRAssumptionWarning

from vbench import protocol
from vbench.counters import (
    C_DEV_WAKEUPS,
    C_IRQS_DELIVERED,
    C_KICKS,
    C_REQUESTS,
    C_SPURIOUS_DEV,
    C_SPURIOUS_DRV,
    IO_LEN,
    IO_SIZE,
    OP_DISABLE_INTERRUPTS,
    OP_DISABLE_KICKS,
    OP_ENABLE_INTERRUPTS,
    OP_ENABLE_KICKS,
)
from vbench.histogram import record
from vbench.models import interface as ring
from vbench.native import atomics, sysio

# numba's IR inliner trips an internal "pedantic check" warning on the inlined model operations
# (as in vbench.engine): noise to a vbench user
warnings.filterwarnings("ignore", category=NumbaIRAssumptionWarning)

# Memory the two threads use apart is kept on 128-byte pairs of cache lines of its own, not
# only on lines of its own: from Sandy Bridge on, Intel's L2 spatial prefetcher fetches the
# other line of an aligned 128-byte pair along with the one missed, so two lines of one pair
# written by different CPUs can move between them as if they were one line (false sharing).
# crossbeam-utils' CachePadded aligns to 128 bytes on x86-64 for this reason.
PAIR_WORDS = 16

# --- the shared control block: one int64 per 128-byte pair (no false sharing with hot data) ---
K_GO = 0  # set by the runner once both threads are ready: the clock starts
K_READY = 1 * PAIR_WORDS  # each thread adds 1 when it is ready
K_STOP = 2 * PAIR_WORDS  # set by a side that fails or times out: the other stops too
K_DRV_WAIT = 3 * PAIR_WORDS  # what the driver is waiting for (W_*), for the stall message
K_DEV_WAIT = 4 * PAIR_WORDS  # what the device is waiting for
K_DEV_DONE = 5 * PAIR_WORDS  # set by the device when its loop has ended (the driver settles)
N_CTL = 6 * PAIR_WORDS

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

#: The run's parameters (one record: a loop is compiled once per model).
PARAMS = np.dtype(
    [
        ("requests", np.int64),
        ("batch", np.int64),
        ("cap", np.int64),  # most requests in flight (a native run is a closed loop)
        ("device_polls", np.bool_),
        ("driver_polls", np.bool_),
        ("spin_ns", np.int64),  # sleeping mode: spin this long before blocking
        ("exit_cycles", np.int64),  # busy-wait before each notification (the VM exit)
        ("entry_cycles", np.int64),  # and after it (the VM entry)
        ("deadline", np.int64),  # CLOCK_MONOTONIC ns: a wedged run ends then
        ("kick_fd", np.int64),
        ("call_fd", np.int64),
        ("pool_mask", np.int64),  # payload pool slots - 1
        # requests of several classes complete out of order: each gets a free pool slot, found
        # in CLOCK_SLOT_OF[request] (False: one class, slot = request & pool_mask)
        ("slot_map", np.bool_),
        ("slot_words", np.int64),
        ("ns_per_cycle", np.float64),  # the TSC's period (latencies)
        ("verify_mask", np.int64),  # payload written and checked: a chosen request (-1: none)
        ("touch_pool", np.bool_),  # the payload slot's header and stamp (verify = "ring": no)
        ("stamp_mask", np.int64),  # latency stamped: a chosen request (0: every one)
        ("hook_corrupt", np.int64),  # test hooks: see vbench.native.runner.Hooks
        ("hook_stall", np.bool_),
        ("hook_late_ns", np.int64),
        ("hook_lose", np.int64),
        ("hook_duplicate", np.int64),
        ("hook_shadow", np.bool_),
    ]
)

#: One side's state and results (each side has its own record, on lines of its own).
STATE = np.dtype(
    [
        ("next_request", np.int64),  # driver: requests made available so far
        ("in_flight", np.int64),
        ("completed", np.int64),  # driver: requests reaped
        ("done", np.int64),  # device: requests served
        ("status", np.int64),
        ("detail", np.int64),
        ("t0", np.int64),  # driver: CLOCK_MONOTONIC ns and TSC when the clock started
        ("t1", np.int64),  # and when every completion was reaped
        ("tsc0", np.int64),
        ("tsc1", np.int64),
        ("received", np.int64),  # notifications read from this side's eventfd
        ("added_at", np.int64),  # driver: TSC before the current add
        ("spin_until", np.int64),  # device: end of its busy-poll before sleeping
        ("free_slots", np.int64),  # driver, with a slot map: free pool slots on CLOCK_FREE
        ("kicks_sent", np.int64),  # driver: kick notifications written
        ("blocked", np.bool_),  # driver: the ring was full, no reap since
        ("found", np.bool_),  # device: found work since its last wakeup
        ("padding", np.uint8, (6,)),  # a record fills two cache lines of its own
    ]
)

# where each array sits in a side's clock tuple (vbench.protocol's clock)
(
    CLOCK_PARAMS,
    CLOCK_STATE,
    CLOCK_REQUESTS,  # (size, segments, prio, direction, mask)
    CLOCK_POOL,  # payload slots
    CLOCK_SLOTS,  # driver: the request in each pool slot (-1: free)
    CLOCK_ADDED,  # driver: the TSC of each slot's add
    CLOCK_HIST,
    CLOCK_LAT_MAX,
    CLOCK_CONTROL,  # the shared control block (K_*)
    CLOCK_IO,  # this side's io slots
    CLOCK_SHADOW,  # driver, test hook only: every request's latency beside the sampled ones
    CLOCK_SLOT_OF,  # params.slot_map: the pool slot of each request of the run
    CLOCK_FREE,  # driver, params.slot_map: a stack of the free pool slots (state.free_slots)
    CLOCK_COUNTERS,  # this side's counters (the ring's ctr)
) = range(14)

ST_OK = protocol.STATUS_OK
ST_STALL = protocol.STATUS_STALL
ST_PEER = protocol.STATUS_PEER
ST_BAD_ID = protocol.STATUS_BAD_REQUEST
ST_DUPLICATE = protocol.STATUS_DUPLICATE
ST_CHECKSUM = protocol.STATUS_CHECKSUM
ST_HEADER = protocol.STATUS_HEADER
ST_STAMP = protocol.STATUS_STAMP
ST_LENGTH = protocol.STATUS_LENGTH
ST_ERRNO = protocol.STATUS_ERRNO
ST_LOST = 13  # native: a pool slot still held when its next request is added
STATUS_TEXT = {
    **protocol.STATUS_TEXT,
    ST_LOST: "its pool slot still held by an earlier request that never completed (a lost buffer)",
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


@njit(inline="always")
def chosen(request, mask):
    """Whether a sampled check or stamp takes this request: a hash of its id under ``mask``
    (sample_every - 1; 0 takes every request, -1 none). Hashed, not every k-th id, so that a
    sample never falls on one fixed position of every batch (the first add of a batch waits
    longest). Both threads compute it alike: the device knows which payloads were written."""
    return mask >= 0 and ((request * _MIX) >> 40) & mask == 0


def chosen_requests(n: int, mask: int) -> np.ndarray:
    """The ids in ``range(n)`` that :func:`chosen` takes (the same int64 arithmetic)."""
    if mask < 0:
        return np.zeros(0, dtype=np.int64)
    ids = np.arange(n, dtype=np.int64)
    with np.errstate(over="ignore"):
        return ids[((ids * _MIX) >> 40) & mask == 0]


@njit
def _busy_cycles(cycles):
    """ringtest's ``wait_cycles``: spin on the TSC (an emulated VM exit or entry)."""
    if cycles <= 0:
        return
    t = atomics.rdtsc()
    while atomics.rdtsc() - t < cycles:
        pass


@njit
def _notify(fd, params):
    """ringtest's ``notify``: exit, write the eventfd, entry. 0 or -errno."""
    _busy_cycles(params.exit_cycles)
    r = sysio.efd_signal(fd)
    _busy_cycles(params.entry_cycles)
    return r


@njit
def _wait_notify(fd, params, control, slot, what):
    """ringtest's ``wait_for_notify``: exit, block on the eventfd, entry. ``control[slot]``
    says ``what`` this side waits for while it blocks (for the stall message). Returns (the
    counter read, status, detail): ST_OK with a counter >= 1; ST_PEER or ST_STALL if the stop
    flag or the deadline ended the wait; ST_ERRNO with -errno."""
    atomics.store_relaxed(control, slot, what)
    _busy_cycles(params.exit_cycles)
    v = np.int64(0)
    while True:
        left = params.deadline - sysio.monotonic_ns()
        if left <= 0 or atomics.load_relaxed(control, K_STOP) != 0:
            break
        v = sysio.efd_wait(fd, min(left, WAIT_SLICE_NS))
        if v != 0:
            break
    _busy_cycles(params.entry_cycles)
    if v < 0:
        return v, ST_ERRNO, v
    if v == 0:
        stopped = atomics.load_relaxed(control, K_STOP) != 0
        return v, (ST_PEER if stopped else ST_STALL), np.int64(0)
    atomics.store_relaxed(control, slot, W_NONE)
    return v, ST_OK, np.int64(0)


@njit
def _should_stop(control, params, iteration):
    """The spin loops' stop condition: the stop flag (every call), the deadline (every
    CHECK_EVERY calls: the clock is a few tens of ns). 0 go on, ST_PEER, or ST_STALL."""
    if atomics.load_relaxed(control, K_STOP) != 0:
        return ST_PEER
    if (iteration & (CHECK_EVERY - 1)) == 0 and sysio.monotonic_ns() > params.deadline:
        return ST_STALL
    return ST_OK


@njit
def _fail(control, state, status):
    state.status = status
    atomics.store_release(control, K_STOP, 1)  # the peer stops at its next look
    return status


@njit
def _start(control, params, me):
    """Meet the peer: announce readiness, spin until the runner says go (or time runs out)."""
    atomics.fetch_add(control, K_READY, 1)
    atomics.store_relaxed(control, me, W_GO)
    iteration = 0
    while atomics.load_acquire(control, K_GO) == 0:
        atomics.cpu_relax()
        iteration += 1
        s = _should_stop(control, params, iteration)
        if s != ST_OK:
            return s
    atomics.store_relaxed(control, me, W_NONE)
    return ST_OK


@njit(inline="always")
def _begin(clock, me):
    """Both loops' start: False when the loop must return at once, either because the call
    only compiles it (0 requests) or because meeting the peer failed (the peer is stopped)."""
    params = clock[CLOCK_PARAMS][0]
    if params.requests == 0:
        return False
    control = clock[CLOCK_CONTROL]
    status = _start(control, params, me)
    if status != ST_OK:
        _fail(control, clock[CLOCK_STATE][0], status)
        return False
    return True


# --- the protocol's native clock (vbench.protocol's hooks) ----------------------------------------
@njit(inline="always")
def upcoming(clock):
    return clock[CLOCK_STATE][0].next_request  # in order: one submission queue


@njit(inline="always")
def advance(clock, request):
    clock[CLOCK_STATE][0].next_request = request + 1


@njit(inline="always")
def refused(clock, request):
    """A full ring stops the driver until it reaps (one submission queue for every class)."""
    clock[CLOCK_STATE][0].blocked = True
    return False


@njit(inline="always")
def request_ready(clock, request):
    return True  # a closed loop: every request is ready once there is room for it


@njit(inline="always")
def before_add(clock, request):
    """Write the request's header (id, size, a cleared stamp) into its pool slot and, where
    ``verify`` takes it, its payload and checksum (plain stores: the model's add, a release,
    publishes them; ``verify = "ring"``: no slot at all); then stamp the add's start where
    ``stamp`` takes it."""
    params = clock[CLOCK_PARAMS][0]
    if params.slot_map:
        _take_slot(clock, request)
    if params.touch_pool:
        _fill_slot(clock, request)
    if params.hook_shadow or chosen(request, params.stamp_mask):
        clock[CLOCK_STATE][0].added_at = atomics.rdtsc()


@njit(inline="always")
def slot_of(clock, request):
    """The request's pool slot. While requests complete in the order they were added (one
    class), slot ``request mod slots`` is free again when the request a pool later comes.
    Rings per class (virtio-mq, vbus-prio) or a look-ahead window complete out of order, and a
    request may still be out when the one a pool later is added: there the driver gives each
    request a free slot (:func:`_take_slot`) and both sides find it in ``CLOCK_SLOT_OF``,
    written before the add's release publishes the request."""
    params = clock[CLOCK_PARAMS][0]
    if not params.slot_map:
        return request & params.pool_mask
    return clock[CLOCK_SLOT_OF][request]


@njit(inline="always")
def _take_slot(clock, request):
    """A free pool slot for the request. The driver holds at most ``cap`` <= slots requests,
    so one is free; were none, the request would get slot 0, still held, and the slot check
    would call it a lost buffer."""
    state = clock[CLOCK_STATE][0]
    slot = 0
    if state.free_slots > 0:
        state.free_slots -= 1
        slot = clock[CLOCK_FREE][state.free_slots]
    clock[CLOCK_SLOT_OF][request] = slot


@njit(inline="always")
def _free_slot(clock, slot):
    state = clock[CLOCK_STATE][0]
    clock[CLOCK_FREE][state.free_slots] = slot
    state.free_slots += 1


@njit(inline="always")
def _fill_slot(clock, request):
    params = clock[CLOCK_PARAMS][0]
    pool = clock[CLOCK_POOL]
    size = clock[CLOCK_REQUESTS][0][request]
    base = slot_of(clock, request) * params.slot_words
    words = (size + 7) >> 3
    if chosen(request, params.verify_mask):
        c = np.int64(size)
        for k in range(words):
            w = _word(request, k)
            pool[base + HEADER_WORDS + k] = w
            c = _sum_step(c, w)
        pool[base + H_SUM] = c
    pool[base + H_ID] = request
    pool[base + H_SIZE] = size
    pool[base + H_STAMP] = -1
    if request == params.hook_corrupt and words > 0:
        pool[base + HEADER_WORDS] ^= 0x40  # test hook: one flipped bit after the checksum


@njit(inline="always")
def after_add(clock, request, added):
    """Hold the request's pool slot. A slot still held means its earlier request never came
    back (a lost buffer): recorded in the state for :func:`_submit` (this hook returns no
    status), caught at once instead of by the deadline."""
    if added == 0:
        if clock[CLOCK_PARAMS][0].slot_map:
            _free_slot(clock, slot_of(clock, request))  # refused: taken again on its retry
    else:
        state = clock[CLOCK_STATE][0]
        slot = slot_of(clock, request)
        slots = clock[CLOCK_SLOTS]
        if slots[slot] >= 0 and state.status == ST_OK:
            state.status = ST_LOST
            state.detail = slots[slot]
        slots[slot] = request
        clock[CLOCK_ADDED][slot] = state.added_at


@njit(inline="always")
def after_op(clock, side):
    return  # the hardware charges its own time


@njit(inline="always")
def op_time(clock, op):
    return  # the operation's CPU work is paid for real


@njit(inline="always")
def kick(clock):
    """One notification per kick counted and not yet sent: one for the answer, and one more
    for each kick the ring counted itself (virtio-mq: two queues' doorbells on one answer,
    each its own exit)."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    counted = clock[CLOCK_COUNTERS][C_KICKS]
    while state.kicks_sent < counted:
        error = _notify(params.kick_fd, params)
        if error < 0:
            state.detail = error
            return ST_ERRNO
        state.kicks_sent += 1
    return ST_OK


@njit(inline="always")
def synchronous(clock, request):
    return ST_BAD_ID  # refused before a native run starts (vbench.native.runner.refuse)


@njit(inline="always")
def _check_completion(clock, request):
    """A completion's checks, whatever ``verify`` is: a known outstanding id, once, stamped
    by the device, a used length of 0 or the request's size. A status."""
    params = clock[CLOCK_PARAMS][0]
    slots = clock[CLOCK_SLOTS]
    if request >= params.requests:
        return ST_BAD_ID
    slot = slot_of(clock, request)
    if slots[slot] != request:
        return ST_DUPLICATE if slots[slot] < request else ST_BAD_ID
    if params.touch_pool and clock[CLOCK_POOL][slot * params.slot_words + H_STAMP] != ~request:
        return ST_STAMP
    length = clock[CLOCK_IO][IO_LEN]
    if length != 0 and length != clock[CLOCK_REQUESTS][0][request]:
        return ST_LENGTH
    return ST_OK


@njit(inline="always")
def _record_latency(clock, hist, request, now):
    params = clock[CLOCK_PARAMS][0]
    slot = slot_of(clock, request)
    latency = (now - clock[CLOCK_ADDED][slot]) * params.ns_per_cycle
    if latency < 0.0:
        latency = 0.0
    k = clock[CLOCK_REQUESTS][2][request]
    record(hist, k, latency)
    return k, latency


@njit(inline="always")
def complete(clock, request):
    """Check a completion and, where ``stamp`` takes the request, record its latency (the TSC
    read first: the checks are the driver's work, not the ring's). A status."""
    params = clock[CLOCK_PARAMS][0]
    stamped = chosen(request, params.stamp_mask)
    now = atomics.rdtsc() if stamped or params.hook_shadow else np.int64(0)
    status = _check_completion(clock, request)
    if status != ST_OK:
        return status
    if request == params.hook_lose:
        return ST_OK  # test hook: this completion never reached the driver (its slot stays held)
    if stamped:
        k, latency = _record_latency(clock, clock[CLOCK_HIST], request, now)
        lat_max = clock[CLOCK_LAT_MAX]
        if latency > lat_max[k]:
            lat_max[k] = latency
    if params.hook_shadow:
        _record_latency(clock, clock[CLOCK_SHADOW], request, now)
    slot = slot_of(clock, request)
    clock[CLOCK_SLOTS][slot] = -1
    if params.slot_map:
        _free_slot(clock, slot)
    state = clock[CLOCK_STATE][0]
    state.completed += 1
    state.in_flight -= 1
    state.blocked = False
    if request == params.hook_duplicate:
        return _check_completion(clock, request)  # test hook: the ring hands it back again
    return ST_OK


@njit(inline="always")
def linger(clock, side):
    """``spin_ns`` > 0: busy-poll the ring a while before re-enabling interrupts (NAPI busy
    polling). (reaped, status)"""
    spin = clock[CLOCK_PARAMS][0].spin_ns
    total = 0
    status = ST_OK
    if spin > 0:
        t_end = sysio.monotonic_ns() + spin
        while sysio.monotonic_ns() < t_end:
            got, status = protocol.reap_all(clock, side)
            total += got
            if status != ST_OK or got > 0:
                break
            atomics.cpu_relax()
    return total, status


@njit(inline="always")
def before_pop(clock):
    return


@njit(inline="always")
def serve(clock, request):
    """Check the popped request's buffer (header id and size; the checksum where ``verify``
    takes it), stamp it as processed (published to the driver by push_used, a release). A
    status."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    pool = clock[CLOCK_POOL]
    if request >= params.requests:
        return ST_BAD_ID
    state.found = True
    state.spin_until = 0
    state.done += 1
    if not params.touch_pool:
        return ST_OK  # verify = "ring": nothing to read or stamp beyond the ring
    base = slot_of(clock, request) * params.slot_words
    size = pool[base + H_SIZE]
    if pool[base + H_ID] != request or clock[CLOCK_IO][IO_SIZE] != size:
        return ST_HEADER
    if chosen(request, params.verify_mask):
        c = np.int64(size)
        for k in range((size + 7) >> 3):
            c = _sum_step(c, pool[base + HEADER_WORDS + k])
        if c != pool[base + H_SUM]:
            return ST_CHECKSUM
    pool[base + H_STAMP] = ~request
    return ST_OK


@njit(inline="always")
def ring_empty(clock):
    params = clock[CLOCK_PARAMS][0]
    if params.hook_late_ns > 0 and clock[CLOCK_STATE][0].done >= params.requests:
        # test hook: the last notify decision comes late, after the driver has reaped
        t_late = sysio.monotonic_ns() + params.hook_late_ns
        while sysio.monotonic_ns() < t_late:
            atomics.cpu_relax()


@njit(inline="always")
def interrupt(clock, count):
    params = clock[CLOCK_PARAMS][0]
    for _ in range(count):
        error = _notify(params.call_fd, params)
        if error < 0:
            clock[CLOCK_STATE][0].detail = error
            return ST_ERRNO
    return ST_OK


protocol.implement_clock(PARAMS, sys.modules[__name__])


# --- the driver ----------------------------------------------------------------------------------
@njit(inline="always")
def _has_room(clock):
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    return (
        not state.blocked and state.next_request < params.requests and state.in_flight < params.cap
    )


@njit(inline="always")
def _submit(clock, side):
    """Batches while there is room; a polling driver looks at the ring after every batch."""
    status = ST_OK
    state = clock[CLOCK_STATE][0]
    while _has_room(clock):
        status = protocol.submit_batch(clock, side)
        if state.status != ST_OK:
            return state.status  # after_add found a lost buffer (its id in state.detail)
        if status != ST_OK or clock[CLOCK_PARAMS][0].driver_polls:
            break
    return status


@njit(inline="always")
def _handle_interrupt(clock, side):
    """Interrupt mode with nothing to submit: sleep until the device calls, then the handler."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    value, status, detail = _wait_notify(
        params.call_fd, params, clock[CLOCK_CONTROL], K_DRV_WAIT, W_CALL
    )
    if status != ST_OK:
        state.detail = detail
        return status
    state.received += value
    counters = side[3]
    counters[C_IRQS_DELIVERED] += 1
    got, status = protocol.reap_round(clock, side, True)
    if got == 0 and status == ST_OK:
        counters[C_SPURIOUS_DRV] += 1
    return status


@njit(inline="always")
def _settle(clock, side, iteration):
    """After the clock has stopped. The device notifies *after* publishing a completion, so
    its last notification can land once this side has reaped everything and left (vbus-prio:
    a signal and its event, never taken). Wait for the device to finish, then handle what it
    sent as the driver would (a poll round; in interrupt mode the handler: disable, reap,
    re-enable), so the end-of-run audit sees a quiet ring. Any completion found now is one
    too many (the slot check calls it a duplicate). A status."""
    params = clock[CLOCK_PARAMS][0]
    control = clock[CLOCK_CONTROL]
    cfg, mem, st, ctr, io = side
    while atomics.load_acquire(control, K_DEV_DONE) == 0:
        iteration += 1
        status = _should_stop(control, params, iteration)
        if status != ST_OK:
            return status
        atomics.cpu_relax()
    status = ST_OK
    for _ in range(4):  # a replay found on re-enabling is handled again, a few times at most
        got, status = protocol.reap_round(clock, side, False)
        if status != ST_OK or params.driver_polls:
            break
        rearmed = ring.enable_interrupts(cfg, mem, st, ctr, io)
        protocol.ran(clock, ctr, OP_ENABLE_INTERRUPTS)
        if rearmed == 1:
            break
    return status


@njit(nogil=True, cache=True, _nrt=False)
def driver_loop(clock, cfg, mem, st, ctr, io):
    """The driver thread: submit every request, reap and check every completion.

    The ring's arrays come as arguments, not as one side tuple unpacked here: numba 0.68.1
    dropped a model's store in an out-of-line function that did that (vbench.jit, point 5).
    The tuple built below only feeds inlined code."""
    side = (cfg, mem, st, ctr, io)
    if not _begin(clock, K_DRV_WAIT):
        return
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    control = clock[CLOCK_CONTROL]
    status = ST_OK
    state.t0 = sysio.monotonic_ns()
    state.tsc0 = atomics.rdtsc()
    if params.driver_polls:
        ring.disable_interrupts(cfg, mem, st, ctr, io)
        protocol.ran(clock, ctr, OP_DISABLE_INTERRUPTS)
    iteration = 0
    while state.completed < params.requests:
        iteration += 1
        status = _should_stop(control, params, iteration)
        if status != ST_OK:
            break
        status = _submit(clock, side)
        if status != ST_OK:
            break
        if params.driver_polls:
            got, status = protocol.reap_round(clock, side, False)
            if status != ST_OK:
                break
            if got == 0 and not _has_room(clock):
                atomics.store_relaxed(control, K_DRV_WAIT, W_POLL_USED)
                atomics.cpu_relax()
            continue
        if _has_room(clock):
            continue
        status = _handle_interrupt(clock, side)
        if status != ST_OK:
            break
    state.t1 = sysio.monotonic_ns()
    state.tsc1 = atomics.rdtsc()
    if status == ST_OK:
        status = _settle(clock, side, iteration)
    ctr[C_REQUESTS] = state.completed
    if status != ST_OK:
        _fail(control, state, status)


# --- the device ----------------------------------------------------------------------------------
@njit(inline="always")
def _wake(clock, side):
    """A sleeping device blocks on the kick eventfd; woken, it disables kicks. A status."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    cfg, mem, st, ctr, io = side
    value, status, detail = _wait_notify(
        params.kick_fd, params, clock[CLOCK_CONTROL], K_DEV_WAIT, W_KICK
    )
    if status != ST_OK:
        state.detail = detail
        return status
    state.received += value
    ctr[C_DEV_WAKEUPS] += 1
    state.found = False
    ring.disable_kicks(cfg, mem, st, ctr, io)
    protocol.ran(clock, ctr, OP_DISABLE_KICKS)
    return ST_OK


@njit(inline="always")
def _sleep_or_look_again(clock, side):
    """The ring ran empty: optionally keep polling a while (vhost's busyloop_timeout), then
    re-enable kicks with the re-check. True when the device may sleep, False to look again."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    cfg, mem, st, ctr, io = side
    if params.spin_ns > 0:
        now = sysio.monotonic_ns()
        if state.spin_until == 0:
            state.spin_until = now + params.spin_ns
        if now < state.spin_until:
            atomics.cpu_relax()
            return False
    state.spin_until = 0
    still_empty = ring.enable_kicks(cfg, mem, st, ctr, io)
    protocol.ran(clock, ctr, OP_ENABLE_KICKS)
    if not state.found:
        ctr[C_SPURIOUS_DEV] += 1
    if still_empty == 1:
        return True
    # the re-check found work (or a replay is due): look again
    ctr[C_DEV_WAKEUPS] += 1
    state.found = False
    ring.disable_kicks(cfg, mem, st, ctr, io)
    protocol.ran(clock, ctr, OP_DISABLE_KICKS)
    return False


@njit(nogil=True, cache=True, _nrt=False)
def device_loop(clock, cfg, mem, st, ctr, io):
    """The device thread: consume every request, verify it, complete it, notify. The ring's
    arrays come as arguments for the reason :func:`driver_loop` gives."""
    side = (cfg, mem, st, ctr, io)
    if not _begin(clock, K_DEV_WAIT):
        return
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    control = clock[CLOCK_CONTROL]
    status = ST_OK
    if params.device_polls:
        ring.disable_kicks(cfg, mem, st, ctr, io)
        protocol.ran(clock, ctr, OP_DISABLE_KICKS)
    asleep = not params.device_polls
    state.found = True
    iteration = 0
    while True:
        if asleep:
            status = _wake(clock, side)
            if status != ST_OK:
                break
            asleep = False
        iteration += 1
        status = _should_stop(control, params, iteration)
        if status != ST_OK:
            break
        if params.hook_stall:
            atomics.store_relaxed(control, K_DEV_WAIT, W_STALLED_HOOK)
            atomics.cpu_relax()
            continue  # test hook: a device that never consumes
        request, status = protocol.serve_one(clock, side)
        if status != ST_OK:
            break
        if request >= 0:
            continue
        if state.done >= params.requests:
            break  # every request completed and the empty-ring decision made: finished
        if params.device_polls:
            atomics.store_relaxed(control, K_DEV_WAIT, W_POLL_AVAIL)
            atomics.cpu_relax()
            continue
        asleep = _sleep_or_look_again(clock, side)
    if status != ST_OK:
        _fail(control, state, status)
    atomics.store_release(control, K_DEV_DONE, 1)  # after its last notification: the driver settles
