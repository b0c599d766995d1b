"""Run models over one workload: build each instance, simulate, audit, summarise.

This is the library call behind ``vbench run`` (one sweep point) and behind the tests. Every
model of a point consumes the very same :class:`~vbench.workload.Workload` arrays, so the
comparison between models is paired.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vbench.costs import Preset
from vbench.counters import (
    AREA_BASE,
    AREAS,
    CAUSES,
    COUNTERS,
    LINE_BASE,
    N_AREAS,
    N_COUNTERS,
    T_OPS,
)
from vbench.errors import ConfigError, InvariantError
from vbench.histogram import percentiles
from vbench.memory import MAX_REQUEST_BYTES
from vbench.models.interface import Instance, ModelDef, ModelOptions, Needs
from vbench.workload import CHUNK, Workload, WorkloadStream, fingerprint_of

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99_9", 99.9),
)


class NativeSpec(BaseModel):
    """Options of the native engine only (``engine.kind = "native"``; the simulation ignores
    them): repetitions, notification timing, ringtest's exit emulation, the run's time bound.
    See :mod:`vbench.native.runner`."""

    model_config = ConfigDict(extra="forbid")
    repetitions: int = Field(5, ge=1, description="measured runs per model and point (rows)")
    warmup: int = Field(1, ge=0, description="unrecorded runs before them")
    spin_ns: int = Field(0, ge=0, description="sleeping mode: spin this long before blocking")
    exit_cycles: int = Field(500, ge=0, description="busy-wait before each notification (VMEXIT)")
    entry_cycles: int = Field(500, ge=0, description="busy-wait after it (VMENTRY)")
    timeout_s: float = Field(
        30.0, gt=0, allow_inf_nan=False, description="bound on one run: a wedged run fails"
    )
    pin: bool = Field(True, description="pin the two threads to two distinct CPUs")
    verify: Literal["full", "sample", "off", "ring"] = Field(
        "full",
        description="payload check: every request's (full), one in sample_every (sample; "
        "the others' header id and size only), none (off: header and completion checks only), "
        "no payload slot at all (ring: the driver's own checks of each completion only, so "
        "only the ring's lines move, as in a C ring)",
    )
    stamp: Literal["all", "sample"] = Field(
        "sample",
        description="latency: a sample's (sample: one request in sample_every, chosen by a "
        "hash of its id, gets two TSC reads and a histogram record) or every request's (all: "
        "for the tails of short runs)",
    )
    sample_every: int = Field(
        8, ge=2, le=1 << 20, description="sampling period of verify and stamp (a power of two)"
    )

    @field_validator("sample_every")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        """The loops choose a request with a mask (one AND on the hot path)."""
        if value & (value - 1):
            raise ValueError(f"sample_every must be a power of two, got {value}")
        return value


class EngineSpec(BaseModel):
    """How the two sides behave around the ring, and what the work itself costs.

    ``service_ns`` and ``driver_ns`` are the workload's own costs, not the ring's: they are
    engineering estimates to be set per experiment (defaults: a small network packet).
    """

    model_config = ConfigDict(extra="forbid")
    batch: int = Field(16, ge=1, description="requests made available per kick decision")
    device: Literal["sleep", "poll"] = "sleep"
    driver: Literal["interrupt", "poll"] = "interrupt"
    service_ns: float = Field(
        200.0, ge=0, allow_inf_nan=False, description="device work per request [E]"
    )
    service_ns_per_byte: float = Field(
        0.05, ge=0, allow_inf_nan=False, description="device work per byte [E]"
    )
    driver_ns: float = Field(
        100.0, ge=0, allow_inf_nan=False, description="guest work per request [E]"
    )
    completion_ns: float = Field(
        0.0,
        ge=0,
        allow_inf_nan=False,
        description="guest work per completed request, done as the guest takes it (its "
        "network stack's receive path, a block request's end_io) before it takes the next "
        "[E]: the guest's CPU is one clock shared by submissions, interrupt entries and "
        "completions, so this is what makes a guest busy with completions, and the order in "
        "which it takes them the order in which they finish",
    )
    poll_ns: float = Field(
        50.0, gt=0, allow_inf_nan=False, description="one empty poll of the ring [E]"
    )
    device_in_user_space: bool = False
    native_harness: bool = Field(
        False,
        description="add the native engine's own per-request work (the preset's harness "
        "figures, measured by vbench calibrate) to driver_ns and service_ns: a simulation "
        "that predicts a native run of the same point",
    )
    kind: Literal["sim", "native"] = "sim"
    native: NativeSpec = Field(default_factory=NativeSpec)


@dataclass
class ModelRun:
    """One model's raw result on one workload."""

    label: str
    model: str
    counters: np.ndarray
    causes: np.ndarray
    hist: np.ndarray
    lat_max: np.ndarray
    hol: np.ndarray  # head-of-line time per class (ns, summed over requests)
    state: np.ndarray  # the run's final state record (vbench.engine.STATE)
    instance: Instance
    wall_s: float = float("nan")  # wall time of the simulation itself (a timing metric)
    requests: int = 0
    digest: str = ""  # of the event sequence (see event_digest)
    workload_fingerprint: str = ""
    #: per area of :data:`vbench.counters.AREAS`: driver misses, device misses, driver
    #: invalidations, device invalidations
    areas: np.ndarray | None = None


