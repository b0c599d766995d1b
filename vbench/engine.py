"""The deterministic simulation: a driver and a device, each with its own clock, run one model.

What each side does with the ring is :mod:`vbench.protocol` (written once, shared with the
native run); this module decides *when* each side acts and what that costs. It is the
protocol's simulated clock: the hooks at the end price every step and record completions.

Timing model (all figures come from a cost preset, see :mod:`vbench.costs`):

- The side whose next action is earliest acts next (device first on ties), atomically for one
  step: the driver submits a batch or handles an interrupt; the device pops, serves and
  completes one request, or finds the ring empty. A step's writes are visible from then on.
- Each op's line transfers and full barriers are charged to the side that made them; so are
  data copies. A kick costs the driver one VM exit (times the user-space factor when the device
  model runs in host user space) and wakes a sleeping device ``wake_ns`` later. An interrupt
  costs the device ``irq_send_ns``; the driver runs its handler (``irq_exits`` exits plus
  ``irq_handler_ns``) once per delivery, ``vcpu_wake_ns`` later if it was idle.
- The guest is one vCPU: its clock carries its work per submitted request (``driver_ns``),
  its interrupt entries and its work per completion (``completion_ns``, done as it takes each
  one), so a guest busy with completions delays its next submissions and finishes the
  completions it takes later, later: the order in which it takes them matters.
- A sleeping device re-enables kicks and re-checks before it sleeps; a polling device keeps
  kicks disabled and looks again when the driver could have changed something. The driver waits
  for interrupts (blk-style handler: disable, reap all, re-enable with a re-check) or polls.
- Closed loop: the driver keeps at most ``cap`` requests in flight and a request's latency runs
  from the moment it could be submitted; open loop: from its arrival time.
- The driver submits in arrival order and a full ring stops it until it reaps; where each of
  several classes has its own ring (``per_class``), a full ring stops only its class.

If neither side can ever act again while requests are outstanding, a notification was lost:
the run stops with an error naming it. Same inputs, same counters: bit for bit.

The run is one tuple, the **clock** (see :func:`new_clock` for its fields, ``CLOCK_*`` for
their places): the parameters and the state are one-element record arrays (``PARAMS`` and
``STATE`` dtypes: named fields, no slot numbers), the rest the run's arrays.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
from numba import njit
from numba.core.errors import NumbaIRAssumptionWarning

from vbench import protocol
from vbench.counters import (
    C_BYTES,
    C_BYTES_COPIED,
    C_DEV_WAKEUPS,
    C_INVALIDATED_DRV,
    C_IRQS_DELIVERED,
    C_LINES_DRV,
    C_MB_DRV,
    C_OPS,
    C_REQUESTS,
    C_SPURIOUS_DEV,
    C_SPURIOUS_DRV,
    C_VM_EXITS,
    IO_NOW,
    IO_SIZE,
    IO_SYNC,
    IO_WAKE_AT,
    N_CAUSES,
    N_IO,
    N_OPS,
    OP_DISABLE_INTERRUPTS,
    OP_DISABLE_KICKS,
    OP_ENABLE_KICKS,
    OP_FIRST_DEVICE,
    OP_POP,
    OP_PUSH_USED,
    OP_REAP,
    SIDE_DEVICE,
    SIDE_DRIVER,
    T_BARRIERS,
    T_COPY,
    T_DRIVER,
    T_EXITS,
    T_IRQ,
    T_LINES,
    T_SERVICE,
    T_WAKE,
)
from vbench.histogram import N_BUCKETS, record
from vbench.memory import new_tracker
from vbench.models import interface as ring
from vbench.protocol import (
    STATUS_BAD_REQUEST,
    STATUS_DEADLOCK,
    STATUS_DUPLICATE,
    STATUS_MORE,
    STATUS_NO_PROGRESS,
    STATUS_OK,
)

#: The run's parameters: the engine's (from ``[engine]``) and the preset's figures it uses.
PARAMS = np.dtype(
    [
        ("requests", np.int64),  # the run's length
        ("batch", np.int64),  # requests made available per kick decision
        ("cap", np.int64),  # closed loop: most requests in flight (0: open loop)
        ("device_polls", np.bool_),
        ("driver_polls", np.bool_),
        ("service_ns", np.float64),
        ("service_ns_per_byte", np.float64),
        ("driver_ns", np.float64),
        ("completion_ns", np.float64),  # the guest's work per completion, before its instant
        ("poll_ns", np.float64),
        ("exit_ns", np.float64),  # one kick's exit, times the user-space factor if it applies
        ("irq_exits", np.int64),
        ("irq_exits_ns", np.float64),  # irq_exits exits
        ("irq_handler_ns", np.float64),
        ("irq_send_ns", np.float64),
        ("wake_ns", np.float64),
        ("vcpu_wake_ns", np.float64),
        ("line_ns", np.float64),  # a miss: the line's data from the other cache
        ("invalidate_ns", np.float64),  # an upgrade: the other cache's copy invalidated
        ("barrier_ns", np.float64),
        ("copy_ns_per_byte", np.float64),
        # each class has its own ring (virtio-mq, vbus-prio) and there are several: a full
        # ring stops only its class's submissions (see protocol.submit_batch)
        ("per_class", np.bool_),
    ]
)

#: The run's state between calls (a run longer than the window is fed in pieces) and after.
STATE = np.dtype(
    [
        ("driver_clock", np.float64),
        ("device_clock", np.float64),
        ("device_wake_at", np.float64),  # a sleeping device wakes then (inf: never)
        ("irq_at", np.float64),  # an interrupt reaches the driver then (inf: none pending)
        ("driver_next", np.float64),  # when the driver acts next, as this step saw it
        ("last_done", np.float64),  # the last completion's instant
        ("first_arrival", np.float64),  # set by the caller
        ("filled", np.int64),  # requests below this have entered the window
        ("low", np.int64),  # requests below this have left it
        ("next_request", np.int64),
        ("in_flight", np.int64),
        ("completed", np.int64),
        ("steps", np.int64),
        ("status", np.int64),
        ("detail", np.int64),  # the request (or ring answer) a failure is about
        ("digest", np.uint64),  # of the completion sequence: FNV-1a over 64-bit words
        ("started", np.bool_),
        ("device_asleep", np.bool_),
        ("kick_while_awake", np.bool_),  # a kick came while the device was awake
        ("device_found", np.bool_),  # the device found work since its last wakeup
        ("blocked", np.bool_),  # the driver found the ring full and has not reaped since
        ("poll_idle", np.bool_),  # the polling driver's last look found nothing
    ]
)

# where each of the run's arrays sits in the clock tuple
(
    CLOCK_PARAMS,
    CLOCK_STATE,
    CLOCK_REQUESTS,  # (size, segments, prio, direction, window mask): what add reads
    CLOCK_ARRIVAL,
    CLOCK_START,  # when each request's latency starts
    CLOCK_DONE,  # 1 once the request completed
    CLOCK_WAITING,  # per class: made available, not yet taken by the device
    CLOCK_HOL,  # per class: head-of-line time
    CLOCK_HIST,
    CLOCK_LAT_MAX,
    CLOCK_CAUSES,
    CLOCK_COUNTERS,
    CLOCK_IO,
    CLOCK_CHARGED,  # what _charge has charged: misses and barriers per side, bytes copied,
    # invalidations per side
    CLOCK_DRIVER,  # the driver's ring arguments (cfg, mem, st, ctr, io)
    CLOCK_DEVICE,  # the device's
    CLOCK_OP_NS,  # the model's per-operation CPU cost, ns, in the order of counters.OPS
    CLOCK_CURSOR,  # per class (per_class runs): its oldest request not yet added, or beyond
    CLOCK_FULL,  # per class (per_class runs): 1 while its ring has refused an add
    CLOCK_ADDED,  # per request (per_class runs): 1 from its add to its completion
) = range(20)

DIGEST_SEED = 0xCBF29CE484222325
_DIGEST_PRIME = 0x100000001B3

# the statuses a simulation ends with (see vbench.protocol for the table)
ST_OK, ST_DEADLOCK, ST_DUPLICATE = STATUS_OK, STATUS_DEADLOCK, STATUS_DUPLICATE
ST_BAD_REQUEST, ST_NO_PROGRESS, ST_MORE = STATUS_BAD_REQUEST, STATUS_NO_PROGRESS, STATUS_MORE
STATUS_TEXT = protocol.STATUS_TEXT

INF = math.inf

# numba's IR inliner (the model operations are inlined into the engine) trips an internal
# "pedantic check" warning on variables it renames; it is noise to a vbench user.
warnings.filterwarnings("ignore", category=NumbaIRAssumptionWarning)


# --- costs -------------------------------------------------------------------------------------
@njit(inline="always")
def _charge(clock, side):
    """Time for the lines, full barriers and copies ``side`` incurred since its last charge."""
    params = clock[CLOCK_PARAMS][0]
    counters = clock[CLOCK_COUNTERS]
    charged = clock[CLOCK_CHARGED]
    causes = clock[CLOCK_CAUSES]
    lines = counters[C_LINES_DRV + side] - charged[side]
    barriers = counters[C_MB_DRV + side] - charged[2 + side]
    copied = counters[C_BYTES_COPIED] - charged[4]
    invalidated = counters[C_INVALIDATED_DRV + side] - charged[5 + side]
    if lines == 0 and barriers == 0 and copied == 0 and invalidated == 0:
        # most operations hit in the side's cache: adding 0.0 to the clock and the causes
        # would change nothing (bit for bit), so skip the arithmetic and the stores
        return 0.0
    charged[side] += lines
    charged[2 + side] += barriers
    charged[4] += copied
    charged[5 + side] += invalidated
    line_time = lines * params.line_ns + invalidated * params.invalidate_ns
    barrier_time = barriers * params.barrier_ns
    copy_time = copied * params.copy_ns_per_byte
    causes[T_LINES] += line_time
    causes[T_BARRIERS] += barrier_time
    causes[T_COPY] += copy_time
    return line_time + barrier_time + copy_time


@njit(inline="always")
def _notification_control(clock, side, which):
    """The per-wakeup operations, out of line so the hot loop inlines only the per-request
    ones: 0 disable_kicks, 1 enable_kicks, 2 disable_interrupts (counted and priced)."""
    result = _ring_control(side[0], side[1], side[2], side[3], side[4], which)
    if which == 0:
        protocol.ran(clock, side[3], OP_DISABLE_KICKS)
    elif which == 1:
        protocol.ran(clock, side[3], OP_ENABLE_KICKS)
    else:
        protocol.ran(clock, side[3], OP_DISABLE_INTERRUPTS)
    return result


@njit(_nrt=False)
def _ring_control(cfg, mem, st, ctr, io, which):
    # The ring's arrays as arguments, not as one tuple: numba 0.68.1 compiled this function,
    # given the side's tuple and its unpacking, without the model's last store in
    # disable_kicks (the TX timer's disarm: `tests/test_engine.py::test_tx_timer_*` caught it)
    if which == 0:
        return ring.disable_kicks(cfg, mem, st, ctr, io)
    if which == 1:
        return ring.enable_kicks(cfg, mem, st, ctr, io)
    return ring.disable_interrupts(cfg, mem, st, ctr, io)


# --- the steps -----------------------------------------------------------------------------------
@njit(inline="always")
def _next_arrival(clock):
    """When the request the driver would add next arrives, if it has one to make available
    and room for it (INF if not; whether it has arrived is for the caller to say). The
    driver's next request is looked up once (in a per-class run it is a scan)."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    if state.blocked or (params.cap != 0 and state.in_flight >= params.cap):
        return INF
    request = upcoming(clock)
    if request >= params.requests:
        return INF
    return clock[CLOCK_ARRIVAL][np.uint64(request) & clock[CLOCK_REQUESTS][4]]


