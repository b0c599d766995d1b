"""What each ring operation costs in CPU time, per model, and what the native engine's own
per-request work costs: measured on one thread.

Why: the simulation prices what crosses between the two sides (line transfers, fences, copies,
exits, wake-ups) but not the CPU work of the ten ring operations themselves (accessors,
private state, the decisions), nor the native engine's per-request harness (payload fill and
checksum, verify and stamp, completion check and latency record): issue 13, item 2. Measured
on one thread, the arena stays in one core's cache and no line moves between cores, so what
is left is an operation's own work, the fences it executes included (counted per call in
:class:`OpTiming`, so a caller that prices fences apart can take them out).

Method (:func:`measure_model`). The model instance is built as the native runner builds it
(``native_arena``: a uint64 view, so every accessor is the native one: acquire loads, release
stores, real fences). A jitted loop runs the protocol's cycle on one thread, batch after
batch: ``add`` a batch, ``kick_needed`` after each add (``IO_LAST`` on the last), the request
fields loaded by the protocol's own ``_load_request``; then the device as one woken by the
kick: ``disable_kicks``, ``pop`` + ``push_used`` with ``interrupt_needed`` after each push and
on the empty pop (``IO_LAST`` = 1), ``enable_kicks`` (again while its re-check finds work);
then the driver's interrupt handler: ``disable_interrupts``, ``reap`` until -1,
``enable_interrupts`` (again while its re-check finds more). Calls that take the empty or
suppressed path count too: the engines run them.

Each call is timed alone with the TSC read between two ``lfence``; the cost of an empty stamp
pair (taken in the same loop, so in the same cache and pipeline state) is subtracted, and a
call longer than :data:`CAP_NS` was interrupted by the OS (a tick, a preemption: this machine
is shared) and is dropped. Per operation the **mean** over calls is taken, not the median: the
simulation charges every call of an operation one cost, so the mean is the figure whose product
with the count is the time spent, and an operation's calls are not alike (``kick_needed``
fences only on a batch's last call, the empty ``pop`` is cheaper than a full one): a median
would be the common path's cost and drop the rest. Robustness comes from the repetitions
instead: each figure is the median of the repetitions', with their min and max.

Why serialized stamps, and why they are scaled. ``rdtsc`` alone overlaps an operation of a
few ns: so timed, every operation came out at about 0.1 ns and their sum at 4 % of the loop's
time. Between ``lfence`` the operation runs alone, but then it cannot overlap its neighbours
as it does in a run (the core starts the next operation's loads while the last one's stores
retire), and the serialized times add up to 1.5-1.9x the unstamped loop (development machine,
2026-12-07). So the serialized times give the *split* and an unstamped run gives the *total*:
the same loop runs without per-call stamps, alternating with the stamped runs, each of its
three phases (the driver's submit, the device's service, the driver's handler) timed per batch
cycle (a cycle longer than :data:`OUTLIER_FACTOR` times the median caught an interruption and
is dropped), and each operation's serialized time is scaled by its phase's unstamped time over
the phase's serialized sum (:func:`_repetition`). What the protocol's glue costs (loading a
request's io fields, a few stores) is spread over its phase's operations, as the engines run it.

Sum check (:class:`SumCheck`): per batch cycle, the figures times their calls against the
unstamped loop (exact per repetition by construction; off by the medians over repetitions),
and the serialized sum against the loop (how much the stamps would have overstated).
``tests/test_opcost.py`` states the tolerance.

The harness (:func:`measure_harness_costs`) calls the very functions of
:mod:`vbench.native.loops` the native clock runs (``before_add`` + ``after_add``, ``serve``,
``complete``) on a clock built by the native runner's own helpers. Each phase there runs one
kind of call, so the phase's unstamped time over its calls is the cost per call: no per-call
stamps are needed.
"""

from __future__ import annotations

