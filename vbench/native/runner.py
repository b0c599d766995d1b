"""``run_point`` for ``engine.kind = "native"``: run each model for real on two threads, measure.

Same signature and row form as :func:`vbench.simulation.run_point`, but a native row *measures*:
its figures are ``measured_*`` columns (kind "timing" in :mod:`vbench.metrics`), never the
simulation's modeled or exact columns, and there is one row per repetition (``rep``, 0-based;
warm-up runs are not rows) so that ``vbench compare`` can test significance.

Per model: refuse what a native run cannot do (below), check that every field of the model's
layout is naturally aligned (the atomic accessors need it), compile both loops of
:mod:`vbench.native.loops` in this thread *before* any thread starts (a first call that compiles
inside a thread would hold numba's compiler lock while the peer spins), then run
``warmup + repetitions`` times, each on a freshly built instance: a driver thread and a device
thread, pinned to two distinct CPUs (:func:`vbench.native.sysio.cpu_pair`) unless
``engine.native.pin = false``, released together, joined, checked.

Checked after every run, each failure an :class:`~vbench.errors.InvariantError` (``vbench run``
exits 3): a lost, duplicated, corrupted or foreign buffer (the loops' statuses, with the request
id), a stalled run (the deadline ``engine.native.timeout_s`` passed: the message says what each
side was waiting for), kicks sent != kicks received or calls sent != calls received (after
draining both eventfds: an eventfd coalesces signals into its counter, and the sum of the
values read is exact), fewer completions than requests, and the model's own end-of-run audit.

Before and after each measured repetition a short cache-line ping-pong on the run's two CPUs
(:func:`vbench.native.calibrate.line_probe_ns`, about a millisecond) records the one-way line
transfer in ``line_probe_before_ns`` and ``line_probe_after_ns``: on a virtual machine the host
moves the vCPUs and the transfer has modes (about 30 ns or about 185 ns on the development
machine) that move throughput 3-5x, so a row says which mode it ran in, and whether the mode
changed during the run. NaN where the threads are not pinned to two CPUs.

Refused with a one-line :class:`~vbench.errors.ConfigError` (they need the simulation's clock,
which a native run does not have): an open-loop workload (the native run is ringtest's closed
loop), ``tx_timer_ns`` (a mitigation timer) and vbus ``transport = "call"`` (a synchronous call
served inside the exit by the simulated host).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vbench.costs import Preset
from vbench.counters import (
    C_DEV_WAKEUPS,
    C_IRQS,
    C_IRQS_DELIVERED,
    C_KICKS,
    C_KICKS_SUPPRESSED,
    C_RING_FULL,
    C_SPURIOUS_DEV,
    C_SPURIOUS_DRV,
    N_COUNTERS,
    N_IO,
)
from vbench.errors import ConfigError, InvariantError
from vbench.histogram import new_hist, percentiles
from vbench.layout import SCALARS, STRUCTS, ArenaLayout
from vbench.memory import aligned_zeros, native_arena
from vbench.models.interface import Instance, ModelDef, ModelOptions
from vbench.simulation import (
    HIST_KEY,
    PERCENTILES,
    EngineSpec,
    NativeSpec,
    check_model,
    needs_of,
    sparse_hist,
)
from vbench.workload import Workload

MAX_POOL_BYTES = 256 << 20  # the payload pool: slots for every request in flight


@dataclass(frozen=True)
class Hooks:
    """Test hooks: make a run fail on purpose, to prove the checks catch it."""

    corrupt_request: int = -1  # the driver flips a payload bit of this request after its checksum
    device_stalls: bool = False  # the device never consumes anything
    late_last_notify_ns: int = 0  # the device waits this long before its last notify decision
    lose_request: int = -1  # this request's completion never reaches the driver
    duplicate_request: int = -1  # the driver is handed this request's completion twice
    shadow_latency: bool = False  # every latency also into NativeRun.shadow_hist (stamp tests)


@dataclass
class NativeRun:
    """One repetition's raw outcome (both sides' counters and outputs, the driver's histogram)."""

    drv_ctr: np.ndarray
    dev_ctr: np.ndarray
    drv_state: Any  # each side's final state record (vbench.native.loops.STATE)
    dev_state: Any
    hist: np.ndarray
    lat_max: np.ndarray
    n: int
    shadow_hist: np.ndarray  # Hooks.shadow_latency: every request's latency (else zeros)