@njit(inline="always")
def _next_times(clock):
    """When each side acts next: (driver, device)."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    t_device = state.device_wake_at if state.device_asleep else state.device_clock
    if params.driver_polls and state.in_flight > 0 and not state.poll_idle:
        # a polling driver that has not yet come back empty looks again at once: nothing it
        # could wait for is earlier than now (what the general case below finds, without
        # looking up the next arrival: every polling step after a device step or a reap that
        # found work takes this)
        return state.driver_clock, t_device
    t_driver = INF
    if not params.driver_polls and state.irq_at < INF:
        t_driver = state.irq_at
    arrival = _next_arrival(clock)
    if arrival < t_driver:
        t_driver = arrival
    if params.driver_polls and state.in_flight > 0 and not state.device_asleep:
        # a poll came back empty: look again once the device has had a chance to act (with the
        # device asleep nothing more will change)
        t_poll = max(t_device, state.driver_clock)
        if t_poll < t_driver:
            t_driver = t_poll
    if t_driver < state.driver_clock:
        t_driver = state.driver_clock
    return t_driver, t_device


@njit(inline="always")
def _wake_device(clock):
    """A sleeping device's turn: it wakes and disables kicks. True when a mitigation timer
    defers the work instead (the device sleeps on until the timer)."""
    state = clock[CLOCK_STATE][0]
    counters = clock[CLOCK_COUNTERS]
    io = clock[CLOCK_IO]
    state.device_clock = max(state.device_clock, state.device_wake_at)
    state.device_asleep = False
    state.device_wake_at = INF
    counters[C_DEV_WAKEUPS] += 1
    state.device_found = False
    io[IO_NOW] = np.int64(state.device_clock)
    io[IO_WAKE_AT] = 0
    defer = _notification_control(clock, clock[CLOCK_DEVICE], 0)
    state.device_clock += _charge(clock, SIDE_DEVICE)
    if defer == 1:
        # a mitigation timer: notifications stay off, work waits for the timer
        state.device_asleep = True
        state.device_wake_at = max(float(io[IO_WAKE_AT]), state.device_clock)
        counters[C_DEV_WAKEUPS] -= 1
        state.device_found = True
        return True
    return False


@njit(inline="always")
def _device_idle(clock):
    """The device found the ring empty: a polling device looks again one poll after the
    driver's next action; a sleeping one re-enables kicks with vhost's re-check
    (``vhost_enable_notify``) and sleeps unless it finds work or a kick came meanwhile."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    counters = clock[CLOCK_COUNTERS]
    if params.device_polls:
        # strictly after the driver acts, or a polling driver that waits on the device would
        # never get its turn; a polling core costs nothing extra
        t_driver = state.driver_next
        state.device_clock = (
            max(state.device_clock, t_driver if t_driver < INF else state.device_clock)
            + params.poll_ns
        )
        return
    still_empty = _notification_control(clock, clock[CLOCK_DEVICE], 1)
    state.device_clock += _charge(clock, SIDE_DEVICE)
    if not state.device_found:
        counters[C_SPURIOUS_DEV] += 1
    if still_empty == 1 and not state.kick_while_awake:
        state.device_asleep = True
        state.device_wake_at = INF
        return
    # a re-check found work, a replay is due, or a kick came while awake
    state.kick_while_awake = False
    counters[C_DEV_WAKEUPS] += 1
    state.device_found = False
    _notification_control(clock, clock[CLOCK_DEVICE], 0)
    state.device_clock += _charge(clock, SIDE_DEVICE)