import math
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from vbench import jit as _jit  # sets the keyed numba cache dir (imported first by vbench)
from vbench import protocol
from vbench.counters import (
    C_BYTES_COPIED,
    C_MB_DEV,
    C_MB_DRV,
    IO_DIR,
    IO_LAST,
    IO_LEN,
    IO_SIGNALED,
    IO_SIZE,
    IO_SYNC,
    IO_TRIGGERED,
    N_COUNTERS,
    N_IO,
)
from vbench.errors import ConfigError, InvariantError
from vbench.memory import native_arena
from vbench.models import get_model, registry
from vbench.models import interface as ring
from vbench.models.interface import ModelDef, ModelOptions
from vbench.native import atomics, loops
from vbench.workload import Workload

_jit.lock_cache_saves()

OP_NAMES: tuple[str, ...] = tuple(ring.OPS)
(
    ADD,
    KICK_NEEDED,
    REAP,
    DISABLE_INTERRUPTS,
    ENABLE_INTERRUPTS,
    POP,
    PUSH_USED,
    INTERRUPT_NEEDED,
    DISABLE_KICKS,
    ENABLE_KICKS,
) = range(len(OP_NAMES))
EMPTY = len(OP_NAMES)  # the row of empty stamp pairs (the stamps' own cost)
N_ROWS = EMPTY + 1
assert OP_NAMES[ENABLE_KICKS] == "enable_kicks" and OP_NAMES[ADD] == "add", "interface.OPS order"

# the phases of a batch cycle, timed with the plain TSC, and the operations in each
SUBMIT, SERVE, HANDLE = range(3)
N_PHASES = 3
PHASE_NAMES = ("submit", "serve", "handle")
PHASE_OF = {
    "add": SUBMIT,
    "kick_needed": SUBMIT,
    "disable_kicks": SERVE,
    "pop": SERVE,
    "push_used": SERVE,
    "interrupt_needed": SERVE,
    "enable_kicks": SERVE,
    "disable_interrupts": HANDLE,
    "reap": HANDLE,
    "enable_interrupts": HANDLE,
}
# the harness's phases: the driver's fill (before_add + after_add), the device's verify and
# stamp (serve), the driver's check and latency record (complete)
FILL, VERIFY, CHECK = range(3)

# columns of an accumulator row
ACC_CYCLES, ACC_CALLS, ACC_DROPPED, ACC_FENCES, ACC_COPIED = range(5)
N_ACC = 5

CAP_NS = 10_000.0  # a single call longer than this was interrupted by the OS: dropped
OUTLIER_FACTOR = 4.0  # a batch cycle longer than this x the median was interrupted
EMPTY_PAIRS = 4  # empty stamp pairs per batch cycle (the stamps' own cost)
MAX_ROUNDS = 8  # re-enable attempts before a re-check that never settles is an error
QUEUE_SIZE = 256
HARNESS_SIZE = 16  # bytes per request: configs/validate.toml's and ringtest.toml's size

# statuses of the jitted loops
OK, RING_FULL, BAD_REQUEST, NEVER_SETTLES, LOST = range(5)
STATUS_WORDS = {
    RING_FULL: "add found the ring full",
    BAD_REQUEST: "pop or reap returned a request that is not outstanding",
    NEVER_SETTLES: f"a re-enable's re-check still found work after {MAX_ROUNDS} rounds",
    LOST: "a batch's requests were not all served and reaped within its cycle",
}


# --- the stamp --------------------------------------------------------------------------------
_LFENCE = "lfence" if platform.machine().lower() in ("x86_64", "amd64", "i686", "i386") else ""


@intrinsic
def _stamp(typingctx):
    """The TSC read between two ``lfence`` (x86): ``rdtsc`` alone does not wait for the
    instructions before it nor hold back those after it, so around an operation of a few ns
    it overlaps the operation and times little of it (measured: every operation came out at
    about 0.1 ns, their sum 4 % of the loop's time). ``lfence`` lets the stamp start only when
    every earlier instruction has completed (a fence in the operation included) and no later
    one starts before the stamp (Intel SDM, RDTSC). Elsewhere: the TSC with a compiler
    barrier."""

    def codegen(context, builder, sig, args):
        fence = ir.FunctionType(ir.VoidType(), [])
        builder.asm(fence, _LFENCE, "~{memory}", [], True)
        counter = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter"
        )
        value = builder.call(counter, [])
        builder.asm(fence, _LFENCE, "~{memory}", [], True)
        return value

    return types.int64(), codegen