# --- refusals and checks --------------------------------------------------------------------------
def refuse(mdef: ModelDef, opts: ModelOptions, wl: Workload, where: str) -> None:
    """Refuse, with one line naming the fix, what a native run cannot do."""
    problem = native_problem(opts, wl.in_flight_cap > 0, where)
    if problem:
        raise ConfigError(f"{where}: {problem}")


def native_problem(opts: ModelOptions | None, closed_loop: bool, label: str) -> str | None:
    """What a native run of the model labelled ``label`` cannot do, and its fix, or None
    (``opts`` None: the workload's alone).

    Takes the workload's loop kind rather than the workload, so that a config is refused when
    it is read (:mod:`vbench.config`), before anything compiles or runs."""
    if not closed_loop:
        return (
            'engine.kind = "native" runs a closed loop: set workload.arrival = '
            '{ kind = "closed", in_flight = N } or engine.kind = "sim"'
        )
    if opts is None:
        return None
    if float(getattr(opts, "tx_timer_ns", 0.0) or 0.0) > 0:
        return (
            "tx_timer_ns needs the simulation's clock: set "
            f'models.{label}.tx_timer_ns = 0 for engine.kind = "native"'
        )
    if getattr(opts, "transport", "ring") == "call":
        return (
            'transport = "call" is served inside a simulated exit: use '
            f'models.{label}.transport = "ring" for engine.kind = "native"'
        )
    return None


def check_alignment(layout: ArenaLayout) -> list[str]:
    """Every scalar field of the layout, in every array element, at a multiple of its size.

    LLVM's atomic loads and stores need natural alignment, and an x86 access that straddles two
    cache lines is not atomic. Structs laid out by :mod:`vbench.layout` are naturally aligned
    inside; this checks where the areas put them (and array strides). Problems, one per field.
    """
    out = []
    for area in layout.areas:
        for f in area.fields:
            base = area.offset + f.offset
            if f.type in SCALARS:
                size = SCALARS[f.type]
                stride = size
                bad = base % size != 0
            else:
                s = STRUCTS.get(f.type)
                if s is None:
                    continue  # raw bytes (a payload or table without declared fields)
                stride = s.size
                bad = base % s.align != 0 or stride % s.align != 0
            if bad:
                out.append(
                    f"{layout.model}: {area.name}.{f.name} at offset {base} (stride {stride}) "
                    "is not naturally aligned"
                )
    return out


def _tsc_ns_per_cycle() -> float:
    """Nanoseconds per TSC cycle on this machine (the latency clock of the loops)."""
    from vbench.native.calibrate import tsc_rate

    return 1.0 / tsc_rate(20_000_000)


# --- one repetition ------------------------------------------------------------------------------
def _params(
    n: int, eng: EngineSpec, wl: Workload, pool_slots: int, slot_words: int, hooks: Hooks
) -> np.ndarray:
    """The loops' parameter record (:data:`vbench.native.loops.PARAMS`); the eventfds, the
    deadline and the TSC period are filled in just before the run."""
    from vbench.native import loops

    native = eng.native
    params = np.zeros(1, dtype=loops.PARAMS)
    params["requests"] = n
    params["batch"] = eng.batch
    params["cap"] = wl.in_flight_cap
    params["device_polls"] = eng.device == "poll"
    params["driver_polls"] = eng.driver == "poll"
    params["spin_ns"] = native.spin_ns
    params["exit_cycles"] = native.exit_cycles
    params["entry_cycles"] = native.entry_cycles
    params["pool_mask"] = pool_slots - 1
    params["slot_map"] = _out_of_order(wl)
    params["slot_words"] = slot_words
    params["ns_per_cycle"] = 1.0
    masks = {"full": 0, "sample": native.sample_every - 1, "off": -1, "ring": -1}
    params["verify_mask"] = masks[native.verify]
    params["touch_pool"] = native.verify != "ring"
    params["stamp_mask"] = 0 if native.stamp == "all" else native.sample_every - 1
    params["hook_corrupt"] = hooks.corrupt_request
    params["hook_lose"] = hooks.lose_request
    params["hook_duplicate"] = hooks.duplicate_request
    params["hook_shadow"] = hooks.shadow_latency
    params["hook_stall"] = hooks.device_stalls
    params["hook_late_ns"] = hooks.late_last_notify_ns
    params["kick_fd"] = -1
    params["call_fd"] = -1
    return params