@njit(inline="always")
def _device_step(clock):
    """The device's turn: wake if asleep, serve one request or find the ring empty."""
    state = clock[CLOCK_STATE][0]
    state.poll_idle = False
    if state.device_asleep and _wake_device(clock):
        return STATUS_OK
    request, status = protocol.serve_one(clock, clock[CLOCK_DEVICE])
    if status == STATUS_OK and request < 0:
        _device_idle(clock)
    return status


@njit(_nrt=False)
def _handler_reap(clock):
    """The interrupt handler's reap round, out of line: it runs once per interrupt, and a
    second inlined copy of the model's reap path would only slow the engine's hot loop."""
    return protocol.reap_round(clock, clock[CLOCK_DRIVER], True)


@njit(inline="always")
def _interrupt_handler(clock):
    """The driver's interrupt: its exits and handler entry, then the handler's reap round."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    counters = clock[CLOCK_COUNTERS]
    causes = clock[CLOCK_CAUSES]
    state.irq_at = INF
    counters[C_IRQS_DELIVERED] += 1
    counters[C_VM_EXITS] += params.irq_exits
    state.driver_clock += params.irq_exits_ns + params.irq_handler_ns
    causes[T_EXITS] += params.irq_exits_ns
    causes[T_IRQ] += params.irq_handler_ns
    got, status = _handler_reap(clock)
    if status == STATUS_OK and got == 0:
        counters[C_SPURIOUS_DRV] += 1
    return status


@njit(inline="always")
def _driver_step(clock, t_driver):
    """The driver's turn: its interrupt handler, or a poll round, then a batch if it can."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    state.driver_clock = t_driver
    if not params.driver_polls and state.irq_at <= t_driver:
        return _interrupt_handler(clock)
    if params.driver_polls and state.in_flight > 0:
        # a poll round, inlined: a polling driver makes one or two per request (measured:
        # polling mode 2.2x sleeping mode's cost per request with the round out of line, 1.2-1.4x
        # inlined)
        got, status = protocol.reap_round(clock, clock[CLOCK_DRIVER], False)
        if status != STATUS_OK:
            return status
        state.poll_idle = got == 0
        if got == 0 and not _next_arrival(clock) <= state.driver_clock:
            state.driver_clock += params.poll_ns
            return STATUS_OK
    if not _next_arrival(clock) <= state.driver_clock:
        return STATUS_OK
    return protocol.submit_batch(clock, clock[CLOCK_DRIVER])