# --- the jitted loop -------------------------------------------------------------------------
@njit
def _marks(drv_ctr, dev_ctr):
    """Fences and bytes copied so far, by both sides (read outside the timed window)."""
    fences = drv_ctr[C_MB_DRV] + drv_ctr[C_MB_DEV] + dev_ctr[C_MB_DRV] + dev_ctr[C_MB_DEV]
    return fences, drv_ctr[C_BYTES_COPIED] + dev_ctr[C_BYTES_COPIED]


@njit
def _start(stamped, drv_ctr, dev_ctr):
    """Before a timed call: (fences, bytes copied, TSC); zeros when the run is not stamped."""
    if not stamped:
        return np.int64(0), np.int64(0), np.int64(0)
    fences, copied = _marks(drv_ctr, dev_ctr)
    return fences, copied, _stamp()


@njit
def _stop(stamped, acc, row, mark, drv_ctr, dev_ctr, cap):
    """After a timed call: its cycles, fences and copies into ``acc[row]``; a call longer than
    ``cap`` cycles was interrupted and is only counted as dropped."""
    if not stamped:
        return
    took = _stamp() - mark[2]
    if took > cap:
        acc[row, ACC_DROPPED] += 1
        return
    fences, copied = _marks(drv_ctr, dev_ctr)
    acc[row, ACC_CYCLES] += took
    acc[row, ACC_CALLS] += 1
    acc[row, ACC_FENCES] += fences - mark[0]
    acc[row, ACC_COPIED] += copied - mark[1]


@njit(inline="always")
def _submit(clock, drv_side, dev_ctr, acc, stamped, cap, first, batch):
    """The driver's batch: ``add`` each request (its fields loaded as the protocol loads them),
    ``kick_needed`` after each, ``IO_LAST`` on the last. A status."""
    cfg, mem, st, ctr, io = drv_side
    for i in range(batch):
        protocol._load_request(clock, drv_side, first + i)
        mark = _start(stamped, ctr, dev_ctr)
        added = ring.add(cfg, mem, st, ctr, io)
        _stop(stamped, acc, ADD, mark, ctr, dev_ctr, cap)
        if added != 1:
            return RING_FULL
        io[IO_LAST] = 1 if i == batch - 1 else 0
        mark = _start(stamped, ctr, dev_ctr)
        ring.kick_needed(cfg, mem, st, ctr, io)
        _stop(stamped, acc, KICK_NEEDED, mark, ctr, dev_ctr, cap)
    return OK


@njit(inline="always")
def _serve(drv_ctr, dev_side, acc, stamped, cap):
    """The device woken by the kick: ``disable_kicks``; ``pop`` and ``push_used`` until empty,
    ``interrupt_needed`` after each push and on the empty pop (``IO_LAST`` = 1), as the
    protocol's ``serve_one``; ``enable_kicks``, again while its re-check finds work.
    Requests served, or minus a status."""
    cfg, mem, st, ctr, io = dev_side
    served = 0
    for _ in range(MAX_ROUNDS):
        mark = _start(stamped, drv_ctr, ctr)
        ring.disable_kicks(cfg, mem, st, ctr, io)
        _stop(stamped, acc, DISABLE_KICKS, mark, drv_ctr, ctr, cap)
        while True:
            io[IO_DIR] = 0
            io[IO_SYNC] = 0
            io[IO_SIGNALED] = -1
            mark = _start(stamped, drv_ctr, ctr)
            request = ring.pop(cfg, mem, st, ctr, io)
            _stop(stamped, acc, POP, mark, drv_ctr, ctr, cap)
            if request >= 0:
                mark = _start(stamped, drv_ctr, ctr)
                ring.push_used(cfg, mem, st, ctr, io)
                _stop(stamped, acc, PUSH_USED, mark, drv_ctr, ctr, cap)
                io[IO_LAST] = 0
                served += 1
            elif request < -1:
                return -BAD_REQUEST
            else:
                io[IO_LAST] = 1
            mark = _start(stamped, drv_ctr, ctr)
            ring.interrupt_needed(cfg, mem, st, ctr, io)
            _stop(stamped, acc, INTERRUPT_NEEDED, mark, drv_ctr, ctr, cap)
            if request < 0:
                break
        mark = _start(stamped, drv_ctr, ctr)
        still_empty = ring.enable_kicks(cfg, mem, st, ctr, io)
        _stop(stamped, acc, ENABLE_KICKS, mark, drv_ctr, ctr, cap)
        if still_empty == 1:
            return served
    return -NEVER_SETTLES


