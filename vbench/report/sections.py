"""The report's sections: each takes its experiment's results, draws its figures and computes
its conclusions (:mod:`vbench.report.conclusions`), and says plainly what did not run.

A section is data (:class:`Section`); :mod:`vbench.report.render` turns it into HTML and
Markdown. The choice of which labels and which point a headline compares lives here, beside
the configs it reads; the sentences themselves are the pure functions' work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vbench.report import conclusions as C
from vbench.report import figures as F
from vbench.report import prose

#: E4's latency bound for the maximum sustainable rate.
P99_BOUND_NS = 50_000.0
#: E2's suppression: the two designs' variants, the sweep's axes, and the counts it rests on.
E2_VIRTIO = ["virtio-split-eventidx", "virtio-split-flags"]
E2_VBUS = ["vbus-ioq-tx1", "vbus-ioq-tx10", "vbus-ioq-tx64"]
E2_PARAMS = ["engine.batch", "workload.arrival.in_flight", "engine.device"]
COUNTS = C.NOTIFICATION_COUNTS  # E2's figures: kicks and interrupts per request


@dataclass
class Section:
    """One part of the report: title, explanatory prose, figures, generated conclusions,
    tables (caption, DataFrame) and notes (what is missing and why)."""

    key: str
    title: str
    prose: list[str] = field(default_factory=list)
    figures: list[F.Figure] = field(default_factory=list)
    conclusions: list[C.Conclusion] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def comparisons(
    table: pd.DataFrame,
    pairs: list[tuple[str, str, str]],
    where: dict[str, Any],
    experiment: str,
    figure: str,
    prefix: str,
) -> list[C.Conclusion]:
    """One :func:`~vbench.report.conclusions.compare` per (metric, first, second) at one point;
    keys ``<prefix>-<metric>-<first>-<second>``."""
    return [
        C.compare(
            table,
            metric,
            first,
            second,
            where,
            key=f"{prefix}-{metric}-{first}-{second}",
            experiment=experiment,
            figure=figure,
        )
        for metric, first, second in pairs
    ]


def _missing(key: str, title: str, why: str, text: list[str] | None = None) -> Section:
    return Section(key, title, text or [], notes=[f"Not run: {why}."])


def layouts(folder: Path) -> Section:
    """Q1's category difference, with both layouts side by side (vbench layout)."""
    from vbench.commands import model_layout

    maps = {m: model_layout(m, 256, 4) for m in ("virtio-split", "virtio-packed", "vbus-ioq")}
    section = Section("q1-category", "The category difference", list(prose.Q1_CATEGORY))
    section.figures.append(F.layouts(maps, folder))
    for model, layout in maps.items():
        rows = [
            {
                "area": a["name"],
                "offset": a["offset"],
                "bytes": a["size"],
                "writer": a["writer"],
                "what": a["what"],
            }
            for a in layout["areas"]
        ]
        section.tables.append(
            (f"{model}: shared memory (queue 256, 4 segments)", pd.DataFrame(rows))
        )
    return section


def anatomy(results: Any, folder: Path) -> Section:
    """E1: the stacked anatomy at the largest batch, and the headline line ratio."""
    table = results.table
    where = C.largest_point(table, {"engine.batch": "max", "workload.segments": "min"})
    section = Section("e1", "E1 per-request anatomy", [prose.E1_PROSE])
    figure = F.anatomy(table, where, folder)
    section.figures.append(figure)
    metrics = ("lines_per_req", "time_total_ns_per_req", "interrupts_per_req")
    pairs = [(m, "vbus-ioq", "virtio-split") for m in metrics]
    section.conclusions += comparisons(table, pairs, where, "E1", figure.key, "e1")
    small = C.largest_point(table, {"engine.batch": "min", "workload.segments": "min"})
    section.conclusions += comparisons(table, pairs[:1], small, "E1", figure.key, "e1-small")
    return section


def notifications(results: Any, folder: Path) -> Section:
    """E2: where each design's suppression wins."""
    table = results.table
    section = Section("e2", "E2 notifications", [prose.E2_PROSE])
    figure = F.notifications(table, folder)
    section.figures.append(figure)
    section.conclusions.append(C.suppression_wins(table, E2_VIRTIO, E2_VBUS, E2_PARAMS, figure.key))
    where = C.largest_point(table, {"engine.batch": "max", "workload.arrival.in_flight": "max"})
    where["engine.device"] = "sleep"
    data = C.with_notifications(table)
    section.conclusions.append(
        C.compare(
            data,
            "notifications_per_req",
            "vbus-ioq-tx64",
            "virtio-split-eventidx",
            where,
            key="e2-deep",
            experiment="E2",
            figure=figure.key,
        )
    )
    return section


def e2_wins_count(table: pd.DataFrame) -> tuple[int, int]:
    """E2's count for one table (one case of E5): (points where vbus wins, points)."""
    wins = C.suppression_wins(table, E2_VIRTIO, E2_VBUS, E2_PARAMS, "")
    return int(wins.value), int(table["point"].nunique())


