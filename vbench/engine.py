"""The deterministic simulation: a driver and a device, each with its own clock, run one model.

The engine is written once and knows nothing of any ring: it calls the ten operations of
:mod:`vbench.models.interface`, which numba resolves per model at compile time. It decides
*when* each side acts and what that costs; the model decides *what* crosses shared memory.

Timing model (all figures come from a cost preset, see :mod:`vbench.costs`):

- The side whose next action is earliest acts next (device first on ties), atomically for one
  step: the driver submits a batch or handles an interrupt; the device pops, serves and
  completes one request, or finds the ring empty. A step's writes are visible from then on.
- Each op's line transfers and full barriers are charged to the side that made them; so are
  data copies. A kick costs the driver one VM exit (times the user-space factor when the device
  model runs in host user space) and wakes a sleeping device ``wake_ns`` later. An interrupt
  costs the device ``irq_send_ns``; the driver runs its handler (``irq_exits`` exits plus
  ``irq_handler_ns``) once per delivery, ``vcpu_wake_ns`` later if it was idle.
- A sleeping device re-enables kicks and re-checks before it sleeps; a polling device keeps
  kicks disabled and looks again when the driver could have changed something. The driver waits
  for interrupts (blk-style handler: disable, reap all, re-enable with a re-check) or polls.
- Closed loop: the driver keeps at most ``cap`` requests in flight and a request's latency runs
  from the moment it could be submitted; open loop: from its arrival time.

If neither side can ever act again while requests are outstanding, a notification was lost:
the run stops with an error naming it. Same inputs, same counters: bit for bit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numba import njit
from numba.core.errors import NumbaIRAssumptionWarning

from vbench.counters import (
    C_BYTES,
    C_BYTES_COPIED,
    C_DEV_WAKEUPS,
    C_IRQS,
    C_IRQS_DELIVERED,
    C_IRQS_SUPPRESSED,
    C_KICKS,
    C_KICKS_SUPPRESSED,
    C_LINES_DRV,
    C_MB_DRV,
    C_REQUESTS,
    C_RING_FULL,
    C_SPURIOUS_DEV,
    C_SPURIOUS_DRV,
    C_VM_EXITS,
    IO_DIR,
    IO_LAST,
    IO_NOW,
    IO_PRIO,
    IO_REQ,
    IO_SEGS,
    IO_SIZE,
    IO_SYNC,
    IO_WAKE_AT,
    N_CAUSES,
    N_IO,
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
from vbench.models import interface as m

# engine parameters (float64 vector)
P_BATCH, P_DEV_POLL, P_DRV_POLL, P_SERVICE_NS, P_SERVICE_PER_BYTE = range(5)
P_DRIVER_NS, P_POLL_NS, P_USER_EXIT, P_CAP = range(5, 9)
N_PARAMS = 9
# cost vector, in vbench.costs.COST_FIELDS order
K_LINE, K_EXIT, K_USER_FACTOR, K_IRQ_EXITS, K_IRQ_HANDLER = range(5)
K_IRQ_SEND, K_WAKE, K_VCPU_WAKE, K_MB, K_COPY = range(5, 10)
# outputs (float64 vector)
O_STATUS, O_DETAIL, O_FIRST_ARRIVAL, O_LAST_DONE, O_STEPS, O_DRIVER_T, O_DEVICE_T = range(7)
N_OUT = 8
# the run's state between calls (a run of more requests than the window is fed in pieces):
# integers, then floats
S_NXT, S_INFLIGHT, S_COMPLETED, S_STEPS, S_FLAGS, S_FILLED, S_N = range(7)
N_STATE_I = 7
F_TD, F_TV, F_DEV_WAKE_AT, F_IRQ_AT, F_LAST_DONE = range(5)
N_STATE_F = 5
# S_FLAGS bits
FL_STARTED, FL_DEV_ASLEEP, FL_KICK_AWAKE, FL_DEV_FOUND, FL_BLOCKED, FL_POLL_IDLE = (
    1,
    2,
    4,
    8,
    16,
    32,
)
# the digest of the completion sequence: FNV-1a over 64-bit words
DIGEST_SEED = 0xCBF29CE484222325
_DIGEST_PRIME = 0x100000001B3

ST_OK = 0
ST_DEADLOCK = 1  # nobody can act and requests are outstanding: a lost notification
ST_DUPLICATE = 2  # a request completed twice
ST_BAD_REQUEST = 3  # the device popped or the driver reaped something that is no request
ST_NO_PROGRESS = 4  # the step budget ran out
ST_MORE = 5  # paused: the window needs the next requests (not an error)
STATUS_TEXT = {
    ST_DEADLOCK: "lost wakeup: requests outstanding but neither side will ever act again",
    ST_DUPLICATE: "a request completed twice",
    ST_BAD_REQUEST: "a side took something from the ring that is not an outstanding request",
    ST_NO_PROGRESS: "the simulation stopped making progress",
}

INF = math.inf

# numba's IR inliner (the model operations are inlined into the engine) trips an internal
# "pedantic check" warning on variables it renames; it is noise to a vbench user.
warnings.filterwarnings("ignore", category=NumbaIRAssumptionWarning)


@njit
def _charge(ctr, seen, tcause, costs, side):
    """Time for the lines, full barriers and copies ``side`` incurred since its last charge."""
    dl = ctr[C_LINES_DRV + side] - seen[side]
    seen[side] += dl
    db = ctr[C_MB_DRV + side] - seen[2 + side]
    seen[2 + side] += db
    dc = ctr[C_BYTES_COPIED] - seen[4]
    seen[4] += dc
    tl = dl * costs[K_LINE]
    tb = db * costs[K_MB]
    tc = dc * costs[K_COPY]
    tcause[T_LINES] += tl
    tcause[T_BARRIERS] += tb
    tcause[T_COPY] += tc
    return tl + tb + tc


@njit(inline="always")
def _complete(r, t, nxt, lo, start, prio, hist, lat_max, done, dig):
    """Complete request ``r`` at time ``t``: record its latency and fold (r, t) into the
    digest of the completion sequence. Returns a status code.

    The per-request arrays are a window of requests ``lo .. nxt-1`` and beyond, indexed by
    ``r`` modulo their (power of two) length."""
    if r >= nxt or r < lo:
        return ST_BAD_REQUEST
    j = np.uint64(r) & np.uint64(done.shape[0] - 1)
    if done[j] != 0:
        return ST_DUPLICATE
    done[j] = 1
    lat = t - start[j]
    k = prio[j]
    record(hist, k, lat)
    if lat > lat_max[k]:
        lat_max[k] = lat
    word = (np.uint64(r) << np.uint64(40)) ^ np.uint64(np.int64(t))
    dig[0] = (dig[0] ^ word) * np.uint64(_DIGEST_PRIME)
    return ST_OK


@njit
def _notify_ctl(cfg, mem, st, ctr, io, which):
    """The per-wakeup operations, out of line so the hot loop inlines only the per-request
    ones: 0 disable_kicks, 1 enable_kicks, 2 disable_interrupts."""
    if which == 0:
        return m.disable_kicks(cfg, mem, st, ctr, io)
    if which == 1:
        return m.enable_kicks(cfg, mem, st, ctr, io)
    return m.disable_interrupts(cfg, mem, st, ctr, io)


@njit
def _reap_round(
    cfg,
    mem,
    drv,
    ctr,
    io,
    seen,
    tcause,
    costs,
    td,
    nxt,
    lo,
    start,
    prio,
    hist,
    lat_max,
    done,
    dig,
    out,
    handler,
):
    """Reap completions: an interrupt handler (disable, reap all, re-enable with a re-check,
    again while the re-check finds more) or one polling round. Out of line on purpose: the
    model's operations are inlined here once, not into the engine's hot loop a second time.
    Returns (driver clock, completions, status, time of the last completion)."""
    got = 0
    t_last = -1.0
    status = ST_OK
    while True:
        m.disable_interrupts(cfg, mem, drv, ctr, io)
        while True:
            r = m.reap(cfg, mem, drv, ctr, io)
            td += _charge(ctr, seen, tcause, costs, SIDE_DRIVER)
            if r < 0:
                if r < -1:
                    status = ST_BAD_REQUEST
                    out[O_DETAIL] = r
                break
            status = _complete(r, td, nxt, lo, start, prio, hist, lat_max, done, dig)
            if status != ST_OK:
                out[O_DETAIL] = r
                break
            got += 1
            t_last = td
        if status != ST_OK or not handler:
            break
        e = m.enable_interrupts(cfg, mem, drv, ctr, io)
        td += _charge(ctr, seen, tcause, costs, SIDE_DRIVER)
        if e == 1:
            break
    return td, got, status, t_last


@njit
def _sync_call(
    cfg,
    mem,
    drv,
    dev,
    ctr,
    io,
    seen,
    tcause,
    costs,
    params,
    td,
    i,
    nxt,
    lo,
    start,
    prio,
    hist,
    lat_max,
    done,
    dig,
    out,
    exit_cost,
):
    """A synchronous call: one exit in which the host runs the device's handler on the
    stalled vCPU's time; no ring, no kick decision, no interrupt. Returns (clock, status)."""
    ctr[C_KICKS] += 1
    ctr[C_VM_EXITS] += 1
    td += exit_cost
    tcause[T_EXITS] += exit_cost
    io[IO_SYNC] = 1  # the device runs inside this exit
    r = m.pop(cfg, mem, dev, ctr, io)
    td += _charge(ctr, seen, tcause, costs, SIDE_DEVICE)
    if r != i:
        out[O_DETAIL] = r
        return td, ST_BAD_REQUEST
    svc = params[P_SERVICE_NS] + params[P_SERVICE_PER_BYTE] * io[IO_SIZE]
    td += svc
    tcause[T_SERVICE] += svc
    ctr[C_BYTES] += io[IO_SIZE]
    m.push_used(cfg, mem, dev, ctr, io)
    td += _charge(ctr, seen, tcause, costs, SIDE_DEVICE)
    r = m.reap(cfg, mem, drv, ctr, io)
    td += _charge(ctr, seen, tcause, costs, SIDE_DRIVER)
    if r < 0:
        out[O_DETAIL] = r
        return td, ST_BAD_REQUEST
    status = _complete(r, td, nxt, lo, start, prio, hist, lat_max, done, dig)
    if status != ST_OK:
        out[O_DETAIL] = r
    return td, status