@njit(inline="always")
def _handle(drv_side, dev_ctr, acc, stamped, cap):
    """The driver's interrupt handler, as the protocol's ``reap_round``: ``disable_interrupts``
    (``IO_TRIGGERED`` on the first), ``reap`` until -1, ``enable_interrupts``, again while its
    re-check finds more. Requests reaped, or minus a status."""
    cfg, mem, st, ctr, io = drv_side
    reaped = 0
    io[IO_TRIGGERED] = 1
    for _ in range(MAX_ROUNDS):
        mark = _start(stamped, ctr, dev_ctr)
        ring.disable_interrupts(cfg, mem, st, ctr, io)
        _stop(stamped, acc, DISABLE_INTERRUPTS, mark, ctr, dev_ctr, cap)
        io[IO_TRIGGERED] = 0
        while True:
            mark = _start(stamped, ctr, dev_ctr)
            request = ring.reap(cfg, mem, st, ctr, io)
            _stop(stamped, acc, REAP, mark, ctr, dev_ctr, cap)
            if request < -1:
                return -BAD_REQUEST
            if request < 0:
                break
            reaped += 1
        mark = _start(stamped, ctr, dev_ctr)
        rearmed = ring.enable_interrupts(cfg, mem, st, ctr, io)
        _stop(stamped, acc, ENABLE_INTERRUPTS, mark, ctr, dev_ctr, cap)
        if rearmed == 1:
            return reaped
    return -NEVER_SETTLES


@njit(nogil=True, cache=True, _nrt=False)
def _cycle_loop(clock, cfg, mem, drv_st, dev_st, drv_ctr, dev_ctr, drv_io, dev_io, out, run):
    """``out[1].shape[0]`` batch cycles of ``run = (batch, stamped, cap)`` on one thread: each
    cycle's phases (SUBMIT, SERVE, HANDLE) timed with the plain TSC into ``out[1]``, and when
    ``stamped`` every call timed alone into ``out[0]``. The ring's arrays come as arguments
    (vbench.jit, point 5). A status."""
    batch, stamped, cap = run
    acc, durations = out
    drv_side = (cfg, mem, drv_st, drv_ctr, drv_io)
    dev_side = (cfg, mem, dev_st, dev_ctr, dev_io)
    for k in range(durations.shape[0]):
        if stamped:
            for _ in range(EMPTY_PAIRS):
                mark = _start(stamped, drv_ctr, dev_ctr)
                _stop(stamped, acc, EMPTY, mark, drv_ctr, dev_ctr, cap)
        t0 = atomics.rdtsc()
        status = _submit(clock, drv_side, dev_ctr, acc, stamped, cap, k * batch, batch)
        if status != OK:
            return status
        t1 = atomics.rdtsc()
        served = _serve(drv_ctr, dev_side, acc, stamped, cap)
        t2 = atomics.rdtsc()
        if served < 0:
            return -served
        reaped = _handle(drv_side, dev_ctr, acc, stamped, cap)
        t3 = atomics.rdtsc()
        if reaped < 0:
            return -reaped
        if served != batch or reaped != batch:
            return LOST
        durations[k, SUBMIT] = t1 - t0
        durations[k, SERVE] = t2 - t1
        durations[k, HANDLE] = t3 - t2
    return OK


