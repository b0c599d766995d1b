"""Run models over one workload: build each instance, simulate, audit, summarise.

This is the library call behind ``vbench run`` (one sweep point) and behind the tests. Every
model of a point consumes the very same :class:`~vbench.workload.Workload` arrays, so the
comparison between models is paired.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vbench.costs import Preset
from vbench.counters import CAUSES, COUNTERS, N_COUNTERS
from vbench.errors import ConfigError, InvariantError
from vbench.histogram import percentiles
from vbench.memory import MAX_REQUEST_BYTES
from vbench.models.interface import Instance, ModelDef, ModelOptions, Needs
from vbench.workload import Workload

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99_9", 99.9),
)


class EngineSpec(BaseModel):
    """How the two sides behave around the ring, and what the work itself costs.

    ``service_ns`` and ``driver_ns`` are the workload's own costs, not the ring's: they are
    engineering estimates to be set per experiment (defaults: a small network packet).
    """

    model_config = ConfigDict(extra="forbid")
    batch: int = Field(16, ge=1, description="requests made available per kick decision")
    device: Literal["sleep", "poll"] = "sleep"
    driver: Literal["interrupt", "poll"] = "interrupt"
    service_ns: float = Field(200.0, ge=0, description="device work per request [E]")
    service_ns_per_byte: float = Field(0.05, ge=0, description="device work per byte [E]")
    driver_ns: float = Field(100.0, ge=0, description="guest work per request [E]")
    poll_ns: float = Field(50.0, gt=0, description="one empty poll of the ring [E]")
    device_in_user_space: bool = False


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
    out: np.ndarray
    instance: Instance
    wall_s: float = float("nan")  # wall time of the simulation itself (a timing metric)


def needs_of(wl: Workload) -> Needs:
    return Needs(max_segments=int(wl.max_segments), max_size=int(wl.max_size), classes=wl.classes)


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


def engine_params(eng: EngineSpec, wl: Workload) -> np.ndarray:
    from vbench import engine as E

    p = np.zeros(E.N_PARAMS, dtype=np.float64)
    p[E.P_BATCH] = eng.batch
    p[E.P_DEV_POLL] = eng.device == "poll"
    p[E.P_DRV_POLL] = eng.driver == "poll"
    p[E.P_SERVICE_NS] = eng.service_ns
    p[E.P_SERVICE_PER_BYTE] = eng.service_ns_per_byte
    p[E.P_DRIVER_NS] = eng.driver_ns
    p[E.P_POLL_NS] = eng.poll_ns
    p[E.P_USER_EXIT] = eng.device_in_user_space
    p[E.P_CAP] = wl.in_flight_cap
    return p


def run_model(
    label: str,
    mdef: ModelDef,
    opts: ModelOptions,
    wl: Workload,
    eng: EngineSpec,
    preset: Preset,
) -> ModelRun:
    """Simulate one model over the workload and check the end-of-run invariants."""
    from vbench import engine as E

    needs = needs_of(wl)
    check_model(mdef, opts, needs, eng.batch, label)
    inst = mdef.build(opts, needs)
    ctr, causes, hist, lat_max, hol, done, out = E.new_buffers(len(wl), wl.classes, inst.mem)
    t0 = time.perf_counter()
    E.simulate(
        inst.cfg,
        inst.mem,
        inst.drv,
        inst.dev,
        wl.arrival_ns,
        wl.size,
        wl.segments,
        wl.prio,
        wl.direction,
        engine_params(eng, wl),
        preset.vector(),
        ctr,
        causes,
        hist,
        lat_max,
        hol,
        done,
        out,
    )
    wall_s = time.perf_counter() - t0
    status = int(out[E.O_STATUS])
    if status != E.ST_OK:
        raise InvariantError(
            f"{label}: {E.STATUS_TEXT[status]} (detail {int(out[E.O_DETAIL])}, "
            f"{int(ctr[COUNTERS.index('requests')])} of {len(wl)} completed)"
        )
    problems = []
    if int(done.sum()) != len(wl) or not np.all(done == 1):
        problems.append(f"{int((done == 1).sum())} of {len(wl)} requests completed exactly once")
    problems += mdef.audit(inst)
    if problems:
        raise InvariantError(f"{label}: end-of-run invariants broken: " + "; ".join(problems))
    return ModelRun(
        label, mdef.name, ctr[:N_COUNTERS].copy(), causes, hist, lat_max, hol, out, inst, wall_s
    )


def summarize(run: ModelRun, wl: Workload) -> dict[str, Any]:
    """One tidy row of figures for one model run: every counter, per-request ratios, latency
    percentiles overall and per priority class, modeled throughput and time by cause."""
    from vbench import engine as E

    n = len(wl)
    row: dict[str, Any] = {"label": run.label, "model": run.model}
    for name, v in zip(COUNTERS, run.counters, strict=True):
        row[name] = int(v)
    per = 1.0 / n if n else 0.0
    row["kicks_per_req"] = row["kicks"] * per
    row["interrupts_per_req"] = row["interrupts"] * per
    row["vm_exits_per_req"] = row["vm_exits"] * per
    row["lines_per_req"] = (row["lines_driver"] + row["lines_device"]) * per
    row["desc_per_req"] = (row["desc_written"] + row["desc_read"]) * per
    makespan = float(run.out[E.O_LAST_DONE] - run.out[E.O_FIRST_ARRIVAL])
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
    return row


def run_point(
    models: list[tuple[str, ModelDef, ModelOptions]],
    wl: Workload,
    eng: EngineSpec,
    preset: Preset,
) -> list[dict[str, Any]]:
    """Every model over the same workload: one row each."""
    rows = []
    for lbl, md, op in models:
        run = run_model(lbl, md, op, wl, eng, preset)
        row = summarize(run, wl)
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