@njit(inline="always")
def _begin(clock):
    """The run's first call: each side in its mode (a polling side keeps notifications off)."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    state.started = True
    state.device_asleep = not params.device_polls
    state.device_found = True
    if params.device_polls:
        _notification_control(clock, clock[CLOCK_DEVICE], 0)
        state.device_clock += _charge(clock, SIDE_DEVICE)
    if params.driver_polls:
        _notification_control(clock, clock[CLOCK_DRIVER], 2)
        state.driver_clock += _charge(clock, SIDE_DRIVER)


@njit(cache=True, nogil=True, _nrt=False)
def simulate(clock):
    """Run the window's requests through one model instance; the clock's state, counters,
    causes, histograms, head-of-line times and digest are filled in place.

    The per-request arrays (the workload's five, start, done) are a window whose length is a
    power of two: request r lives at ``r & (length - 1)``. ``state.filled`` says which requests
    are in it; when the driver would look past them, the run returns with ``state.status ==
    ST_MORE``; the caller slides the window and calls again, and the run goes on exactly as if
    the window had held everything (see :func:`vbench.simulation.run_model`).

    ``hol[c]``: device time spent serving requests of a lower class than c while requests of
    class c were waiting to be taken (summed over those waiting requests): head-of-line
    blocking, the cost a ring without priority imposes on an urgent request."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    state.low = state.filled - clock[CLOCK_ARRIVAL].shape[0]
    if not state.started:
        _begin(clock)
    max_steps = 64 * params.requests + 100000
    status = STATUS_OK
    while state.completed < params.requests:
        if state.filled < params.requests and _window_next(clock) + params.batch > state.filled:
            status = STATUS_MORE  # a batch may look at up to `batch` requests from next on
            break
        state.steps += 1
        if state.steps > max_steps:
            status = STATUS_NO_PROGRESS
            break
        t_driver, t_device = _next_times(clock)
        if t_driver == INF and t_device == INF:
            status = STATUS_DEADLOCK
            break
        if t_device <= t_driver:
            state.driver_next = t_driver
            status = _device_step(clock)
        else:
            status = _driver_step(clock, t_driver)
        if status != STATUS_OK:
            break
    clock[CLOCK_COUNTERS][C_REQUESTS] = state.completed
    state.status = status


# --- the protocol's simulated clock (vbench.protocol's hooks) --------------------------------------
@njit(inline="always")
def upcoming(clock):
    """The request the driver adds next: the next in arrival order; in a ``per_class`` run the
    oldest not yet added of a class whose ring has room (``params.requests``: none)."""
    if clock[CLOCK_PARAMS][0].per_class:
        return _oldest_open(clock, True)
    return clock[CLOCK_STATE][0].next_request


@njit(inline="always")
def _window_next(clock):
    """Where the driver's look ahead starts, for the window: as :func:`upcoming`, but counting
    classes whose ring is full too (they submit again once it has room)."""
    if clock[CLOCK_PARAMS][0].per_class:
        return min(_oldest_open(clock, False), clock[CLOCK_STATE][0].filled)
    return clock[CLOCK_STATE][0].next_request


@njit(_nrt=False)
def _oldest_open(clock, open_only):
    """Each class's cursor moved to its oldest request not yet added (or to the window's end),
    then the oldest of them, of the classes whose ring has room where ``open_only``. Out of
    line: only runs with a ring per class take this path."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    cursor = clock[CLOCK_CURSOR]
    full = clock[CLOCK_FULL]
    prio = clock[CLOCK_REQUESTS][2]
    mask = clock[CLOCK_REQUESTS][4]
    limit = min(state.filled, params.requests)
    best = params.requests
    for k in range(cursor.shape[0]):
        c = cursor[k]
        while c < limit and prio[np.uint64(c) & mask] != k:
            c += 1
        cursor[k] = c
        if c < limit and c < best and not (open_only and full[k] != 0):
            best = c
    return best


@njit(inline="always")
def advance(clock, request):
    """``request`` was added: the next in order (or, ``per_class``, the next of its class)."""
    state = clock[CLOCK_STATE][0]
    if not clock[CLOCK_PARAMS][0].per_class:
        state.next_request = request + 1
        return
    j = np.uint64(request) & clock[CLOCK_REQUESTS][4]
    clock[CLOCK_CURSOR][clock[CLOCK_REQUESTS][2][j]] = request + 1
    clock[CLOCK_ADDED][j] = 1
    if request + 1 > state.next_request:
        state.next_request = request + 1  # the newest add: nothing above it was added


@njit(inline="always")
def refused(clock, request):
    """The ring had no room for ``request``: the driver waits until it reaps; ``per_class``,
    only the request's class waits (True: another class may go on)."""
    if not clock[CLOCK_PARAMS][0].per_class:
        clock[CLOCK_STATE][0].blocked = True
        return False
    j = np.uint64(request) & clock[CLOCK_REQUESTS][4]
    clock[CLOCK_FULL][clock[CLOCK_REQUESTS][2][j]] = 1
    return True


@njit(inline="always")
def request_ready(clock, request):
    """Open loop: a request can be made available once it has arrived."""
    arrival = clock[CLOCK_ARRIVAL][np.uint64(request) & clock[CLOCK_REQUESTS][4]]
    return arrival <= clock[CLOCK_STATE][0].driver_clock


@njit(inline="always")
def before_add(clock, request):
    clock[CLOCK_IO][IO_NOW] = np.int64(clock[CLOCK_STATE][0].driver_clock)


@njit(inline="always")
def after_add(clock, request, added):
    """The add's cost; an added request's latency starts (closed loop: now; open loop: at its
    arrival), then the guest's own work on it."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    state.driver_clock += _charge(clock, SIDE_DRIVER)
    if added == 0:
        return
    j = np.uint64(request) & clock[CLOCK_REQUESTS][4]
    start = clock[CLOCK_START]
    start[j] = state.driver_clock if params.cap > 0 else clock[CLOCK_ARRIVAL][j]
    state.driver_clock += params.driver_ns
    clock[CLOCK_CAUSES][T_DRIVER] += params.driver_ns
    clock[CLOCK_WAITING][clock[CLOCK_REQUESTS][2][j]] += 1


@njit(inline="always")
def after_op(clock, side):
    state = clock[CLOCK_STATE][0]
    if side == SIDE_DRIVER:
        state.driver_clock += _charge(clock, SIDE_DRIVER)
    else:
        state.device_clock += _charge(clock, SIDE_DEVICE)


@njit(inline="always")
def op_time(clock, op):
    """The operation's own CPU work (the preset's figure for this model's operation), on the
    clock of the side that ran it (a free operation adds 0.0: nothing changes, bit for bit).
    Its cause, ``ops``, is not summed here, once per operation, but at the end of the run from
    the counts (:func:`ops_cause`): every counted operation is charged, so the two are equal,
    and the hot loop keeps one store less per operation (bench.py: 9.6 -> 10.x M req/s)."""
    state = clock[CLOCK_STATE][0]
    if op < OP_FIRST_DEVICE:
        state.driver_clock += clock[CLOCK_OP_NS][op]
    else:
        state.device_clock += clock[CLOCK_OP_NS][op]


def ops_cause(clock: tuple) -> float:
    """The ``ops`` cause of a run: its counted operations times their costs (ns)."""
    counts = clock[CLOCK_COUNTERS][C_OPS : C_OPS + N_OPS].astype(np.float64)
    return float(counts @ clock[CLOCK_OP_NS])


@njit(inline="always")
def _stalled_op(clock, op):
    """An operation run inside a synchronous call's exit: counted, and priced on the driver's
    clock whichever side's operation it is (the vCPU is stalled while the host runs it).

    It counts through ``clock[CLOCK_COUNTERS]``, not the ``ctr`` its caller unpacked from a
    side's tuple: through that one, numba 0.68.1 lost the count after the reap (the
    out-of-line-unpacking miscompile of vbench.jit, point 5; tests/test_op_costs.py caught it)."""
    clock[CLOCK_COUNTERS][C_OPS + op] += 1
    clock[CLOCK_STATE][0].driver_clock += clock[CLOCK_OP_NS][op]


@njit(inline="always")
def kick(clock):
    """One VM exit; a sleeping device wakes ``wake_ns`` later (the earliest kick counts)."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    causes = clock[CLOCK_CAUSES]
    clock[CLOCK_COUNTERS][C_VM_EXITS] += 1
    state.driver_clock += params.exit_ns
    causes[T_EXITS] += params.exit_ns
    if state.device_asleep:
        if state.driver_clock + params.wake_ns < state.device_wake_at:
            if state.device_wake_at == INF:
                causes[T_WAKE] += params.wake_ns
            state.device_wake_at = state.driver_clock + params.wake_ns
    else:
        state.kick_while_awake = True
    return STATUS_OK