@njit(nogil=True, cache=True, _nrt=False)
def _harness_loop(driver_clock, device_clock, durations, batch):
    """The native clock's per-request work, batch by batch as in a run, each phase timed
    with the plain TSC into ``durations`` (one kind of call per phase, so a call's cost is
    its phase's time over ``batch``): the driver's fill (``before_add`` + ``after_add``) of
    each request (FILL), the device's verify and stamp (``serve``, VERIFY), the driver's
    check and latency record (``complete``, CHECK). A status: OK, or the failing call's own
    (a harness that rejects its own payload)."""
    io = driver_clock[loops.CLOCK_IO]
    device_io = device_clock[loops.CLOCK_IO]
    sizes = driver_clock[loops.CLOCK_REQUESTS][0]
    for k in range(durations.shape[0]):
        first = k * batch
        t0 = atomics.rdtsc()
        for request in range(first, first + batch):
            loops.before_add(driver_clock, request)
            loops.after_add(driver_clock, request, 1)
        t1 = atomics.rdtsc()
        for request in range(first, first + batch):
            device_io[IO_SIZE] = sizes[request]  # what pop fills in for serve's header check
            status = loops.serve(device_clock, request)
            if status != loops.ST_OK:
                return status
        t2 = atomics.rdtsc()
        for request in range(first, first + batch):
            io[IO_LEN] = 0  # a device that reads the buffer writes nothing back
            status = loops.complete(driver_clock, request)
            if status != loops.ST_OK:
                return status
        t3 = atomics.rdtsc()
        durations[k, FILL] = t1 - t0
        durations[k, VERIFY] = t2 - t1
        durations[k, CHECK] = t3 - t2
    return OK


# --- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpTiming:
    """One operation's cost per call (or one side's harness cost per request), in ns: the
    median, min and max over the ``runs`` repetitions; the calls each repetition made; the serialized
    per-call time the figure was scaled from (median, ns; see :func:`_repetition`); and per
    call the full fences it executed and the bytes it copied (the simulation prices those
    apart, through ``full_barrier_ns`` and ``copy_ns_per_byte``: a caller that charges them
    there can take them out of this figure)."""

    median_ns: float
    low_ns: float
    high_ns: float
    calls: int
    serialized_ns: float = math.nan
    fences: float = 0.0
    copied_bytes: float = 0.0
    runs: int = 1

    @classmethod
    def of(cls, samples: list[float], calls: int, **counts: float) -> OpTiming:
        """The timing whose repetitions gave ``samples``; ``counts``: the other fields."""
        return cls(
            median_ns=float(statistics.median(samples)),
            low_ns=float(min(samples)),
            high_ns=float(max(samples)),
            calls=int(calls),
            runs=len(samples),
            **{name: float(value) for name, value in counts.items()},
        )

    def words(self) -> str:
        """``12.3 ns [11.9-13.0]``: the median and the range over the repetitions."""
        return f"{self.median_ns:.3g} ns [{self.low_ns:.3g}-{self.high_ns:.3g}]"


@dataclass(frozen=True)
class SumCheck:
    """The figures held against the loop they were measured in, per batch cycle: the
    serialized per-call times times the calls (``serialized_ns``, per repetition), the same
    cycle without per-call stamps (``loop_ns``, per repetition), the figures' medians times
    the calls (``figures_ns``), and per phase the factor the serialized times were scaled by
    (the unstamped phase over the serialized one, median over the repetitions)."""

    serialized_ns: tuple[float, ...]
    loop_ns: tuple[float, ...]
    figures_ns: float
    factors: dict[str, float]

    @property
    def ratio(self) -> float:
        """The figures' sum over the unstamped loop's median: 1 is exact."""
        return self.figures_ns / float(statistics.median(self.loop_ns))

    @property
    def serialized_ratio(self) -> float:
        """The serialized per-call times' sum over the unstamped loop (median over the
        repetitions): how much the core overlaps consecutive operations in a real run."""
        ratios = [s / p for s, p in zip(self.serialized_ns, self.loop_ns, strict=True)]
        return float(statistics.median(ratios))

    def words(self) -> str:
        factors = ", ".join(f"{name} {value:.2f}" for name, value in self.factors.items())
        return (
            f"figures {self.figures_ns:.4g} ns vs loop {statistics.median(self.loop_ns):.4g} "
            f"ns per batch cycle (ratio {self.ratio:.3f}); serialized "
            f"{statistics.median(self.serialized_ns):.4g} ns (ratio "
            f"{self.serialized_ratio:.3f}), scaled per phase by {factors}"
        )