def scatter_gather(results: Any, folder: Path) -> Section:
    """E3: chains, indirect, pool, flat at the most segments."""
    table = C.with_stalls(results.table)
    section = Section("e3", "E3 scatter/gather", [prose.E3_PROSE])
    figure = F.scatter_gather(table, folder)
    section.figures.append(figure)
    where = C.largest_point(table, {"workload.segments": "max"})
    pairs = [
        ("lines_per_req", "vbus-pool", "split-indirect"),
        ("time_total_ns_per_req", "vbus-pool", "split-indirect"),
        ("ring_slots_per_req", "split-chain", "split-indirect"),
        ("ring_slots_per_req", "packed-chain", "vbus-pool"),
        ("ring_full_stalls_per_req", "split-chain", "split-indirect"),
        ("time_total_ns_per_req", "vbus-flat", "vbus-pool"),
    ]
    section.conclusions += comparisons(table, pairs, where, "E3", figure.key, "e3")
    return section


def capacity(results: Any, folder: Path) -> Section:
    """E4: maximum sustainable rates."""
    table = results.table
    section = Section("e4", "E4 capacity", [prose.E4_PROSE])
    figure = F.capacity(table, P99_BOUND_NS, folder)
    section.figures.append(figure)
    section.conclusions.append(
        C.capacity(table, "vbus-ioq", "virtio-split", P99_BOUND_NS, figure.key)
    )
    rates = C.max_sustainable(table, P99_BOUND_NS)
    section.tables.append(
        (
            f"maximum sustainable rate (p99 ≤ {P99_BOUND_NS / 1000:g} µs), M req/s",
            pd.DataFrame({"model": rates.index, "M req/s": (rates / 1e6).round(3).to_numpy()}),
        )
    )
    return section


def robustness(cases: list[pd.DataFrame], folder: Path) -> Section:
    """E5: the tornado of the time-per-request comparison, and what the cases cover."""
    from vbench import sensitivity

    section = Section("e5", "E5 robustness", [prose.E5_PROSE])
    if not cases:
        section.notes.append("Not run: no sensitivity cases.")
        return section
    findings = [
        f
        for f in sensitivity.assess(cases[0])
        if {f.first, f.second} == {"virtio-split", "vbus-ioq"}
    ]
    for finding in findings:
        stem = folder / f"e5-tornado-{finding.metric}"
        path = sensitivity.tornado(finding, stem, "png")[0]
        section.figures.append(
            F.Figure(
                path.stem,
                f"E5: {finding.first} / {finding.second}, {finding.metric}",
                "Each cost figure at its low (blue) and high (orange) end; grey = tie band.",
                path,
            )
        )
    section.tables.append(("E5 findings on E1's point", sensitivity.findings_table(findings)))
    return section


def native(results: Any | None, why_not: str | None, folder: Path) -> Section:
    """E6: the simulation beside the native engine, or the note saying why it did not run."""
    if results is None:
        return _missing("e6", "E6 reality check", why_not or "not requested", [prose.E6_PROSE])
    table = results.table
    section = Section("e6", "E6 reality check", [prose.E6_PROSE])
    figure = F.native(table, folder)
    section.figures.append(figure)
    for mode in dict.fromkeys(table["engine.device"]):
        where = {"engine.device": mode}
        said = C.native_check(table, "virtio-split", "vbus-ioq", where, figure.key)
        spread = C.native_spread(table, "virtio-split", "vbus-ioq", where)
        section.conclusions.append(said.with_robustness(spread))
    return section


def history(results: Any, folder: Path) -> Section:
    """E7: what closed the gap between 2009's virtio and vbus."""
    table = results.table
    section = Section("e7", "E7 the history row", [prose.E7_PROSE])
    figure = F.history(table, prose.E7_STEPS, folder)
    section.figures.append(figure)
    for metric in ("time_total_ns_per_req", "lat_p99_ns"):
        conclusion = C.history(table, "virtio", "vbus-ioq", metric, prose.E7_STEPS, figure.key)
        section.conclusions.append(
            C.Conclusion(
                f"{conclusion.key}-{metric}",
                "E7",
                figure.key,
                conclusion.text,
                conclusion.value,
                None,
                extra=conclusion.extra,
            )
        )
    return section


def lost_wakeups(trials: pd.DataFrame | None, note: str | None, folder: Path) -> Section:
    """E8: how many runs of vbus end in a lost wakeup, shipped wmb against the full barrier,
    natively and simulated: reported apart from speed."""
    section = Section("e8", "E8 lost wakeups, apart from speed", [prose.E8_PROSE])
    if trials is None or trials.empty:
        section.notes.append(f"Not run: {note or 'not requested'}.")
        return section
    if note:
        section.notes.append(note + ".")
    trials = trials.assign(outcome=[C.run_outcome(m) for m in trials["message"]])
    figure = F.lost_wakeups(trials, folder)
    section.figures.append(figure)
    said = C.lost_wakeups(trials, figure.key)
    section.conclusions.append(said.with_robustness(C.LOST_WAKEUP_ROBUSTNESS))
    counts = (
        trials.groupby(["engine", "model", "barrier"], sort=False)["outcome"]
        .value_counts()
        .unstack(fill_value=0)
        .reset_index()
    )
    section.tables.append(("runs per outcome (E8)", counts))
    failed = trials.dropna(subset=["message"])
    if len(failed):
        first = failed.iloc[0]
        section.notes.append(
            f"A failed run, as vbench run recorded it ({first['engine']}, {first['model']}, "
            f"{first['barrier']}, seed {first['seed']}): {first['message']}"
        )
    return section
