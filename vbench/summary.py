"""What the summary of a run shows, as data: the config's headline metrics, one figure per
sweep point and model (repetitions of a native run aggregated to median, min, max and n),
the columns that are the same at every point (said once instead of shown), and the caption
saying what kind of load ran. :mod:`vbench.render` turns a :class:`Summary` into tables
that fit the terminal; ``vbench compare`` takes its default metrics from here too.

A config declares its headline metrics in ``[report] metrics = [...]``; without one they
follow the sweep: the measured figures for a native run, the priority figures (per-class p99
and head-of-line time) for a sweep of the priority mix, else latency, throughput and the
notification counts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: the headline of a simulated sweep, and of a native one (figures measured on this machine)
SIM_HEADLINE = ("lat_p99_ns", "requests_per_s", "kicks_per_req", "interrupts_per_req")
NATIVE_HEADLINE = (
    "measured_requests_per_s",
    "measured_lat_p99_ns",
    "measured_kicks_per_req",
    "measured_interrupts_per_req",
)
#: every figure the machine-readable summary (``vbench run --format csv``) carries
FULL_SIM = (
    "kicks_per_req",
    "interrupts_per_req",
    "vm_exits_per_req",
    "lines_per_req",
    "invalidations_per_req",
    "lat_p99_ns",
    "requests_per_s",
)
_SHORT = {
    "kicks_per_req": "kicks/req",
    "interrupts_per_req": "irqs/req",
    "vm_exits_per_req": "exits/req",
    "lines_per_req": "lines/req",
    "invalidations_per_req": "inval/req",
    "desc_per_req": "desc/req",
}


@dataclass(frozen=True)
class Stat:
    """One figure of one point and model: the median over its rows (repetitions or seeds),
    their min and max, and how many finite values there were."""

    median: float
    lo: float
    hi: float
    n: int

    @staticmethod
    def of(values: Iterable[Any]) -> Stat:
        v = sorted(float(x) for x in values if _finite(x))
        if not v:
            return Stat(math.nan, math.nan, math.nan, 0)
        mid = len(v) // 2
        med = v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2
        return Stat(med, v[0], v[-1], len(v))


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def sweeps_priority(swept: Sequence[str]) -> bool:
    """True when the sweep varies the priority mix (its classes or their shares)."""
    return any(k.startswith("workload.priority") for k in swept)


def priority_metrics(columns: Sequence[str]) -> list[str]:
    """The priority figures present: the top class's p99 and head-of-line time, then the
    bottom class's p99 (class numbers grow with urgency)."""
    found = (re.fullmatch(r"c(\d+)_lat_p99_ns", c) for c in columns)
    classes = sorted({int(m.group(1)) for m in found if m})
    if len(classes) < 2:
        return []
    top, low = classes[-1], classes[0]
    wanted = [f"c{top}_lat_p99_ns", f"c{top}_hol_ns_per_req", f"c{low}_lat_p99_ns"]
    return [c for c in wanted if c in columns]


def headline(raw: dict[str, Any], columns: Sequence[str], swept: Sequence[str]) -> list[str]:
    """The config's headline metrics: ``[report] metrics`` where declared (those present),
    else the default for the kind of sweep (see the module's docstring)."""
    declared = (raw.get("report") or {}).get("metrics") if isinstance(raw, dict) else None
    if declared:
        return [m for m in declared if m in columns]
    if not any(m in columns for m in SIM_HEADLINE) and any(m in columns for m in NATIVE_HEADLINE):
        return [m for m in NATIVE_HEADLINE if m in columns]
    out = [m for m in SIM_HEADLINE if m in columns]
    if sweeps_priority(swept):
        out = [*priority_metrics(columns), *[m for m in out if m != "lat_p99_ns"]]
    return out