@dataclass(frozen=True)
class ModelCosts:
    """One model's ten operations measured on one thread, with the sum check and the cost of
    the empty stamp pair subtracted from every call (median over the repetitions)."""

    label: str
    model: str
    ops: dict[str, OpTiming]
    check: SumCheck
    stamp_ns: float


# --- reducing the runs -----------------------------------------------------------------------
def _phase_means(durations: np.ndarray) -> np.ndarray:
    """Each phase's mean over the batch cycles that were not interrupted: a cycle longer than
    OUTLIER_FACTOR times the median cycle caught a timer tick or a preemption (this machine
    is shared) and is dropped, all its phases with it."""
    whole = durations.sum(axis=1)
    kept = durations[whole <= OUTLIER_FACTOR * np.median(whole)]
    return kept.mean(axis=0)


def _mean_cycles(acc: np.ndarray, row: int) -> float:
    """The mean cycles of a row's kept calls, the empty stamp pair's mean subtracted, and at
    least one cycle: an operation of a cycle or two (a kick decision that is not the batch's
    last returns at once) can come out below the empty pair's mean by the stamps' own jitter
    (seen once: -0.1 ns), and what the stamps cannot resolve is one cycle, not a negative
    cost."""
    stamp = acc[EMPTY, ACC_CYCLES] / max(acc[EMPTY, ACC_CALLS], 1)
    return max(acc[row, ACC_CYCLES] / max(acc[row, ACC_CALLS], 1) - stamp, 1.0)


def _repetition(
    acc: np.ndarray, plain: np.ndarray, ns_per_cycle: float
) -> tuple[dict[str, float], dict[str, float], float, float]:
    """One repetition: (operation -> ns per call, phase -> factor, serialized ns and loop ns
    per batch cycle).

    A call timed alone between serialized stamps cannot overlap its neighbours, as it does in
    a run (the core starts the next operation's loads while the last one's stores retire), so
    the serialized times add up to more than the loop takes (about 1.5x: the sum check says).
    They give the split; the unstamped run gives the total: within each phase of the cycle
    (the driver's submit, the device's service, the driver's handler) each operation's
    serialized time is scaled by the phase's unstamped time over its serialized sum."""
    cycles = plain.shape[0]
    loop_phase = _phase_means(plain) * ns_per_cycle
    serialized = {name: _mean_cycles(acc, row) * ns_per_cycle for row, name in enumerate(OP_NAMES)}
    per_cycle = {
        name: (acc[row, ACC_CALLS] + acc[row, ACC_DROPPED]) / cycles
        for row, name in enumerate(OP_NAMES)
    }
    serial_phase = np.zeros(N_PHASES)
    for name in OP_NAMES:
        serial_phase[PHASE_OF[name]] += serialized[name] * per_cycle[name]
    factors = loop_phase / serial_phase
    scaled = {name: serialized[name] * factors[PHASE_OF[name]] for name in OP_NAMES}
    named = dict(zip(PHASE_NAMES, (float(f) for f in factors), strict=True))
    return scaled, named, float(serial_phase.sum()), float(loop_phase.sum())


def _model_costs(
    label: str, model: str, pairs: list[tuple[np.ndarray, np.ndarray]], ns_per_cycle: float
) -> ModelCosts:
    """Per operation the median over the repetitions of its figure, the calls, and the
    fences and copies per call (exact counts: from the last run); the sum check."""
    reps = [_repetition(acc, plain, ns_per_cycle) for acc, plain in pairs]
    last = pairs[-1][0]
    ops = {}
    for row, name in enumerate(OP_NAMES):
        kept = max(int(last[row, ACC_CALLS]), 1)
        serialized = [_mean_cycles(acc, row) * ns_per_cycle for acc, _ in pairs]
        ops[name] = OpTiming.of(
            [rep[0][name] for rep in reps],
            calls=int(last[row, ACC_CALLS] + last[row, ACC_DROPPED]),
            serialized_ns=statistics.median(serialized),
            fences=last[row, ACC_FENCES] / kept,
            copied_bytes=last[row, ACC_COPIED] / kept,
        )
    cycles = pairs[-1][1].shape[0]
    check = SumCheck(
        serialized_ns=tuple(rep[2] for rep in reps),
        loop_ns=tuple(rep[3] for rep in reps),
        figures_ns=sum(op.median_ns * op.calls / cycles for op in ops.values()),
        factors={
            phase: float(statistics.median(rep[1][phase] for rep in reps)) for phase in PHASE_NAMES
        },
    )
    stamps = [acc[EMPTY, ACC_CYCLES] / max(acc[EMPTY, ACC_CALLS], 1) for acc, _ in pairs]
    return ModelCosts(label, model, ops, check, float(statistics.median(stamps)) * ns_per_cycle)