@njit(cache=True)
def simulate(
    cfg,
    mem,
    drv,
    dev,
    arrival,
    size,
    segs,
    prio,
    direction,
    params,
    costs,
    ctr,
    tcause,
    hist,
    lat_max,
    hol,
    done,
    start,
    io,
    seen,
    waiting,
    si,
    sf,
    dig,
    out,
):
    """Run the workload's requests through one model instance. Returns nothing: the counters,
    causes, histograms, head-of-line times, digest and ``out`` are filled in place.

    The per-request arrays (the workload's five, ``start``, ``done``) are a window whose length
    is a power of two: request r lives at ``r & (length - 1)``. ``si[S_FILLED]`` says which
    requests are in it; when the driver would look past them, the run saves its state in
    ``si``/``sf`` (and ``io``, ``seen``, ``waiting``) and returns with ``out[O_STATUS] ==
    ST_MORE``; the caller slides the window and calls again, and the run goes on exactly as
    if the window had held everything (see :func:`vbench.simulation.run_model`).

    ``hol[c]``: device time spent serving requests of a lower class than c while requests of
    class c were waiting to be taken (summed over those waiting requests): head-of-line
    blocking, the cost a ring without priority imposes on an urgent request."""
    n = si[S_N]
    filled = si[S_FILLED]
    mask = np.uint64(arrival.shape[0] - 1)
    lo = filled - arrival.shape[0]  # requests below this have left the window
    batch = int(params[P_BATCH])
    cap = int(params[P_CAP])
    dev_poll = params[P_DEV_POLL] != 0.0
    drv_poll = params[P_DRV_POLL] != 0.0
    poll_ns = params[P_POLL_NS]
    exit_cost = costs[K_EXIT] * (costs[K_USER_FACTOR] if params[P_USER_EXIT] != 0.0 else 1.0)
    irq_exits = int(costs[K_IRQ_EXITS])
    irq_cost_exits = irq_exits * costs[K_EXIT]
    classes = hist.shape[0]
    # waiting[c]: requests of class c made available, not yet taken

    flags = si[S_FLAGS]
    td = sf[F_TD]  # driver clock
    tv = sf[F_TV]  # device clock
    dev_asleep = (flags & FL_DEV_ASLEEP) != 0
    dev_wake_at = sf[F_DEV_WAKE_AT]
    kick_while_awake = (flags & FL_KICK_AWAKE) != 0
    dev_found = (flags & FL_DEV_FOUND) != 0  # did the device find work since its last wakeup?
    irq_at = sf[F_IRQ_AT]
    # an np.int64, not a literal 0: numba would first type (and compile) the out-of-line
    # helpers that take it for the literal, then again for int64
    nxt = si[S_NXT]
    inflight = si[S_INFLIGHT]
    completed = si[S_COMPLETED]
    blocked = (flags & FL_BLOCKED) != 0
    poll_idle = (flags & FL_POLL_IDLE) != 0  # the polling driver's last look found nothing
    last_done = sf[F_LAST_DONE]
    steps = si[S_STEPS]
    max_steps = 64 * n + 100000
    status = ST_OK

    if (flags & FL_STARTED) == 0:
        dev_asleep = not dev_poll
        dev_found = True
        if dev_poll:
            _notify_ctl(cfg, mem, dev, ctr, io, 0)
            tv += _charge(ctr, seen, tcause, costs, SIDE_DEVICE)
        if drv_poll:
            _notify_ctl(cfg, mem, drv, ctr, io, 2)
            td += _charge(ctr, seen, tcause, costs, SIDE_DRIVER)

    while completed < n:
        if filled < n and nxt + batch > filled:
            status = ST_MORE  # a batch may look at up to `batch` requests from nxt on
            break
        steps += 1
        if steps > max_steps:
            status = ST_NO_PROGRESS
            break
        # --- when does each side act next? ---
        can_submit = nxt < n and not blocked and (cap == 0 or inflight < cap)
        t_drv = INF
        if not drv_poll and irq_at < INF:
            t_drv = irq_at
        if can_submit and arrival[np.uint64(nxt) & mask] < t_drv:
            t_drv = arrival[np.uint64(nxt) & mask]
        t_dev = dev_wake_at if dev_asleep else tv
        if drv_poll and inflight > 0:
            # a polling driver looks again once the device has had a chance to act; with the
            # device asleep nothing more will change once a poll has come back empty
            # (the device acted since the last look: look now)
            t_poll = (INF if dev_asleep else max(t_dev, td)) if poll_idle else td
            if t_poll < t_drv:
                t_drv = t_poll
        if t_drv < td:
            t_drv = td
        if t_drv == INF and t_dev == INF:
            status = ST_DEADLOCK
            break

        if t_dev <= t_drv:
            # ================= device step =================
            poll_idle = False
            if dev_asleep:
                tv = max(tv, dev_wake_at)
                dev_asleep = False
                dev_wake_at = INF
                ctr[C_DEV_WAKEUPS] += 1
                dev_found = False
                io[IO_NOW] = np.int64(tv)
                io[IO_WAKE_AT] = 0
                defer = _notify_ctl(cfg, mem, dev, ctr, io, 0)
                tv += _charge(ctr, seen, tcause, costs, SIDE_DEVICE)
                if defer == 1:
                    # a mitigation timer: notifications stay off, work waits for the timer
                    dev_asleep = True
                    dev_wake_at = max(float(io[IO_WAKE_AT]), tv)
                    ctr[C_DEV_WAKEUPS] -= 1
                    dev_found = True
                    continue
            io[IO_NOW] = np.int64(tv)
            io[IO_DIR] = 0
            io[IO_SYNC] = 0  # an ordinary look at the rings, not inside a synchronous call
            r = m.pop(cfg, mem, dev, ctr, io)
            tv += _charge(ctr, seen, tcause, costs, SIDE_DEVICE)
            if r >= 0:
                if r >= nxt or r < lo or done[np.uint64(r) & mask] != 0:
                    status = ST_BAD_REQUEST
                    out[O_DETAIL] = r
                    break
                dev_found = True
                nbytes = io[IO_SIZE]
                svc = params[P_SERVICE_NS] + params[P_SERVICE_PER_BYTE] * nbytes
                tv += svc
                tcause[T_SERVICE] += svc
                k = prio[np.uint64(r) & mask]
                waiting[k] -= 1
                for c in range(k + 1, classes):
                    if waiting[c] > 0:
                        hol[c] += svc * waiting[c]
                ctr[C_BYTES] += nbytes
                m.push_used(cfg, mem, dev, ctr, io)
                io[IO_LAST] = 0
            elif r < -1:
                status = ST_BAD_REQUEST
                out[O_DETAIL] = r
                break
            else:
                io[IO_LAST] = 1
            d = m.interrupt_needed(cfg, mem, dev, ctr, io)
            tv += _charge(ctr, seen, tcause, costs, SIDE_DEVICE)
            if d >= 1:
                # a multi-queue device may raise several interrupts (one per vector) at once
                ctr[C_IRQS] += d
                tv += d * costs[K_IRQ_SEND]
                tcause[T_IRQ] += d * costs[K_IRQ_SEND]
                if irq_at == INF:
                    # a driver with nothing to do until then is halted: wake its vCPU
                    idle = t_drv > tv
                    irq_at = tv + (costs[K_VCPU_WAKE] if idle else 0.0)
            elif d == 0:
                ctr[C_IRQS_SUPPRESSED] += 1
            if r < 0:
                if dev_poll:
                    # nothing to do until the driver acts: look again one poll after it does
                    # (strictly after, or a polling driver that waits on the device would
                    # never get its turn); a polling core costs nothing extra
                    tv = max(tv, t_drv if t_drv < INF else tv) + poll_ns
                else:
                    s = _notify_ctl(cfg, mem, dev, ctr, io, 1)
                    tv += _charge(ctr, seen, tcause, costs, SIDE_DEVICE)
                    if not dev_found:
                        ctr[C_SPURIOUS_DEV] += 1
                    if s == 1 and not kick_while_awake:
                        dev_asleep = True
                        dev_wake_at = INF
                    else:
                        # a re-check found work, a replay is due, or a kick came while awake
                        kick_while_awake = False
                        ctr[C_DEV_WAKEUPS] += 1
                        dev_found = False
                        _notify_ctl(cfg, mem, dev, ctr, io, 0)
                        tv += _charge(ctr, seen, tcause, costs, SIDE_DEVICE)
            continue

        # ================= driver step =================
        td = t_drv
        if not drv_poll and irq_at <= td:
            # interrupt handler: disable, reap everything, re-enable with a re-check
            irq_at = INF
            ctr[C_IRQS_DELIVERED] += 1
            ctr[C_VM_EXITS] += irq_exits
            td += irq_cost_exits + costs[K_IRQ_HANDLER]
            tcause[T_EXITS] += irq_cost_exits
            tcause[T_IRQ] += costs[K_IRQ_HANDLER]
            td, got, status, t_last = _reap_round(
                cfg,
                mem,
                drv,
                ctr,
                io,
                seen,
                tcause,
                costs,
                td,
                nxt,
                lo,
                start,
                prio,
                hist,
                lat_max,
                done,
                dig,
                out,
                not drv_poll,  # True here (a runtime value: one compiled helper, not two)
            )
            if status != ST_OK:
                break
            if got > 0:
                completed += got
                inflight -= got
                blocked = False
                last_done = t_last
            if got == 0:
                ctr[C_SPURIOUS_DRV] += 1
            continue

        if drv_poll and inflight > 0:
            # a poll round (its disable_interrupts resets a NAPI budget)
            td, got, status, t_last = _reap_round(
                cfg,
                mem,
                drv,
                ctr,
                io,
                seen,
                tcause,
                costs,
                td,
                nxt,
                lo,
                start,
                prio,
                hist,
                lat_max,
                done,
                dig,
                out,
                not drv_poll,  # False here
            )
            if status != ST_OK:
                break
            if got > 0:
                completed += got
                inflight -= got
                blocked = False
                last_done = t_last
            poll_idle = got == 0
            can_submit = nxt < n and not blocked and (cap == 0 or inflight < cap)
            if got == 0 and not (can_submit and arrival[np.uint64(nxt) & mask] <= td):
                td += poll_ns
                continue

        can_submit = nxt < n and not blocked and (cap == 0 or inflight < cap)
        if not (can_submit and arrival[np.uint64(nxt) & mask] <= td):
            continue
        # submit a batch: up to `batch` requests that have arrived, then one kick decision
        added = 0
        decided = False
        while True:
            i = nxt
            j = np.uint64(i) & mask
            io[IO_REQ] = i
            io[IO_SIZE] = size[j]
            io[IO_SEGS] = segs[j]
            io[IO_DIR] = direction[j]
            io[IO_PRIO] = prio[j]
            io[IO_NOW] = np.int64(td)
            io[IO_SYNC] = 0
            ok = m.add(cfg, mem, drv, ctr, io)
            td += _charge(ctr, seen, tcause, costs, SIDE_DRIVER)
            if ok == 0:
                blocked = True
                ctr[C_RING_FULL] += 1
                last = True
            else:
                start[j] = td if cap > 0 else arrival[j]
                td += params[P_DRIVER_NS]
                tcause[T_DRIVER] += params[P_DRIVER_NS]
                nxt += 1
                inflight += 1
                waiting[prio[j]] += 1
                added += 1
                more = (
                    added < batch
                    and nxt < n
                    and arrival[np.uint64(nxt) & mask] <= td
                    and (cap == 0 or inflight < cap)
                )
                last = not more
                if io[IO_SYNC] != 0:
                    td, status = _sync_call(
                        cfg,
                        mem,
                        drv,
                        dev,
                        ctr,
                        io,
                        seen,
                        tcause,
                        costs,
                        params,
                        td,
                        i,
                        nxt,
                        lo,
                        start,
                        prio,
                        hist,
                        lat_max,
                        done,
                        dig,
                        out,
                        exit_cost,
                    )
                    if status != ST_OK:
                        break
                    waiting[prio[j]] -= 1
                    completed += 1
                    inflight -= 1
                    last_done = td
                    if last:
                        break
                    continue
            if added == 0:
                break
            io[IO_LAST] = 1 if last else 0
            if ok == 0 and decided:
                break
            k = m.kick_needed(cfg, mem, drv, ctr, io)
            td += _charge(ctr, seen, tcause, costs, SIDE_DRIVER)
            if last:
                decided = True
            if k == 1:
                ctr[C_KICKS] += 1
                ctr[C_VM_EXITS] += 1
                td += exit_cost
                tcause[T_EXITS] += exit_cost
                if dev_asleep:
                    if td + costs[K_WAKE] < dev_wake_at:
                        if dev_wake_at == INF:
                            tcause[T_WAKE] += costs[K_WAKE]
                        dev_wake_at = td + costs[K_WAKE]
                else:
                    kick_while_awake = True
            elif k == 0:
                ctr[C_KICKS_SUPPRESSED] += 1
            if last:
                break
        if status != ST_OK:
            break

    # the state, for the next call (ST_MORE) and the caller
    si[S_NXT] = nxt
    si[S_INFLIGHT] = inflight
    si[S_COMPLETED] = completed
    si[S_STEPS] = steps
    si[S_FLAGS] = (
        FL_STARTED
        | (FL_DEV_ASLEEP if dev_asleep else 0)
        | (FL_KICK_AWAKE if kick_while_awake else 0)
        | (FL_DEV_FOUND if dev_found else 0)
        | (FL_BLOCKED if blocked else 0)
        | (FL_POLL_IDLE if poll_idle else 0)
    )
    sf[F_TD] = td
    sf[F_TV] = tv
    sf[F_DEV_WAKE_AT] = dev_wake_at
    sf[F_IRQ_AT] = irq_at
    sf[F_LAST_DONE] = last_done
    ctr[C_REQUESTS] = completed
    out[O_STATUS] = status
    out[O_LAST_DONE] = last_done
    out[O_STEPS] = steps
    out[O_DRIVER_T] = td
    out[O_DEVICE_T] = tv