def short_name(metric: str) -> str:
    """A column title: the unit a person reads (µs, M req/s) and few letters."""
    name = metric.removeprefix("measured_")
    mark = "measured " if metric.startswith("measured_") else ""
    if name in _SHORT:
        return mark + _SHORT[name]
    if name.endswith("requests_per_s"):
        cls = name.removesuffix("requests_per_s").rstrip("_")
        return mark + (f"{cls} Mreq/s" if cls else "Mreq/s")
    if name.endswith("_hol_ns_per_req"):
        return mark + f"{name.split('_')[0]} HoL µs/req"
    if name.endswith("_ns") and "_lat_" in f"_{name}":
        parts = name.removesuffix("_ns").split("_")
        cls = [p for p in parts if p.startswith("c") and p[1:].isdigit()]
        pct = "_".join(p for p in parts if p not in ("lat", *cls))
        return mark + " ".join([*cls, pct.replace("_", "."), "µs"])
    if name.endswith("_ns_per_req"):
        return mark + name.removesuffix("_ns_per_req") + " µs/req"
    return metric


def scale_of(metric: str) -> tuple[float, str]:
    """How a figure of ``metric`` is shown: its scale factor and format."""
    name = metric.removeprefix("measured_")
    if name.endswith("requests_per_s"):
        return 1e-6, "{:.2f}"
    if name.endswith("_ns") or name.endswith("_ns_per_req"):
        return 1e-3, "{:.1f}"
    if name.endswith("_per_req"):
        return 1.0, "{:.3g}"
    return 1.0, "{:.4g}"


def text(stat: Stat, metric: str) -> str:
    """A figure as a cell: the value, or ``median [min-max]`` over several repetitions of a
    native run; ``–`` where nothing was measured."""
    if stat.n == 0:
        return "–"
    scale, fmt = scale_of(metric)
    med = fmt.format(stat.median * scale)
    if stat.n == 1 or not metric.startswith("measured_"):
        return med
    return f"{med} [{fmt.format(stat.lo * scale)}-{fmt.format(stat.hi * scale)}]"