#: The most requests a run holds at once (a power of two): a longer run is fed through a window
#: of this many, drawn chunk by chunk, so its memory does not grow with its length.
WINDOW = 1 << 20


def needs_of(wl: Workload | WorkloadStream) -> Needs:
    """What the rings must hold: the largest request of a materialised workload, or the worst
    case its spec allows for a stream (which is never held whole)."""
    if isinstance(wl, WorkloadStream):
        from vbench.config import needs_for

        return needs_for(wl.spec)
    return Needs(max_segments=int(wl.max_segments), max_size=int(wl.max_size), classes=wl.classes)


def _pieces(wl: Workload | WorkloadStream):
    """(first request, its five arrays) piece by piece, in order, CHUNK requests at a time."""
    if isinstance(wl, WorkloadStream):
        yield from wl.chunks()
        return
    arrays = (wl.arrival_ns, wl.size, wl.segments, wl.prio, wl.direction)
    for lo in range(0, len(wl), CHUNK):
        yield lo, tuple(a[lo : lo + CHUNK] for a in arrays)


class _Window:
    """The run's window of requests: fills it piece by piece, and proves on the way that every
    request that leaves it (and, at the end, every one still in it) completed exactly once."""

    def __init__(self, wl: Workload | WorkloadStream, size: int) -> None:
        self.n = len(wl) if isinstance(wl, Workload) else wl.n
        self.size = size
        self.bufs = (
            np.zeros(self.size, np.float64),
            np.zeros(self.size, np.int64),
            np.zeros(self.size, np.int64),
            np.zeros(self.size, np.int64),
            np.zeros(self.size, np.int8),
        )
        self.done = np.zeros(0, np.uint8)  # the run's completion flags (set by attach)
        self.state = np.zeros(0)
        self.pieces = _pieces(wl)
        self.pending: tuple[int, tuple[np.ndarray, ...]] | None = None
        self.filled = 0
        self.verified = 0
        self.first_arrival = 0.0
        self.hashers = [hashlib.sha256() for _ in range(5)]

    def attach(self, clock: tuple) -> None:
        """Fill the window of the run ``clock`` (see :func:`vbench.engine.new_clock`)."""
        from vbench import engine

        self.done = clock[engine.CLOCK_DONE]
        self.state = clock[engine.CLOCK_STATE]

    def fill(self) -> bool:
        """Add every piece that fits (its slots' earlier requests all completed); False if
        none fitted."""
        added = False
        while self.filled < self.n:
            if self.pending is None:
                self.pending = next(self.pieces)
            lo, arrays = self.pending
            m = arrays[0].shape[0]
            s = lo & (self.size - 1)
            if lo >= self.size:
                if not self.done[s : s + m].all():
                    break  # a request of that slot range is still outstanding: not yet
                self.verified += m
            self.done[s : s + m] = 0
            for buf, a, h in zip(self.bufs, arrays, self.hashers, strict=True):
                buf[s : s + m] = a
                h.update(np.ascontiguousarray(a).tobytes())
            if lo == 0:
                self.first_arrival = float(arrays[0][0])
            self.filled = lo + m
            self.state["filled"] = self.filled
            self.pending = None
            added = True
        return added

    def verify_end(self) -> int:
        """Requests completed exactly once, over the whole run."""
        tail = min(self.n, self.size)
        lo = self.n - tail
        slots = (np.arange(lo, self.n) & (self.size - 1)) if tail else np.arange(0)
        return self.verified + int((self.done[slots] == 1).sum())


