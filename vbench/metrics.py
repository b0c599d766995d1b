"""What every result column is: its kind, which direction is better, its unit. Defined once.

Comparisons (``vbench compare``, ``vbench check``) and plots read these facts from here (and a
result folder records them in its ``meta.json``), so a column is never compared by the wrong
rule:

- **exact**: counts from the simulation (kicks, interrupts, lines, descriptors...) and ratios of
  counts. They do not depend on the machine, so they are compared by equality.
- **modeled**: times derived from counts through a cost preset (latency percentiles,
  throughput, time by cause). Deterministic for a seed; across seeds they vary like samples.
- **timing**: wall-clock measurements on this machine (the simulator's own speed). Compared only
  between results from the same machine fingerprint, with a significance test and a noise floor.
- **param** / **id**: what a row *is* (sweep parameters, point, label, model, seed): the keys
  rows are matched on, never compared as metrics.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Literal

from vbench.counters import AREAS, CAUSES, COUNTERS

Kind = Literal["exact", "modeled", "timing", "param", "id"]
Better = Literal["lower", "higher", "none"]

# what a row *is*: never compared as metrics (``event_digest`` is checked by ``run --verify``;
# ``rep`` numbers the repetitions of a native run)
ID_COLUMNS: tuple[str, ...] = (
    "point",
    "label",
    "model",
    "seed",
    "workload_fingerprint",
    "event_digest",
    "engine",
    "rep",
)
METRIC_KINDS: tuple[str, ...] = ("exact", "modeled", "timing")


@dataclass(frozen=True)
class Metric:
    """One column's meaning: how to compare it and how to label an axis with it."""

    kind: Kind
    better: Better
    unit: str
    what: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# counters whose growth is neither good nor bad: they describe the workload or a decision count
_NEUTRAL_COUNTERS = {
    "requests": "completed requests",
    "bytes": "payload bytes moved by the device",
    "segments": "scatter/gather elements the device walked",
    "kicks_suppressed": "kick decisions that sent nothing",
    "interrupts_suppressed": "interrupt decisions that sent nothing",
    "signal_injects": "vbus shm_signal_inject calls",
    "wmb": "write barriers (compiler barriers on x86)",
    "rmb": "read barriers (compiler barriers on x86)",
}

_PER_REQ = {
    "kicks_per_req": "kicks per request",
    "interrupts_per_req": "interrupts per request",
    "vm_exits_per_req": "VM exits per request",
    "lines_per_req": "shared cache-line misses per request (the data came from the other cache)",
    "invalidations_per_req": "writes per request that invalidated the other side's copy",
    "desc_per_req": "descriptors written and read per request",
    "ring_slots_per_req": "ring entries a request occupied while in flight (of queue_size)",
}

_PER_AREA = {
    "lines_per_req_": "shared cache-line misses per request",
    "invalidations_per_req_": "invalidating writes per request",
    "lines_driver_per_req_": "misses per request taken by the driver",
    "lines_device_per_req_": "misses per request taken by the device",
    "invalidations_driver_per_req_": "invalidating writes per request by the driver",
    "invalidations_device_per_req_": "invalidating writes per request by the device",
}

_PCT = {"p50": "median", "p90": "90th percentile", "p99": "99th percentile"}
_PCT["p99_9"] = "99.9th percentile"
_PCT["max"] = "maximum"


def _latency(tag: str, who: str) -> Metric:
    return Metric("modeled", "lower", "ns", f"{_PCT[tag]} latency{who}")


def describe(column: str) -> Metric | None:
    """The meaning of a result column, or None for a column vbench does not know (a sweep
    parameter: the caller treats it as ``param``)."""
    if column in ID_COLUMNS:
        return Metric("id", "none", "", "row identity")
    if column in COUNTERS:
        if column in _NEUTRAL_COUNTERS:
            return Metric("exact", "none", "count", _NEUTRAL_COUNTERS[column])
        return Metric("exact", "lower", "count", column.replace("_", " "))
    if column in _PER_REQ:
        return Metric("exact", "lower", "per request", _PER_REQ[column])
    for prefix, what in _PER_AREA.items():
        if column.startswith(prefix) and column[len(prefix) :] in AREAS:
            return Metric("exact", "lower", "per request", f"{what} in {column[len(prefix) :]}")
    if column == "makespan_ns":
        return Metric("modeled", "lower", "ns", "first arrival to last completion")
    if column == "requests_per_s":
        return Metric("modeled", "higher", "req/s", "modeled throughput")
    if column == "gbit_per_s":
        return Metric("modeled", "higher", "Gbit/s", "modeled payload throughput")
    if column == "time_total_ns_per_req":
        return Metric("modeled", "lower", "ns/request", "modeled time per request, all causes")
    m = re.fullmatch(r"time_(\w+)_ns_per_req", column)
    if m and m.group(1) in CAUSES:
        return Metric("modeled", "lower", "ns/request", f"modeled time per request: {m.group(1)}")
    m = re.fullmatch(r"lat_(p50|p90|p99|p99_9|max)_ns", column)
    if m:
        return _latency(m.group(1), "")
    m = re.fullmatch(r"c(\d+)_lat_(p50|p90|p99|p99_9|max)_ns", column)
    if m:
        return _latency(m.group(2), f" of class {m.group(1)}")
    m = re.fullmatch(r"c(\d+)_requests", column)
    if m:
        return Metric("exact", "none", "count", f"requests of class {m.group(1)}")
    m = re.fullmatch(r"c(\d+)_requests_per_s", column)
    if m:
        return Metric("modeled", "higher", "req/s", f"modeled throughput of class {m.group(1)}")
    m = re.fullmatch(r"c(\d+)_hol_ns_per_req", column)
    if m:
        return Metric(
            "modeled", "lower", "ns/request", f"head-of-line blocking of class {m.group(1)}"
        )
    if column == "sim_seconds":
        return Metric("timing", "lower", "s", "wall time of the simulation on this machine")
    if column == "sim_requests_per_s":
        return Metric("timing", "higher", "req/s", "simulated requests per wall second")
    if column.startswith("measured_"):
        return _measured(column.removeprefix("measured_"))
    if column in _LINE_PROBES:  # vbench.native.runner: which mode of the machine a rep ran in
        return Metric("timing", "none", "ns", _LINE_PROBES[column])
    return None