def param_text(v: Any) -> str:
    """A sweep parameter's value as a short cell (1.6e+06 rather than 1600000.0)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e5:
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


@dataclass
class Summary:
    """A run's summary: rows are sweep points, columns a (model label, metric) pair."""

    keys: list[str]  # the swept parameters that vary
    constant_keys: dict[str, str]  # swept parameters with one value
    labels: list[str]  # config order
    metrics: list[str]  # headline metrics
    points: list[int]
    params: dict[int, dict[str, str]]  # point -> key -> text
    cells: dict[tuple[int, str, str], str]  # (point, label, metric) -> text
    constant_cells: dict[tuple[str, str], str] = field(default_factory=dict)
    caption: str = ""

    def columns(self, labels: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """The (label, metric) columns that vary, model by model."""
        return [
            (lbl, m)
            for lbl in (labels or self.labels)
            for m in self.metrics
            if (lbl, m) not in self.constant_cells
        ]

    def notes(self) -> list[str]:
        """What the table leaves out because it is the same at every point, said once."""
        out = []
        if self.constant_keys:
            same = ", ".join(f"{short_key(k)}={v}" for k, v in self.constant_keys.items())
            out.append(f"every point: {same}")
        shown = {}
        for (lbl, m), v in self.constant_cells.items():
            shown.setdefault(lbl, []).append(f"{short_name(m)} {v}")
        for lbl, items in shown.items():
            out.append(f"{lbl} at every point: " + ", ".join(items))
        return out


def config_order(labels: Iterable[str], raw: dict[str, Any]) -> list[str]:
    """The labels in the config's order, then any others in the order met."""
    present = list(dict.fromkeys(str(x) for x in labels))
    models = raw.get("models") or [] if isinstance(raw, dict) else []
    order = [str(m.get("label", m.get("model"))) for m in models if isinstance(m, dict)]
    first = [lbl for lbl in order if lbl in present]
    return first + [lbl for lbl in present if lbl not in first]


def short_key(key: str) -> str:
    """A swept key's column title: its last part (``engine.batch`` -> ``batch``)."""
    return key.split(".")[-1]


def summarise(rows: list[dict[str, Any]], swept: Sequence[str], raw: dict[str, Any]) -> Summary:
    """The summary of a run's rows (one per point, model and repetition)."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    metrics = headline(raw, columns, swept)
    labels = config_order((r["label"] for r in rows), raw)
    points = sorted({int(r["point"]) for r in rows})
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    params: dict[int, dict[str, str]] = {}
    for r in rows:
        groups.setdefault((int(r["point"]), str(r["label"])), []).append(r)
        params.setdefault(int(r["point"]), {k: param_text(r.get(k, "")) for k in swept})
    cells = {
        (p, lbl, m): text(Stat.of(r.get(m) for r in grp), m)
        for (p, lbl), grp in groups.items()
        for m in metrics
    }
    keys, constant_keys = list(swept), {}
    constant_cells: dict[tuple[str, str], str] = {}
    if len(points) > 1:
        for k in swept:
            values = {params[p][k] for p in points}
            if len(values) == 1:
                constant_keys[k] = values.pop()
        keys = [k for k in swept if k not in constant_keys]
        for lbl in labels:
            for m in metrics:
                values = {cells.get((p, lbl, m), "–") for p in points}
                if len(values) == 1:
                    constant_cells[(lbl, m)] = values.pop()
    return Summary(
        keys,
        constant_keys,
        labels,
        metrics,
        points,
        params,
        cells,
        constant_cells,
        caption(raw, swept),
    )


def caption(raw: dict[str, Any], swept: Sequence[str] = ()) -> str:
    """What kind of load ran, so that a throughput column is read rightly: an open loop offers
    a fixed rate (the achieved throughput cannot exceed it), a closed loop saturates."""
    workload = raw.get("workload") or {}
    arrival = workload.get("arrival") or {}
    engine = raw.get("engine") or {}
    if engine.get("kind") == "native":
        reps = (engine.get("native") or {}).get("repetitions")
        over = f"{reps} repetitions" if reps else "the repetitions"
        return f"measured on this machine: median [min-max] over {over}"
    kind = arrival.get("kind", "closed")
    if kind == "closed":
        return (
            f"closed loop ({arrival.get('in_flight', 64)} in flight): Mreq/s is the throughput "
            "the models sustain"
        )
    rate = arrival.get("rate")
    if isinstance(rate, int | float) and kind == "onoff":
        on, off = arrival.get("on_us", 0.0), arrival.get("off_us", 0.0)
        rate = rate * on / (on + off) if on + off > 0 else rate
    offered = f"{rate / 1e6:.3g} M req/s" if isinstance(rate, int | float) else "its rate"
    if any(k.startswith("workload.arrival.") for k in swept):
        offered = "the swept rate"
    return (
        f"open loop ({kind}): the load is offered at {offered} on average; Mreq/s is the "
        "achieved throughput, which cannot exceed it"
    )


def frame(rows: list[dict[str, Any]], swept: Sequence[str], raw: dict[str, Any]) -> Any:
    """The machine-readable summary (``vbench run --format csv/tsv/...``): one row per point
    and model in config order, the swept parameters, then every summary and headline figure in
    its own unit (ns, req/s); repetitions give the median, with ``_min``, ``_max`` and ``n``."""
    import pandas as pd

    columns = list(dict.fromkeys(k for r in rows for k in r))
    metrics = list(dict.fromkeys([*headline(raw, columns, swept), *FULL_SIM]))
    metrics = [m for m in metrics if m in columns]
    labels = config_order((r["label"] for r in rows), raw)
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((int(r["point"]), str(r["label"])), []).append(r)
    out = []
    for (p, lbl), grp in sorted(groups.items(), key=lambda g: (g[0][0], labels.index(g[0][1]))):
        rec: dict[str, Any] = {"point": p, **{k: grp[0].get(k) for k in swept}}
        rec.update(label=lbl, model=grp[0].get("model"))
        for m in metrics:
            s = Stat.of(r.get(m) for r in grp)
            rec[m] = s.median
            if len(grp) > 1:
                rec[f"{m}_min"], rec[f"{m}_max"] = s.lo, s.hi
        if len(grp) > 1:
            rec["n"] = len(grp)
        out.append(rec)
    return pd.DataFrame(out)