@njit(inline="always")
def synchronous(clock, request):
    return _synchronous_call(clock, request)


@njit(_nrt=False)
def _synchronous_call(clock, request):
    """A synchronous call (vbus ``call()``): one exit in which the host runs the device's
    handler on the stalled vCPU's time; no ring, no kick decision, no interrupt. A status."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    counters = clock[CLOCK_COUNTERS]
    causes = clock[CLOCK_CAUSES]
    io = clock[CLOCK_IO]
    cfg, mem, device, ctr, _ = clock[CLOCK_DEVICE]
    driver = clock[CLOCK_DRIVER][2]
    counters[protocol.C_KICKS] += 1
    counters[C_VM_EXITS] += 1
    state.driver_clock += params.exit_ns
    causes[T_EXITS] += params.exit_ns
    io[IO_SYNC] = 1  # the device runs inside this exit
    popped = ring.pop(cfg, mem, device, ctr, io)
    _stalled_op(clock, OP_POP)
    state.driver_clock += _charge(clock, SIDE_DEVICE)
    if popped != request:
        state.detail = popped
        return STATUS_BAD_REQUEST
    service = params.service_ns + params.service_ns_per_byte * io[IO_SIZE]
    state.driver_clock += service
    causes[T_SERVICE] += service
    counters[C_BYTES] += io[IO_SIZE]
    ring.push_used(cfg, mem, device, ctr, io)
    _stalled_op(clock, OP_PUSH_USED)
    state.driver_clock += _charge(clock, SIDE_DEVICE)
    reaped = ring.reap(cfg, mem, driver, ctr, io)
    _stalled_op(clock, OP_REAP)
    state.driver_clock += _charge(clock, SIDE_DRIVER)
    if reaped < 0:
        state.detail = reaped
        return STATUS_BAD_REQUEST
    status = complete(clock, reaped)
    if status != STATUS_OK:
        state.detail = reaped
        return status
    prio = clock[CLOCK_REQUESTS][2]
    clock[CLOCK_WAITING][prio[np.uint64(request) & clock[CLOCK_REQUESTS][4]]] -= 1
    return STATUS_OK


@njit(inline="always")
def complete(clock, request):
    """Complete a request now: the guest's work on it (``completion_ns``), its latency, and
    (request, instant) folded into the digest of the completion sequence. A status."""
    state = clock[CLOCK_STATE][0]
    done = clock[CLOCK_DONE]
    if request >= state.next_request or request < state.low:
        return STATUS_BAD_REQUEST
    j = np.uint64(request) & np.uint64(done.shape[0] - 1)
    if done[j] != 0:
        return STATUS_DUPLICATE
    params = clock[CLOCK_PARAMS][0]
    if params.per_class:
        added = clock[CLOCK_ADDED]
        if added[j] == 0:
            return STATUS_BAD_REQUEST  # below the newest add, but never added
        added[j] = 0
        clock[CLOCK_FULL][clock[CLOCK_REQUESTS][2][j]] = 0  # its ring has a slot again
    done[j] = 1
    if params.completion_ns > 0.0:
        # the guest's own work on this completion ends its latency; the next completion it
        # takes waits for it (one vCPU: the order of taking is the order of finishing)
        state.driver_clock += params.completion_ns
        clock[CLOCK_CAUSES][T_DRIVER] += params.completion_ns
    now = state.driver_clock
    latency = now - clock[CLOCK_START][j]
    k = clock[CLOCK_REQUESTS][2][j]
    record(clock[CLOCK_HIST], k, latency)
    lat_max = clock[CLOCK_LAT_MAX]
    if latency > lat_max[k]:
        lat_max[k] = latency
    word = (np.uint64(request) << np.uint64(40)) ^ np.uint64(np.int64(now))
    state.digest = (state.digest ^ word) * np.uint64(_DIGEST_PRIME)
    state.completed += 1
    state.in_flight -= 1
    state.blocked = False
    state.last_done = now
    return STATUS_OK


@njit(inline="always")
def linger(clock, side):
    return 0, STATUS_OK  # the simulated handler re-arms at once


@njit(inline="always")
def before_pop(clock):
    clock[CLOCK_IO][IO_NOW] = np.int64(clock[CLOCK_STATE][0].device_clock)


@njit(inline="always")
def serve(clock, request):
    """Check the popped request is outstanding, then the device's work on it; head-of-line
    time accrues to every higher class with requests waiting."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    j = np.uint64(request) & clock[CLOCK_REQUESTS][4]
    if request >= state.next_request or request < state.low or clock[CLOCK_DONE][j] != 0:
        return STATUS_BAD_REQUEST
    if params.per_class and clock[CLOCK_ADDED][j] == 0:
        return STATUS_BAD_REQUEST  # below the newest add, but never added
    state.device_found = True
    service = params.service_ns + params.service_ns_per_byte * clock[CLOCK_IO][IO_SIZE]
    state.device_clock += service
    clock[CLOCK_CAUSES][T_SERVICE] += service
    waiting = clock[CLOCK_WAITING]
    hol = clock[CLOCK_HOL]
    k = clock[CLOCK_REQUESTS][2][j]
    waiting[k] -= 1
    for c in range(k + 1, waiting.shape[0]):
        if waiting[c] > 0:
            hol[c] += service * waiting[c]
    return STATUS_OK