def _window_size(n: int) -> int:
    return min(WINDOW, 1 << max(CHUNK.bit_length() - 1, (n - 1).bit_length()))


def check_model(
    mdef: ModelDef, opts: ModelOptions, wl_needs: Needs, batch: int, where: str
) -> None:
    """Refuse an impossible combination with one line naming the problem and the fix."""
    if wl_needs.max_size > MAX_REQUEST_BYTES:
        raise ConfigError(
            f"{where}: a request of {wl_needs.max_size} bytes exceeds the {MAX_REQUEST_BYTES}-byte "
            "limit: lower the workload sizes"
        )
    problem = mdef.check(opts, wl_needs, batch)
    if problem:
        raise ConfigError(f"{where}: {problem}")


def engine_params(
    eng: EngineSpec,
    wl: Workload | WorkloadStream,
    preset: Preset,
    mdef: ModelDef | None = None,
) -> np.ndarray:
    """The simulation's parameter record (:data:`vbench.engine.PARAMS`) for one run of
    ``mdef`` (whether each class has its own ring: ``ModelDef.queue_per_class``)."""
    from vbench import engine
    from vbench.costs import COST_FIELDS

    n = len(wl) if isinstance(wl, Workload) else wl.n
    costs = dict(zip(COST_FIELDS, (float(v) for v in preset.vector()), strict=True))
    per_class = mdef is not None and mdef.queue_per_class and wl.classes > 1
    return engine.new_params(_with_harness(eng, preset), wl.in_flight_cap, n, costs, per_class)


def _with_harness(eng: EngineSpec, preset: Preset) -> EngineSpec:
    """The engine spec with the native engine's own per-request work added to the guest's and
    the device's, when ``native_harness`` asks for it (validation: the native run pays it)."""
    if not eng.native_harness:
        return eng
    if preset.harness is None:
        raise ConfigError(
            f"engine.native_harness = true needs the native engine's per-request figures, "
            f"which preset '{preset.name}' lacks: run vbench calibrate and use preset "
            '"calibrated"'
        )
    return eng.model_copy(
        update={
            "driver_ns": eng.driver_ns + preset.harness["driver_ns"].value,
            "service_ns": eng.service_ns + preset.harness["device_ns"].value,
        }
    )