# --- measuring -------------------------------------------------------------------------------
def _workload(requests: int, size: int, in_flight: int) -> Workload:
    """``requests`` requests of ``size`` bytes, one segment, one class, device-reads: the
    closed loop of ``configs/validate.toml``."""
    return Workload(
        arrival_ns=np.zeros(requests),
        size=np.full(requests, size, dtype=np.int64),
        segments=np.ones(requests, dtype=np.int64),
        prio=np.zeros(requests, dtype=np.int64),
        direction=np.zeros(requests, dtype=np.int8),
        in_flight_cap=in_flight,
        classes=1,
    )


def _native_clocks(wl: Workload, batch: int, ns_per_cycle: float) -> tuple[Any, Any]:
    """The driver's and the device's clocks over one shared set of arrays, built by the native
    runner's own helpers: the clock the harness functions and ``_load_request`` see is the one
    a native run gives them."""
    from vbench.native import runner
    from vbench.simulation import EngineSpec

    slots, words = runner._pool_shape(wl)
    engine = EngineSpec(batch=batch, kind="native")
    params = runner._params(len(wl), engine, wl, slots, words, runner.Hooks())
    params["ns_per_cycle"] = ns_per_cycle
    shared = runner._shared(params, wl, slots, words)
    return runner._Side().clock(shared), runner._Side().clock(shared)


def _cycles_per_ns(given: float | None) -> float:
    """TSC cycles per ns: ``given`` (a calibration's figure) or measured now over 20 ms."""
    if given:
        return float(given)
    from vbench.native.calibrate import tsc_rate

    return float(tsc_rate(20_000_000))


def _prepare(label: str, mdef: ModelDef, opts: ModelOptions, wl: Workload, batch: int) -> Any:
    """The model's instance as a native run builds it (its arena a uint64 view, so every
    accessor is the native one), after the checks a native run makes."""
    from vbench.native.runner import check_alignment, native_problem
    from vbench.simulation import check_model, needs_of

    needs = needs_of(wl)
    check_model(mdef, opts, needs, batch, label)
    problem = native_problem(opts, True, label)
    if problem:
        raise ConfigError(f"{label}: {problem}")
    bad = check_alignment(mdef.layout(opts, needs))
    if bad:
        raise InvariantError("; ".join(bad))
    inst = mdef.build(opts, needs)
    arena = native_arena(inst.mem)
    inst.mem = arena.view(np.uint8)  # the audit reads the memory the loop used
    return inst, arena