@njit(inline="always")
def ring_empty(clock):
    return


@njit(inline="always")
def interrupt(clock, count):
    """The device raises ``count`` interrupts; a driver idle until then is halted and its
    vCPU must be woken first."""
    params = clock[CLOCK_PARAMS][0]
    state = clock[CLOCK_STATE][0]
    cost = count * params.irq_send_ns
    state.device_clock += cost
    clock[CLOCK_CAUSES][T_IRQ] += cost
    if state.irq_at == INF:
        idle = state.driver_next > state.device_clock
        state.irq_at = state.device_clock + (params.vcpu_wake_ns if idle else 0.0)
    return STATUS_OK


protocol.implement_clock(PARAMS, sys.modules[__name__])


# --- building a run (Python side) ----------------------------------------------------------------
def new_params(
    engine_spec,
    in_flight_cap: int,
    requests: int,
    costs: dict[str, float],
    per_class: bool = False,
) -> np.ndarray:
    """The run's parameter record from the ``[engine]`` spec and the preset's figures;
    ``per_class``: each of several classes has its own ring (a full one stops only its class)."""
    params = np.zeros(1, dtype=PARAMS)
    p = params  # one record: each field assigned as a one-element column
    p["requests"] = requests
    p["batch"] = engine_spec.batch
    p["cap"] = in_flight_cap
    p["device_polls"] = engine_spec.device == "poll"
    p["driver_polls"] = engine_spec.driver == "poll"
    p["service_ns"] = engine_spec.service_ns
    p["service_ns_per_byte"] = engine_spec.service_ns_per_byte
    p["driver_ns"] = engine_spec.driver_ns
    p["completion_ns"] = engine_spec.completion_ns
    p["poll_ns"] = engine_spec.poll_ns
    factor = costs["user_space_exit_factor"] if engine_spec.device_in_user_space else 1.0
    p["exit_ns"] = costs["exit_ns"] * factor
    irq_exits = int(costs["irq_exits"])
    p["irq_exits"] = irq_exits
    p["irq_exits_ns"] = irq_exits * costs["exit_ns"]
    p["irq_handler_ns"] = costs["irq_handler_ns"]
    p["irq_send_ns"] = costs["irq_send_ns"]
    p["wake_ns"] = costs["wake_ns"]
    p["vcpu_wake_ns"] = costs["vcpu_wake_ns"]
    p["line_ns"] = costs["line_transfer_ns"]
    p["invalidate_ns"] = costs["line_invalidate_ns"]
    p["barrier_ns"] = costs["full_barrier_ns"]
    p["copy_ns_per_byte"] = costs["copy_ns_per_byte"]
    p["per_class"] = per_class
    return params