def run_model(
    label: str,
    mdef: ModelDef,
    opts: ModelOptions,
    wl: Workload | WorkloadStream,
    eng: EngineSpec,
    preset: Preset,
    needs: Needs | None = None,
) -> ModelRun:
    """Simulate one model over the workload and check the end-of-run invariants."""
    from vbench import engine

    needs = needs if needs is not None else needs_of(wl)
    check_model(mdef, opts, needs, eng.batch, label)
    inst = mdef.build(opts, needs)
    n = len(wl) if isinstance(wl, Workload) else wl.n
    window = _Window(wl, _window_size(n))
    clock = engine.new_clock(
        engine_params(eng, wl, preset, mdef),
        inst,
        window.bufs,
        wl.classes,
        preset.op_vector(mdef.name),
    )
    window.attach(clock)
    state = clock[engine.CLOCK_STATE]
    wall_s = 0.0  # the simulation's own time (sliding the window is not counted)
    while True:
        if not window.fill() and window.filled < n and int(state["status"][0]) == engine.ST_MORE:
            raise InvariantError(
                f"{label}: more than {window.size - CHUNK} requests outstanding: the "
                "run's window cannot slide"
            )
        t0 = time.perf_counter()
        engine.simulate(clock)
        wall_s += time.perf_counter() - t0
        if int(state["status"][0]) != engine.ST_MORE:
            break
    state["first_arrival"] = window.first_arrival
    clock[engine.CLOCK_CAUSES][T_OPS] = engine.ops_cause(clock)
    counters = clock[engine.CLOCK_COUNTERS]
    _check_run(label, mdef, inst, window, clock)
    return ModelRun(
        label,
        mdef.name,
        counters[:N_COUNTERS].copy(),
        clock[engine.CLOCK_CAUSES],
        clock[engine.CLOCK_HIST],
        clock[engine.CLOCK_LAT_MAX],
        clock[engine.CLOCK_HOL],
        clock[engine.CLOCK_STATE],
        inst,
        wall_s,
        n,
        event_digest(clock),
        workload_fingerprint(window, wl),
        counters[AREA_BASE:LINE_BASE].reshape(N_AREAS, 4).copy(),
    )


def _check_run(label: str, mdef: ModelDef, inst: Instance, window: _Window, clock: tuple) -> None:
    """The run's end: its status, every request completed exactly once, the model's audit."""
    from vbench import engine

    state = clock[engine.CLOCK_STATE][0]
    status = int(state["status"])
    n = window.n
    if status != engine.ST_OK:
        raise InvariantError(
            f"{label}: {engine.STATUS_TEXT[status]} (detail {int(state['detail'])}, "
            f"{int(state['completed'])} of {n} completed)"
        )
    problems = []
    once = window.verify_end()
    if once != n:
        problems.append(f"{once} of {n} requests completed exactly once")
    problems += mdef.audit(inst)
    if problems:
        raise InvariantError(f"{label}: end-of-run invariants broken: " + "; ".join(problems))


def event_digest(clock: tuple) -> str:
    """A digest of the run's event sequence: every completion (request, instant) in order,
    folded in by the engine, then every counter, time by cause and histogram bucket. Two runs
    with equal digests did the same things at the same instants (``vbench run --verify``)."""
    from vbench import engine

    h = hashlib.sha256()
    h.update(int(clock[engine.CLOCK_STATE][0]["digest"]).to_bytes(8, "little"))
    arrays = (
        clock[engine.CLOCK_COUNTERS][:N_COUNTERS],
        clock[engine.CLOCK_CAUSES],
        clock[engine.CLOCK_HIST],
        clock[engine.CLOCK_LAT_MAX],
        clock[engine.CLOCK_HOL],
    )
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def workload_fingerprint(win: _Window, wl: Workload | WorkloadStream) -> str:
    """The fingerprint of the requests the run was fed (hashed as they entered the window):
    equal to :meth:`Workload.fingerprint` of the same requests held whole."""
    cap = wl.in_flight_cap
    return fingerprint_of([h.digest() for h in win.hashers], win.n, cap, wl.classes)