@dataclass
class Run:
    """Everything :func:`simulate` fills or keeps between calls, for one model run."""

    ctr: np.ndarray  # the tracker: counters, then the line states of the arena
    causes: np.ndarray
    hist: np.ndarray
    lat_max: np.ndarray
    hol: np.ndarray
    done: np.ndarray  # window: 1 once request r & (window - 1) completed
    start: np.ndarray  # window: when the request's latency starts
    io: np.ndarray
    seen: np.ndarray
    waiting: np.ndarray
    si: np.ndarray
    sf: np.ndarray
    dig: np.ndarray
    out: np.ndarray


def new_run(n: int, window: int, classes: int, mem: np.ndarray) -> Run:
    """Zeroed buffers and the initial state of a run of ``n`` requests through a window of
    ``window`` (a power of two) requests."""
    si = np.zeros(N_STATE_I, dtype=np.int64)
    si[S_N] = n
    sf = np.zeros(N_STATE_F, dtype=np.float64)
    sf[F_DEV_WAKE_AT] = INF
    sf[F_IRQ_AT] = INF
    return Run(
        new_tracker(mem),
        np.zeros(N_CAUSES, dtype=np.float64),
        np.zeros((classes, N_BUCKETS), dtype=np.int64),
        np.zeros(classes, dtype=np.float64),
        np.zeros(classes, dtype=np.float64),
        np.zeros(window, dtype=np.uint8),
        np.zeros(window, dtype=np.float64),
        np.zeros(N_IO, dtype=np.int64),
        np.zeros(5, dtype=np.int64),
        np.zeros(classes, dtype=np.int64),
        si,
        sf,
        np.full(1, DIGEST_SEED, dtype=np.uint64),
        np.zeros(N_OUT, dtype=np.float64),
    )