def _pool_shape(wl: Workload) -> tuple[int, int]:
    """(slots, words per slot): a power of two >= the in-flight cap, header + largest payload
    rounded up to whole 128-byte pairs of cache lines (:data:`vbench.native.loops.PAIR_WORDS`):
    two requests never share a line, nor a pair the spatial prefetcher fetches together, so a
    slot's lines travel only between the two sides serving that request."""
    from vbench.native import loops

    slots = 1 << max(0, math.ceil(math.log2(max(1, wl.in_flight_cap))))
    words = loops.HEADER_WORDS + (int(wl.max_size) + 7) // 8
    words = -(-words // loops.PAIR_WORDS) * loops.PAIR_WORDS
    if slots * words * 8 > MAX_POOL_BYTES:
        raise ConfigError(
            f"the native payload pool would need {slots * words * 8 >> 20} MiB "
            f"({slots} requests in flight x {int(wl.max_size)} bytes): lower the workload "
            "sizes or arrival.in_flight"
        )
    return slots, words


def _requests(wl: Workload) -> tuple[Any, ...]:
    """What the driver's adds read: (size, segments, prio, direction, index mask)."""
    return (
        np.ascontiguousarray(wl.size, dtype=np.int64),
        np.ascontiguousarray(wl.segments, dtype=np.int64),
        np.ascontiguousarray(wl.prio, dtype=np.int64),
        np.ascontiguousarray(wl.direction, dtype=np.int64),
        np.uint64(0xFFFF_FFFF_FFFF_FFFF),  # the arrays hold the whole run: no window
    )


def _own_lines(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` on 128-byte pairs of cache lines no other object shares
    (:data:`vbench.native.loops.PAIR_WORDS`). A side's private state and the read-only config
    are plain numpy arrays, placed by malloc next to whatever came before: a line shared with
    something the other thread writes would move between the CPUs at every write (false
    sharing, which a C ring with its own structures does not pay)."""
    from vbench.native import loops

    pair = loops.PAIR_WORDS * 8
    padded = -(-array.nbytes // pair) * pair
    out = aligned_zeros(max(padded, pair), pair)[: array.nbytes].view(array.dtype)
    out = out.reshape(array.shape)
    out[...] = array
    return out


class _Side:
    """One side's private arrays: counters (no line states: the hardware tracks lines), io,
    and its state record (on cache lines of its own: the other thread never touches them)."""

    def __init__(self) -> None:
        from vbench.native import loops

        self.ctr = aligned_zeros(N_COUNTERS * 8).view(np.int64)
        self.io = aligned_zeros(N_IO * 8).view(np.int64)
        self.state = aligned_zeros(loops.STATE.itemsize).view(loops.STATE)

    def clock(self, shared: tuple[Any, ...]) -> tuple[Any, ...]:
        """This side's clock (see vbench.native.loops.CLOCK_*) over the shared arrays
        ``(params, requests, pool, slots, added, hist, lat_max, control, shadow, slot_of)``,
        with its own stack of free pool slots (the driver's, where requests have a slot map)."""
        params, requests, pool, slots, added, hist, lat_max, control, shadow, slot_of = shared
        free = np.arange(slots.size, dtype=np.int64)[::-1].copy()  # slot 0 on top
        self.state["free_slots"] = slots.size
        return (
            params,
            self.state,
            requests,
            pool,
            slots,
            added,
            hist,
            lat_max,
            control,
            self.io,
            shadow,
            slot_of,
            free,
            self.ctr,
        )


def _call_loops(
    inst: Instance, arena: np.ndarray, drv: _Side, dev: _Side, shared: tuple[Any, ...]
) -> tuple[Any, Any]:
    """The two loop calls as closures (the thread bodies); 0 requests in the parameters make
    them compile and return at once. Each loop takes its ring arrays as separate arguments
    (see :func:`vbench.native.loops.driver_loop`)."""
    from vbench.native import loops

    driver_args = (drv.clock(shared), inst.cfg, arena, inst.drv, drv.ctr, drv.io)
    device_args = (dev.clock(shared), inst.cfg, arena, inst.dev, dev.ctr, dev.io)

    def driver() -> None:
        loops.driver_loop(*driver_args)

    def device() -> None:
        loops.device_loop(*device_args)

    return driver, device


def _out_of_order(wl: Workload) -> bool:
    """Whether completions may overtake each other: the urgent class's, on rings per class or
    through a look-ahead window. Then each request takes a free pool slot, found through a
    request -> slot map (:func:`vbench.native.loops.slot_of`)."""
    return wl.classes > 1


def _shared(params: np.ndarray, wl: Workload, slots: int, words: int) -> tuple[Any, ...]:
    """The arrays both sides' clocks hold: (params, requests, pool, slots, added, hist,
    lat_max, control, shadow, slot_of)."""
    from vbench.native import loops

    return (
        params,
        _requests(wl),
        aligned_zeros(slots * words * 8).view(np.int64),
        np.full(slots, -1, dtype=np.int64),  # the request in each pool slot
        np.zeros(slots, dtype=np.int64),  # the TSC of each slot's add
        new_hist(wl.classes),
        np.zeros(wl.classes, dtype=np.float64),
        aligned_zeros(loops.N_CTL * 8).view(np.int64),
        new_hist(wl.classes),  # Hooks.shadow_latency only
        # the pool slot of each request (loops.slot_of), where completions come out of order
        np.full(len(wl) if _out_of_order(wl) else 1, -1, dtype=np.int64),
    )


def _native_instance(mdef: ModelDef, opts: ModelOptions, wl: Workload) -> tuple[Instance, Any]:
    """The model built for two real threads: its arena page-aligned, as words (returned beside
    the instance, whose ``mem`` becomes that arena's bytes: the audit reads the memory the
    threads used), its config and each side's state on cache lines of their own."""
    inst = mdef.build(opts, needs_of(wl))
    arena = native_arena(inst.mem)
    inst.mem = arena.view(np.uint8)
    inst.cfg, inst.drv, inst.dev = (_own_lines(a) for a in (inst.cfg, inst.drv, inst.dev))
    return inst, arena


def compile_loops(mdef: ModelDef, opts: ModelOptions, wl: Workload, eng: EngineSpec) -> None:
    """Compile (or load from the cache) both loops for this model, in the calling thread."""
    inst, arena = _native_instance(mdef, opts, wl)
    slots, words = _pool_shape(wl)
    params = _params(0, eng, wl, slots, words, Hooks())
    shared = _shared(params, wl, slots, words)
    driver, device = _call_loops(inst, arena, _Side(), _Side(), shared)
    driver()
    device()


def run_once(
    label: str,
    mdef: ModelDef,
    opts: ModelOptions,
    wl: Workload,
    eng: EngineSpec,
    nspc: float,
    hooks: Hooks = Hooks(),
) -> NativeRun:
    """One native run of one model over the workload; raises InvariantError if it fails."""
    from vbench.native import sysio

    n = len(wl)
    inst, arena = _native_instance(mdef, opts, wl)
    slots, words = _pool_shape(wl)
    params = _params(n, eng, wl, slots, words, hooks)
    params["ns_per_cycle"] = nspc
    shared = _shared(params, wl, slots, words)
    drv, dev = _Side(), _Side()
    kick_fd, call_fd = sysio.eventfd(), sysio.eventfd()
    params["kick_fd"] = kick_fd
    params["call_fd"] = call_fd
    try:
        _run_threads(label, eng.native, _call_loops(inst, arena, drv, dev, shared), shared)
        # whatever was signalled but not read yet (the last kicks reach a device that had
        # already finished; a polling side never reads): counted, so sent == received
        dev.state["received"] += max(0, int(sysio.efd_take(kick_fd)))
        drv.state["received"] += max(0, int(sysio.efd_take(call_fd)))
    finally:
        sysio.close(kick_fd)
        sysio.close(call_fd)
    control = shared[7]
    _check(label, mdef, inst, eng.native, (drv, dev), control, n)
    hist, lat_max = shared[5], shared[6]
    return NativeRun(drv.ctr, dev.ctr, drv.state[0], dev.state[0], hist, lat_max, n, shared[8])


def _run_threads(
    label: str, native: NativeSpec, bodies: tuple[Any, Any], shared: tuple[Any, ...]
) -> None:
    """The driver and the device on two threads (pinned to two CPUs unless told not to),
    released together, joined; an exception in either is raised here."""
    from vbench.native import loops, sysio

    params, control = shared[0], shared[7]
    pair = sysio.cpu_pair() if native.pin else None
    errors: list[BaseException] = []

    def body(fn: Any, cpu: int | None) -> Any:
        def run() -> None:
            try:
                if cpu is not None:
                    sysio.pin_current_thread(cpu)
                fn()
            except BaseException as exc:  # noqa: BLE001 (re-raised in the calling thread)
                control[loops.K_STOP] = 1
                errors.append(exc)

        return run

    threads = [
        threading.Thread(target=body(bodies[0], pair[0] if pair else None), name="vbench-driver"),
        threading.Thread(target=body(bodies[1], pair[1] if pair else None), name="vbench-device"),
    ]
    deadline = time.monotonic_ns() + int(native.timeout_s * 1e9)
    params["deadline"] = deadline
    for t in threads:
        t.start()
    while control[loops.K_READY] < 2 and not errors and time.monotonic_ns() < deadline:
        time.sleep(0.0001)
    control[loops.K_GO] = 1
    for t in threads:
        t.join(native.timeout_s + 10.0)
    if any(t.is_alive() for t in threads):
        control[loops.K_STOP] = 1
        for t in threads:
            t.join(5.0)
    if any(t.is_alive() for t in threads):
        raise InvariantError(f"{label}: native run threads did not stop (a vbench bug)")
    if errors:
        raise errors[0]


def _check(
    label: str,
    mdef: ModelDef,
    inst: Instance,
    native: NativeSpec,
    sides: tuple[_Side, _Side],
    control: np.ndarray,
    n: int,
) -> None:
    from vbench.native import loops

    drv, dev = sides[0].state[0], sides[1].state[0]
    driver_status, device_status = int(drv["status"]), int(dev["status"])
    if driver_status != loops.ST_OK or device_status != loops.ST_OK:
        statuses = {driver_status, device_status}
        if loops.ST_STALL in statuses and not (
            statuses - {loops.ST_STALL, loops.ST_PEER, loops.ST_OK}
        ):
            done, started = int(drv["completed"]), int(drv["next_request"])
            raise InvariantError(
                f"{label}: native run stalled: no completion of all {n} requests within "
                f"engine.native.timeout_s = {native.timeout_s:g} s: driver "
                f"{loops.WAIT_TEXT[int(control[loops.K_DRV_WAIT])]} with {started - done} requests "
                f"outstanding ({done} completed), device "
                f"{loops.WAIT_TEXT[int(control[loops.K_DEV_WAIT])]} ({int(dev['done'])} consumed)"
            )
        side, status, state = (
            ("driver", driver_status, drv)
            if driver_status not in (loops.ST_OK, loops.ST_PEER)
            else ("device", device_status, dev)
        )
        what = "errno" if status == loops.ST_ERRNO else "request"
        raise InvariantError(
            f"{label}: native run failed: the {side} found {loops.STATUS_TEXT[status]} "
            f"({what} {abs(int(state['detail']))})"
        )
    problems = []
    if int(drv["completed"]) != n:
        problems.append(f"{int(drv['completed'])} of {n} requests completed")
    kicks, interrupts = int(sides[0].ctr[C_KICKS]), int(sides[1].ctr[C_IRQS])
    if kicks != int(dev["received"]):
        problems.append(f"kicks sent {kicks} != received {int(dev['received'])}")
    if interrupts != int(drv["received"]):
        problems.append(f"interrupts sent {interrupts} != received {int(drv['received'])}")
    problems += mdef.audit(inst)
    if problems:
        raise InvariantError(
            f"{label}: native end-of-run invariants broken: " + "; ".join(problems)
        )


# --- rows ------------------------------------------------------------------------------------------
def summarize(label: str, model: str, rep: int, run: NativeRun) -> dict[str, Any]:
    """One row per repetition: every figure a ``measured_*`` column."""
    n = run.n
    secs = (int(run.drv_state["t1"]) - int(run.drv_state["t0"])) / 1e9
    row: dict[str, Any] = {"label": label, "model": model, "rep": rep}
    row["measured_requests"] = int(run.drv_state["completed"])
    row["measured_seconds"] = secs
    row["measured_requests_per_s"] = n / secs if secs > 0 else float("nan")
    total = run.hist.sum(axis=0)
    qs = percentiles(total, [q for _, q in PERCENTILES])
    for (tag, _), v in zip(PERCENTILES, qs, strict=True):
        row[f"measured_lat_{tag}_ns"] = float(v)
    row["measured_lat_max_ns"] = float(run.lat_max.max())
    d, v = run.drv_ctr, run.dev_ctr
    row["measured_kicks"] = int(d[C_KICKS])
    row["measured_kicks_received"] = int(run.dev_state["received"])
    row["measured_kicks_suppressed"] = int(d[C_KICKS_SUPPRESSED])
    row["measured_interrupts"] = int(v[C_IRQS])
    row["measured_interrupts_received"] = int(run.drv_state["received"])
    row["measured_interrupts_delivered"] = int(d[C_IRQS_DELIVERED])
    row["measured_spurious_device"] = int(v[C_SPURIOUS_DEV])
    row["measured_spurious_driver"] = int(d[C_SPURIOUS_DRV])
    row["measured_device_wakeups"] = int(v[C_DEV_WAKEUPS])
    row["measured_ring_full"] = int(d[C_RING_FULL])
    row["measured_kicks_per_req"] = row["measured_kicks"] / n if n else float("nan")
    row["measured_interrupts_per_req"] = row["measured_interrupts"] / n if n else float("nan")
    row[HIST_KEY] = sparse_hist(run.hist)
    return row


def line_probe(native: NativeSpec, nspc: float) -> float:
    """The one-way line transfer in ns between the run's two CPUs, probed now (which mode the
    machine is in); NaN where the run is not pinned to two CPUs."""
    from vbench.native import sysio
    from vbench.native.calibrate import line_probe_ns

    pair = sysio.cpu_pair() if native.pin else None
    return line_probe_ns(pair, nspc) if pair else float("nan")


def run_model(
    label: str,
    mdef: ModelDef,
    opts: ModelOptions,
    wl: Workload,
    eng: EngineSpec,
    nspc: float,
    hooks: Hooks = Hooks(),
) -> list[dict[str, Any]]:
    """Warm-up and measured repetitions of one model: one row per measured repetition, with
    the line probes taken just before and after it (warm-ups are not probed)."""
    compile_loops(mdef, opts, wl, eng)
    rows = []
    nat = eng.native
    for k in range(nat.warmup + nat.repetitions):
        measured = k >= nat.warmup
        before = line_probe(nat, nspc) if measured else math.nan
        run = run_once(label, mdef, opts, wl, eng, nspc, hooks)
        if measured:
            row = summarize(label, mdef.name, k - nat.warmup, run)
            row["line_probe_before_ns"] = before
            row["line_probe_after_ns"] = line_probe(nat, nspc)
            row["workload_fingerprint"] = wl.fingerprint()
            rows.append(row)
    return rows


def run_point(
    models: list[tuple[str, ModelDef, ModelOptions]],
    wl: Workload,
    eng: EngineSpec,
    preset: Preset,
    *,
    hooks: Hooks = Hooks(),
) -> list[dict[str, Any]]:
    """Every model of a point on two real threads over the same workload; ``repetitions``
    rows per model. ``preset`` is unused (a native run measures; it models nothing): the
    parameter keeps the signature of :func:`vbench.simulation.run_point`."""
    needs = needs_of(wl)
    for lbl, md, op in models:  # every refusal before anything runs
        check_model(md, op, needs, eng.batch, lbl)
        refuse(md, op, wl, lbl)
        bad = check_alignment(md.layout(op, needs))
        if bad:
            raise InvariantError("; ".join(bad))
        _pool_shape(wl)
    nspc = _tsc_ns_per_cycle()
    rows = []
    for lbl, md, op in models:
        rows += run_model(lbl, md, op, wl, eng, nspc, hooks)
    return rows