def measure_model(
    label: str,
    mdef: ModelDef,
    opts: ModelOptions,
    repetitions: int = 5,
    requests: int = 50_000,
    batch: int = 32,
    cycles_per_ns: float | None = None,
) -> ModelCosts:
    """Time one model's ten operations on one thread (module docstring): a warm-up pair, then
    ``repetitions`` pairs of a stamped and an unstamped run of ``requests // batch`` batch
    cycles each, alternating so that a change of load hits both; the model's audit after."""
    rate = _cycles_per_ns(cycles_per_ns)
    wl = _workload(requests, HARNESS_SIZE, opts.queue_size)
    inst, arena = _prepare(label, mdef, opts, wl, batch)
    clock, _ = _native_clocks(wl, batch, 1.0 / rate)
    ctrs = [np.zeros(N_COUNTERS, dtype=np.int64) for _ in range(2)]
    ios = [np.zeros(N_IO, dtype=np.int64) for _ in range(2)]
    cycles = max(1, requests // batch)
    cap = int(CAP_NS * rate)

    def run(stamped: bool) -> tuple[np.ndarray, np.ndarray]:
        acc = np.zeros((N_ROWS, N_ACC), dtype=np.int64)
        durations = np.zeros((cycles, N_PHASES), dtype=np.int64)
        args = (clock, inst.cfg, arena, inst.drv, inst.dev, *ctrs, *ios)
        status = _cycle_loop(*args, (acc, durations), (batch, stamped, cap))
        if status != OK:
            raise InvariantError(f"{label}: the one-thread operation loop: {STATUS_WORDS[status]}")
        return acc, durations

    run(True), run(False)  # warm-up: compiles (or loads) the loop, warms the caches
    pairs = [(run(True)[0], run(False)[1]) for _ in range(repetitions)]
    problems = mdef.audit(inst)
    if problems:
        raise InvariantError(f"{label}: the ring's audit after the loop: {'; '.join(problems)}")
    return _model_costs(label, mdef.name, pairs, 1.0 / rate)


def default_variants(models: tuple[str, ...] | None = None) -> dict[str, tuple[str, dict]]:
    """Label -> (model, options): every registered model (or those named) with its defaults,
    all of which the native engine accepts (no timer, no synchronous call)."""
    names = models if models is not None else tuple(registry())
    return {name: (name, {}) for name in names}


def measure_models(
    variants: dict[str, tuple[str, dict[str, Any]]] | None = None,
    repetitions: int = 5,
    requests: int = 50_000,
    batch: int = 32,
    queue_size: int = QUEUE_SIZE,
    cycles_per_ns: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, ModelCosts]:
    """:func:`measure_model` for each variant (label -> (model, options); default: every
    registered model with its defaults) at ``queue_size``."""
    rate = _cycles_per_ns(cycles_per_ns)
    out = {}
    for label, (name, options) in (variants or default_variants()).items():
        mdef = get_model(name)
        opts = mdef.options.model_validate({"queue_size": queue_size, **options})
        if progress:
            progress(f"timing {label}'s ring operations ({repetitions} runs)")
        out[label] = measure_model(label, mdef, opts, repetitions, requests, batch, rate)
    return out


def measure_op_costs(
    models: tuple[str, ...] | None = None,
    repetitions: int = 5,
    requests: int = 50_000,
    batch: int = 32,
    queue_size: int = QUEUE_SIZE,
) -> dict[str, dict[str, OpTiming]]:
    """Model -> operation -> its cost per call on one thread (every registered model, or those
    named, with default options); :func:`measure_models` also gives the sum check."""
    found = measure_models(default_variants(models), repetitions, requests, batch, queue_size)
    return {label: costs.ops for label, costs in found.items()}


def measure_harness_costs(
    repetitions: int = 5,
    requests: int = 50_000,
    batch: int = 32,
    size: int = HARNESS_SIZE,
    cycles_per_ns: float | None = None,
) -> dict[str, OpTiming]:
    """The native engine's own work per request beyond the ring, on one thread, for
    ``size``-byte requests, through the very functions of :mod:`vbench.native.loops`:
    ``driver_ns`` (payload fill and checksum, the add's TSC stamp, the slot bookkeeping, the
    completion check and latency record) and ``device_ns`` (header and checksum verify, the
    stamp). Median, min and max over ``repetitions`` runs of ``requests // batch`` batches."""
    rate = _cycles_per_ns(cycles_per_ns)
    wl = _workload(requests, size, QUEUE_SIZE)
    driver_clock, device_clock = _native_clocks(wl, batch, 1.0 / rate)
    cycles = max(1, requests // batch)

    def run() -> np.ndarray:
        durations = np.zeros((cycles, N_PHASES), dtype=np.int64)
        status = _harness_loop(driver_clock, device_clock, durations, batch)
        if status != OK:
            raise InvariantError(
                f"the native harness rejected its own payload: {protocol.STATUS_TEXT[status]}"
            )
        return _phase_means(durations) / rate / batch

    run()  # warm-up: compiles (or loads) the loop, warms the caches
    per_request = [run() for _ in range(repetitions)]
    driver = [float(p[FILL] + p[CHECK]) for p in per_request]
    device = [float(p[VERIFY]) for p in per_request]
    calls = cycles * batch
    return {"driver_ns": OpTiming.of(driver, calls), "device_ns": OpTiming.of(device, calls)}