_LINE_PROBES = {
    f"line_probe_{when}_ns": f"one-way cache-line transfer probed {when} the run (native run)"
    for when in ("before", "after")
}


# native runs (engine.kind = "native") measure on this machine: every figure is a timing
# column of its own, never sharing a column with the simulation's modeled or exact figures
_MEASURED: dict[str, tuple[Better, str, str]] = {
    "requests_per_s": ("higher", "req/s", "measured throughput"),
    "seconds": ("lower", "s", "wall time of the run, first add to last completion"),
    "requests": ("none", "count", "requests completed"),
    "kicks": ("lower", "count", "kicks sent (eventfd writes)"),
    "kicks_received": ("none", "count", "kicks the device read (sum of eventfd counts)"),
    "kicks_suppressed": ("none", "count", "kick decisions that sent nothing"),
    "interrupts": ("lower", "count", "interrupts (calls) sent"),
    "interrupts_received": ("none", "count", "calls the driver read (sum of eventfd counts)"),
    "interrupts_delivered": ("lower", "count", "driver wake-ups on a call (handler runs)"),
    "spurious_device": ("lower", "count", "device wake-ups that found no work"),
    "spurious_driver": ("lower", "count", "driver handler runs that reaped nothing"),
    "device_wakeups": ("lower", "count", "device wake-ups (kick or re-check)"),
    "ring_full": ("lower", "count", "adds refused for lack of room"),
    "kicks_per_req": ("lower", "per request", "measured kicks per request"),
    "interrupts_per_req": ("lower", "per request", "measured interrupts per request"),
}


def _measured(name: str) -> Metric | None:
    if name in _MEASURED:
        better, unit, what = _MEASURED[name]
        return Metric("timing", better, unit, f"{what} (native run)")
    m = re.fullmatch(r"lat_(p50|p90|p99|p99_9|max)_ns", name)
    if m:
        return Metric("timing", "lower", "ns", f"measured {_PCT[m.group(1)]} latency (native run)")
    return None


def metric_names(classes: int = 1, simulated: bool = True, native: bool = False) -> list[str]:
    """Every metric column a run produces: a simulated run's (per-class figures for classes
    ``0 .. classes-1``) and a native run's ``measured_*``; what ``[report] metrics`` may name."""
    out: list[str] = []
    if simulated:
        out += [*COUNTERS, *_PER_REQ]
        out += [f"{prefix}{area}" for prefix in _PER_AREA for area in AREAS]
        out += ["makespan_ns", "requests_per_s", "gbit_per_s", "time_total_ns_per_req"]
        out += [f"time_{cause}_ns_per_req" for cause in CAUSES]
        out += [f"lat_{tag}_ns" for tag in _PCT]
        for c in range(classes):
            out += [f"c{c}_lat_{tag}_ns" for tag in _PCT]
            out += [f"c{c}_requests", f"c{c}_requests_per_s", f"c{c}_hol_ns_per_req"]
        out += ["sim_seconds", "sim_requests_per_s"]
    if native:
        out += [f"measured_{name}" for name in _MEASURED]
        out += [f"measured_lat_{tag}_ns" for tag in _PCT]
    return list(dict.fromkeys(out))


def kind_of(column: str) -> Kind:
    d = describe(column)
    return d.kind if d is not None else "param"


def columns_meta(columns: list[str]) -> dict[str, dict[str, str]]:
    """The per-column facts a result folder records in ``meta.json``."""
    out = {}
    for c in columns:
        d = describe(c) or Metric("param", "none", "", "sweep parameter")
        out[c] = d.as_dict()
    return out


def label(column: str) -> str:
    """An axis label with its unit, e.g. ``lat_p99_ns [ns]``."""
    d = describe(column)
    return f"{column} [{d.unit}]" if d is not None and d.unit else column