def new_state() -> np.ndarray:
    """The state of a run that has not started."""
    state = np.zeros(1, dtype=STATE)
    state["device_wake_at"] = INF
    state["irq_at"] = INF
    state["digest"] = DIGEST_SEED
    return state


def new_clock(
    params: np.ndarray,
    instance,
    window: tuple[np.ndarray, ...],
    classes: int,
    op_ns: np.ndarray | None = None,
) -> tuple:
    """The run's tuple (see ``CLOCK_*``) for a model instance and a window of requests
    ``(arrival, size, segments, prio, direction)`` whose length is a power of two; ``op_ns``:
    the model's per-operation costs in the order of ``counters.OPS`` (None: free)."""
    arrival, size, segments, prio, direction = window
    length = arrival.shape[0]
    counters = new_tracker(instance.mem, instance.layout.line_areas())
    io = np.zeros(N_IO, dtype=np.int64)
    return (
        params,
        new_state(),
        (size, segments, prio, direction, np.uint64(length - 1)),
        arrival,
        np.zeros(length, dtype=np.float64),
        np.zeros(length, dtype=np.uint8),
        np.zeros(classes, dtype=np.int64),
        np.zeros(classes, dtype=np.float64),
        np.zeros((classes, N_BUCKETS), dtype=np.int64),
        np.zeros(classes, dtype=np.float64),
        np.zeros(N_CAUSES, dtype=np.float64),
        counters,
        io,
        np.zeros(7, dtype=np.int64),
        (instance.cfg, instance.mem, instance.drv, counters, io),
        (instance.cfg, instance.mem, instance.dev, counters, io),
        np.zeros(N_OPS, dtype=np.float64) if op_ns is None else np.asarray(op_ns, np.float64),
        np.zeros(classes, dtype=np.int64),
        np.zeros(classes, dtype=np.uint8),
        np.zeros(length, dtype=np.uint8),
    )
