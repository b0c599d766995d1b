"""Every sentence of the report that states a result, computed from a result table.

Each function here is pure: a DataFrame (the tidy rows of ``vbench run``: one per point and
label) in, a :class:`Conclusion` out, so that a test can hand it a table and watch the
sentence follow the data (two models' ordering reversed, the sentence reversed). Nothing in
the report's results is written by hand; the prose around them (:mod:`vbench.report.prose`)
only explains mechanisms. Robustness (does the verdict survive every cost figure's range?)
is added afterwards from E5 by :mod:`vbench.report.robustness`, through the :class:`Claim`
each conclusion carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

#: What a metric is called in a sentence, whether lower is better, and how its values read.
METRIC_WORDS: dict[str, tuple[str, bool, str]] = {
    "lines_per_req": ("cache lines moved per request", True, "plain"),
    "desc_per_req": ("descriptors per request", True, "plain"),
    "kicks_per_req": ("kicks per request", True, "plain"),
    "interrupts_per_req": ("interrupts per request", True, "plain"),
    "notifications_per_req": ("notifications (kicks + interrupts) per request", True, "plain"),
    "vm_exits_per_req": ("VM exits per request", True, "plain"),
    "time_total_ns_per_req": ("modelled time per request", True, "ns"),
    "lat_p50_ns": ("median latency", True, "ns"),
    "lat_p99_ns": ("p99 latency", True, "ns"),
    "c1_lat_p99_ns": ("urgent-class p99 latency", True, "ns"),
    "c2_lat_p99_ns": ("most-urgent-class p99 latency", True, "ns"),
    "ring_full_stalls_per_req": ("ring-full stalls per request", True, "plain"),
    "ring_slots_per_req": ("ring entries per request", True, "plain"),
    "requests_per_s": ("throughput", False, "rate"),
    "measured_requests_per_s": ("measured throughput", False, "rate"),
    "max_sustainable_rate": ("maximum sustainable rate", False, "rate"),
}


@dataclass(frozen=True)
class Claim:
    """What a conclusion compares, so E5 can say whether it survives the cost ranges: the two
    labels, the metric, the sweep point (parameter values) it was read at, and the two values
    it read (E5's base case must reproduce them: the same simulation, not a similar one)."""

    first: str
    second: str
    metric: str
    where: tuple[tuple[str, Any], ...] = ()
    values: tuple[float, float] = ()  # first's and second's values, as the sentence read them


@dataclass(frozen=True)
class Conclusion:
    """One generated result sentence: its number, the experiment and figure it rests on."""

    key: str
    experiment: str
    figure: str  # the figure's key; the renderer turns it into "fig. N" and an anchor
    text: str
    value: float
    claim: Claim | None = None
    robustness: str = ""  # filled from E5 by the build unless the section gives its own
    extra: dict[str, Any] = field(default_factory=dict)

    def with_robustness(self, words: str) -> Conclusion:
        return replace(self, robustness=words)


def format_value(value: float, metric: str) -> str:
    """A value in the unit a reader expects: µs for latencies and times, M req/s for rates."""
    style = METRIC_WORDS.get(metric, ("", True, "plain"))[2]
    if not math.isfinite(value):
        return "n/a"
    if style == "ns":
        if value >= 1e6:
            return f"{value / 1e6:.3g} ms"
        return f"{value / 1000:.3g} µs" if value >= 1000 else f"{value:.3g} ns"
    if style == "rate":
        return f"{value / 1e6:.3g} M req/s"
    return f"{value:.3g}"


def sentence_start(text: str) -> str:
    """``text`` with its first letter capitalised and the rest untouched ("M req/s" stays)."""
    return text[:1].upper() + text[1:]


def where_words(where: dict[str, Any]) -> str:
    """'at batch 64, segments 1' from the sweep parameters a claim was read at."""
    names = {
        "engine.batch": "batch",
        "workload.segments": "segments",
        "workload.arrival.rate": "offered rate",
        "workload.arrival.in_flight": "in flight",
        "engine.device": "device",
        "workload.priority.shares": "shares",
    }
    parts = []
    for key, value in where.items():
        shown = f"{value / 1e6:g} M req/s" if key.endswith("arrival.rate") else value
        parts.append(f"{names.get(key, key)} {shown}")
    return "at " + ", ".join(parts) if parts else "over the whole sweep"


def select(table: pd.DataFrame, where: dict[str, Any]) -> pd.DataFrame:
    """The rows of one sweep point (values compared as text: lists are stored as strings)."""
    rows = table
    for key, value in where.items():
        rows = rows[rows[key].astype(str) == str(value)]
    return rows


def value_of(table: pd.DataFrame, label: str, metric: str) -> float:
    """The median over the rows of ``label`` (one row in a simulation, one per repetition in a
    native run)."""
    values = table.loc[table["label"].astype(str) == label, metric]
    return float(values.median()) if len(values) else math.nan


def compare(
    table: pd.DataFrame,
    metric: str,
    first: str,
    second: str,
    where: dict[str, Any],
    *,
    key: str,
    experiment: str,
    figure: str,
) -> Conclusion:
    """Which of two labels does better on ``metric`` at one point, by how much: the sentence
    names the better one first, so reversing the data reverses the sentence."""
    noun, lower_better, _ = METRIC_WORDS.get(metric, (metric, True, "plain"))
    rows = select(table, where)
    a, b = value_of(rows, first, metric), value_of(rows, second, metric)
    a_better = a < b if lower_better else a > b
    best, worst = (first, second) if a_better else (second, first)
    best_value, worst_value = (a, b) if a_better else (b, a)
    ratio = worst_value / best_value if best_value else math.inf
    side = "lower" if lower_better else "higher"
    if best_value == 0 and worst_value != 0:
        text = (
            f"{sentence_start(where_words(where))}, {best} has the {side} {noun}: none, against "
            f"{format_value(worst_value, metric)} for {worst}"
        )
    elif math.isclose(a, b, rel_tol=0.02):
        text = (
            f"{sentence_start(where_words(where))}, {first} and {second} are level on {noun}: "
            f"{format_value(a, metric)} against {format_value(b, metric)} (ratio {a / b:.2f}x)"
        )
    else:
        text = (
            f"{sentence_start(where_words(where))}, {best} has the {side} {noun}: "
            f"{format_value(best_value, metric)} against {format_value(worst_value, metric)} "
            f"for {worst}, whose figure is {ratio:.2f}x {best}'s"
        )
    claim = Claim(first, second, metric, tuple(where.items()), (a, b))
    return Conclusion(key, experiment, figure, text, ratio, claim, extra={"best": best})


def largest_point(table: pd.DataFrame, prefer: dict[str, str]) -> dict[str, Any]:
    """The sweep point a headline is read at: for each parameter, its largest (``max``) or
    smallest (``min``) value present in the table."""
    where: dict[str, Any] = {}
    for key, pick in prefer.items():
        if key in table.columns:
            values = sorted(table[key].unique())
            where[key] = values[-1] if pick == "max" else values[0]
    return where


#: The counts a notification total is made of (per request): the columns with_notifications
#: reads, and E2's robustness's own figures.
NOTIFICATION_COUNTS = ["kicks_per_req", "interrupts_per_req"]
#: What a ring-full stall rate is made of: the columns with_stalls reads.
STALL_INPUTS = ["ring_full_stalls", "requests"]


def with_notifications(table: pd.DataFrame) -> pd.DataFrame:
    """The table with ``notifications_per_req``: kicks plus interrupts per request."""
    out = table.copy()
    kicks, interrupts = NOTIFICATION_COUNTS
    out["notifications_per_req"] = out[kicks] + out[interrupts]  # NaN stays NaN (not sum())
    return out


def with_stalls(table: pd.DataFrame) -> pd.DataFrame:
    """The table with ``ring_full_stalls_per_req``: the times the driver found the ring full,
    per completed request."""
    out = table.copy()
    stalls, requests = STALL_INPUTS
    out["ring_full_stalls_per_req"] = out[stalls] / out[requests]
    return out


def with_derived(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every derived column whose inputs it has (``notifications_per_req``,
    ``ring_full_stalls_per_req``): what E5's cases tables need to answer any conclusion."""
    if set(NOTIFICATION_COUNTS) <= set(table.columns):
        table = with_notifications(table)
    if set(STALL_INPUTS) <= set(table.columns):
        table = with_stalls(table)
    return table


def suppression_wins(
    table: pd.DataFrame, virtio: list[str], vbus: list[str], params: list[str], figure: str
) -> Conclusion:
    """E2: per point, each design at its best variant (fewest kicks + interrupts per request);
    at how many points each design needs fewer, and where vbus's wins lie."""
    data = with_notifications(table)
    present = [p for p in params if p in data.columns]
    wins: list[dict[str, Any]] = []
    total = 0
    for point, rows in data.groupby("point"):
        best_virtio = rows[rows["label"].isin(virtio)]["notifications_per_req"].min()
        best_vbus = rows[rows["label"].isin(vbus)]["notifications_per_req"].min()
        total += 1
        if best_vbus < best_virtio * 0.98:
            wins.append({p: rows[p].iloc[0] for p in present} | {"point": point})
    where_text = _common_ground(wins, present)
    text = (
        f"Each design at its best suppression per point, vbus needs fewer notifications "
        f"(kicks + interrupts) per request than virtio at {len(wins)} of {total} points"
        f"{where_text}; virtio needs fewer or as many at the other {total - len(wins)}"
    )
    return Conclusion("e2-wins", "E2", figure, text, float(len(wins)), None)


def _common_ground(points: list[dict[str, Any]], params: list[str]) -> str:
    """', all with engine.device poll' when every winning point shares a parameter value."""
    if not points:
        return ""
    shared = [f"{p} = {points[0][p]}" for p in params if len({str(x[p]) for x in points}) == 1]
    return f" (all with {', '.join(shared)})" if shared else ""


def max_sustainable(table: pd.DataFrame, bound_ns: float, carried: float = 0.97) -> pd.Series:
    """E4: per label, the highest offered rate whose p99 stays under ``bound_ns`` and whose
    achieved rate is at least ``carried`` of the offer (NaN: no rate qualifies)."""
    rate = "workload.arrival.rate"
    ok = table[
        (table["lat_p99_ns"] <= bound_ns) & (table["requests_per_s"] >= carried * table[rate])
    ]
    found = ok.groupby("label")[rate].max()
    labels = list(dict.fromkeys(table["label"]))
    return found.reindex(labels)


def capacity(
    table: pd.DataFrame, first: str, second: str, bound_ns: float, figure: str
) -> Conclusion:
    """E4's headline: the two labels' maximum sustainable rates, the better named first."""
    rates = max_sustainable(table, bound_ns)
    frame = pd.DataFrame(
        {"label": rates.index, "max_sustainable_rate": rates.to_numpy(dtype=float)}
    ).fillna(0.0)
    out = compare(
        frame,
        "max_sustainable_rate",
        first,
        second,
        {},
        key="e4-capacity",
        experiment="E4",
        figure=figure,
    )
    text = f"With p99 under {bound_ns / 1000:g} µs, " + out.text[0].lower() + out.text[1:]
    text = text.replace("over the whole sweep, ", "")
    return replace(out, text=text)


def step_effects(table: pd.DataFrame, label: str, metric: str, steps: list[str]) -> pd.Series:
    """E7: ``label``'s metric at each step of the history sweep, in sweep order."""
    rows = table[table["label"] == label].sort_values("point")
    return pd.Series(rows[metric].to_numpy(dtype=float), index=steps[: len(rows)])


def in_kernel(table: pd.DataFrame, label: str) -> pd.DataFrame:
    """``label``'s rows at the steps whose device runs in the host kernel (vbus always did)."""
    rows = table[table["label"] == label]
    column = "engine.device_in_user_space"
    if column in rows.columns:
        rows = rows[~rows[column].astype(str).str.lower().eq("true")]
    return rows


def history(
    table: pd.DataFrame, virtio: str, vbus: str, metric: str, steps: list[str], figure: str
) -> Conclusion:
    """E7: virtio against vbus in the 2009 setting and after every later step, and which step
    closed the most of the gap (vbus read at the in-kernel steps: it never ran in QEMU)."""
    noun = METRIC_WORDS.get(metric, (metric, True, "plain"))[0]
    series = step_effects(table, virtio, metric, steps)
    vbus_value = float(in_kernel(table, vbus)[metric].median())
    first, last = series.iloc[0] / vbus_value, series.iloc[-1] / vbus_value
    moves = series.diff().iloc[1:]
    biggest = moves.abs().idxmax()
    before = series.iloc[list(series.index).index(biggest) - 1]
    text = (
        f"In the 2009 setting virtio's {noun} was {first:.2f}x vbus-ioq's "
        f"({format_value(series.iloc[0], metric)} against {format_value(vbus_value, metric)}); "
        f"after every step it is {last:.2f}x; the step that moved it most was "
        f"'{biggest}' ({format_value(before, metric)} to {format_value(series[biggest], metric)})"
    )
    extra = {"first": first, "biggest": biggest}
    return Conclusion("e7-history", "E7", figure, text, last, None, extra=extra)


def native_check(
    table: pd.DataFrame, first: str, second: str, mode: dict[str, Any], figure: str
) -> Conclusion:
    """E6: does the native engine order two models as the simulation does, at one mode?"""
    rows = select(table, mode)
    sim = rows[rows["engine"] == "sim"]
    nat = rows[rows["engine"] == "native"]
    sim_ratio = value_of(sim, first, "requests_per_s") / value_of(sim, second, "requests_per_s")
    nat_ratio = value_of(nat, first, "measured_requests_per_s") / value_of(
        nat, second, "measured_requests_per_s"
    )
    agree = (sim_ratio > 1) == (nat_ratio > 1)
    text = (
        f"{where_words(mode).capitalize()}, {first}'s throughput is {nat_ratio:.2f}x "
        f"{second}'s measured natively on this machine and {sim_ratio:.2f}x in the simulation: "
        f"the two engines {'agree' if agree else 'disagree'} on which is faster"
    )
    return Conclusion(f"e6-{first}-{second}", "E6", figure, text, nat_ratio, None)


def native_spread(table: pd.DataFrame, first: str, second: str, mode: dict[str, Any]) -> str:
    """E6's robustness: a measurement's is its spread over repetitions (the cost figures do not
    enter a native run), read from the per-repetition rows (``rep``) of both labels."""
    rows = select(table, mode)
    nat = rows[rows["engine"] == "native"]
    column = "measured_requests_per_s"
    if nat.empty or "rep" not in nat.columns:
        return "a measurement: no native rows to give its spread"
    wide = nat.pivot_table(index="rep", columns="label", values=column, aggfunc="median")
    if first not in wide.columns or second not in wide.columns:
        return "a measurement: no native rows to give its spread"
    ratios = (wide[first] / wide[second]).dropna()
    if len(ratios) < 2:
        return (
            f"a measurement (not a cost verdict: no cost figure enters a native run) from "
            f"{len(ratios)} repetition, so its spread is not known"
        )
    same = int(
        ((ratios > 1) == (value_of(nat, first, column) > value_of(nat, second, column))).sum()
    )
    return (
        f"a measurement (not a cost verdict: no cost figure enters a native run): over "
        f"{len(ratios)} repetitions the native ratio ranged {ratios.min():.2f}x to "
        f"{ratios.max():.2f}x, the same order in {same} of {len(ratios)}"
    )


#: A failed run's message, and what it means for E8: a native stall with both sides asleep
#: and requests outstanding, or the simulation's lost-wakeup status, is a lost wakeup.
def run_outcome(message: str | float | None) -> str:
    """'completed', 'lost wakeup' or 'other failure' for one run of E8, from its failure
    message (None or NaN, as a table holds it: the run completed)."""
    if not isinstance(message, str):
        return "completed"
    if "lost wakeup" in message:
        return "lost wakeup"
    asleep = "driver asleep" in message and "device asleep" in message
    if "stalled" in message and asleep:
        return "lost wakeup"
    return "other failure"


def _runs_words(rows: pd.DataFrame, models: list[str]) -> str:
    """'3 of 8 vbus-prio runs and 0 of 8 vbus-ioq runs' (one model: '3 of 8 runs')."""
    parts = []
    for model in models:
        mine = rows[rows["model"] == model]
        lost = int((mine["outcome"] == "lost wakeup").sum())
        parts.append(f"{lost} of {len(mine)} {model} runs")
    return " and ".join(parts)


#: E8's robustness: its result is a count of runs, which no cost figure enters.
LOST_WAKEUP_ROBUSTNESS = (
    "not a cost verdict (no cost figure decides whether a run loses a wakeup: natively it is "
    "the order in which this machine's CPUs make stores visible, and the simulation's steps are "
    "atomic); how often it happens natively varies with the machine and its load"
)


#: What a lost wakeup looks like when a run ends in one.
LOST_WAKEUP_WORDS = "requests outstanding, both sides asleep"


def lost_wakeups(trials: pd.DataFrame, figure: str) -> Conclusion:
    """E8: how many runs of vbus end in a lost wakeup with the shipped ``wmb`` and with the
    full barrier, natively and in the simulation. ``trials`` has one row per run: ``engine``
    (sim / native), ``model``, ``barrier`` (wmb / mb) and ``outcome`` (:func:`run_outcome`)."""
    models = list(dict.fromkeys(trials["model"]))
    clauses: list[str] = []
    for engine, where in (("native", "natively on this machine"), ("sim", "in the simulation")):
        rows = trials[trials["engine"] == engine]
        if rows.empty:
            continue
        ended = "did" if clauses else f"ended in a lost wakeup ({LOST_WAKEUP_WORDS})"
        if not (rows["outcome"] == "lost wakeup").any():
            clauses.append(f"{where}, none of {len(rows)} runs {ended}, with either barrier")
            continue
        shipped, full = rows[rows["barrier"] == "wmb"], rows[rows["barrier"] == "mb"]
        lost_full = int((full["outcome"] == "lost wakeup").sum())
        clauses.append(
            f"{where}, with the shipped wmb {_runs_words(shipped, models)} {ended}, "
            f"with the full barrier {lost_full} of {len(full)}"
        )
    others = int((trials["outcome"] == "other failure").sum())
    text = sentence_start("; ".join(clauses)) if clauses else "No run of E8 was made"
    if clauses and others:
        text += f" ({others} runs failed otherwise)"
    native_wmb = trials[(trials["engine"] == "native") & (trials["barrier"] == "wmb")]
    value = float((native_wmb["outcome"] == "lost wakeup").sum())
    if native_wmb.empty:
        sim_wmb = trials[(trials["engine"] == "sim") & (trials["barrier"] == "wmb")]
        value = float((sim_wmb["outcome"] == "lost wakeup").sum())
    return Conclusion("e8-lost-wakeups", "E8", figure, text, value, None)