def summarize(run: ModelRun, wl: Workload | WorkloadStream) -> dict[str, Any]:
    """One tidy row of figures for one model run: every counter, per-request ratios, latency
    percentiles overall and per priority class, modeled throughput and time by cause."""
    n = run.requests
    row: dict[str, Any] = {"label": run.label, "model": run.model}
    for name, v in zip(COUNTERS, run.counters, strict=True):
        row[name] = int(v)
    per = 1.0 / n if n else 0.0
    row["kicks_per_req"] = row["kicks"] * per
    row["interrupts_per_req"] = row["interrupts"] * per
    row["vm_exits_per_req"] = row["vm_exits"] * per
    row["lines_per_req"] = (row["lines_driver"] + row["lines_device"]) * per
    row["invalidations_per_req"] = (
        row["lines_invalidated_driver"] + row["lines_invalidated_device"]
    ) * per
    row["desc_per_req"] = (row["desc_written"] + row["desc_read"]) * per
    row["ring_slots_per_req"] = row["ring_slots"] * per
    areas = run.areas if run.areas is not None else np.zeros((N_AREAS, 4), dtype=np.int64)
    for name, (miss_drv, miss_dev, inval_drv, inval_dev) in zip(AREAS, areas, strict=True):
        # where each design pays: misses and invalidations per request, area by area
        row[f"lines_per_req_{name}"] = int(miss_drv + miss_dev) * per
        row[f"invalidations_per_req_{name}"] = int(inval_drv + inval_dev) * per
        # and which side paid: the reader of a miss, the writer of an invalidation
        row[f"lines_driver_per_req_{name}"] = int(miss_drv) * per
        row[f"lines_device_per_req_{name}"] = int(miss_dev) * per
        row[f"invalidations_driver_per_req_{name}"] = int(inval_drv) * per
        row[f"invalidations_device_per_req_{name}"] = int(inval_dev) * per
    makespan = float(run.state[0]["last_done"] - run.state[0]["first_arrival"])
    row["makespan_ns"] = makespan
    row["requests_per_s"] = n / makespan * 1e9 if makespan > 0 else float("nan")
    row["gbit_per_s"] = row["bytes"] * 8 / makespan if makespan > 0 else float("nan")
    for name, t in zip(CAUSES, run.causes, strict=True):
        row[f"time_{name}_ns_per_req"] = float(t) * per
    row["time_total_ns_per_req"] = float(run.causes.sum()) * per
    total = run.hist.sum(axis=0)
    for (tag, _q), v in zip(
        PERCENTILES, percentiles(total, [q for _, q in PERCENTILES]), strict=True
    ):
        row[f"lat_{tag}_ns"] = float(v)
    row["lat_max_ns"] = float(run.lat_max.max()) if run.lat_max.size else float("nan")
    for c in range(wl.classes):
        qs = percentiles(run.hist[c], [q for _, q in PERCENTILES])
        for (tag, _), v in zip(PERCENTILES, qs, strict=True):
            row[f"c{c}_lat_{tag}_ns"] = float(v)
        row[f"c{c}_lat_max_ns"] = float(run.lat_max[c]) if run.hist[c].sum() else float("nan")
        cnt = int(run.hist[c].sum())
        row[f"c{c}_requests"] = cnt
        row[f"c{c}_requests_per_s"] = cnt / makespan * 1e9 if makespan > 0 else float("nan")
        row[f"c{c}_hol_ns_per_req"] = float(run.hol[c]) / cnt if cnt else float("nan")
    # the simulator's own speed on this machine: a timing metric, compared only on one machine
    row["sim_seconds"] = run.wall_s
    row["sim_requests_per_s"] = n / run.wall_s if run.wall_s > 0 else float("nan")
    row["event_digest"] = run.digest
    return row


def run_point(
    models: list[tuple[str, ModelDef, ModelOptions]],
    wl: Workload | WorkloadStream,
    eng: EngineSpec,
    preset: Preset,
    needs: Needs | None = None,
) -> list[dict[str, Any]]:
    """Every model over the same workload: one row each. A stream is drawn afresh for each
    model (the same requests: the rows carry the fingerprint that proves it)."""
    rows = []
    for lbl, md, op in models:
        if isinstance(wl, WorkloadStream):
            wl = WorkloadStream(wl.spec, wl.seed)
        run = run_model(lbl, md, op, wl, eng, preset, needs)
        row = summarize(run, wl)
        row["workload_fingerprint"] = run.workload_fingerprint
        row[HIST_KEY] = sparse_hist(run.hist)
        rows.append(row)
    return rows


HIST_KEY = "_hist"  # a row's latency histogram rides along under this key, not as a column


def sparse_hist(hist: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The non-empty buckets of each class: (class, bucket indexes, counts)."""
    out = []
    for c in range(hist.shape[0]):
        nz = np.flatnonzero(hist[c])
        out.append((c, nz.astype(np.int32), hist[c, nz].astype(np.int64)))
    return out
