"""Question 2's sections: P1 (every priority design under two- and three-class loads) and P2
(where priority can help: a saturated device, a full ring, a busy guest).

The comparisons chosen here are the ones the mechanism predicts matter: vbus's per-class
event queues against its one event queue (the effect of prio itself, everything else equal),
and the device's service order (per-class queues, strict) against FIFO.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from vbench.report import conclusions as C
from vbench.report import figures as F
from vbench.report import prose
from vbench.report.sections import Section, comparisons

#: The offered rate P1's conclusions are read at: busy, yet below every design's knee in E4
#: (its maximum sustainable rates), so queueing at a saturated device does not decide them.
P1_RATE = 2.0e6

#: The pairs every priority conclusion compares: (first, second, what the pair isolates)
PAIRS = [
    ("vbus-evq-per-class-strict", "vbus-1evq-strict"),  # prio routing alone
    ("virtio-mq-strict", "virtio-fifo"),  # the device's service order
    ("vbus-evq-per-class-strict", "virtio-mq-strict"),  # the two designs' best
]


def p1(results: dict[str, Any], folder: Path) -> Section:
    """P1: urgent p99 per design; headlines at the first (smallest) urgent share and at
    :data:`P1_RATE`."""
    section = Section("p1", "P1 priority designs", list(prose.Q2_MECHANISM))
    for key, top in (("P1-2", 1), ("P1-3", 2)):
        if key not in results:
            section.notes.append(f"Not run: {key}.")
            continue
        table = results[key].table
        figure = F.priority(table, top, f"p1-{top + 1}-classes", folder)
        section.figures.append(figure)
        shares = list(dict.fromkeys(table["workload.priority.shares"].astype(str)))
        where = {"workload.priority.shares": shares[0]}
        where["workload.arrival.rate"] = P1_RATE
        metric = f"c{top}_lat_p99_ns"
        pairs = [(metric, first, second) for first, second in PAIRS]
        section.conclusions += comparisons(table, pairs, where, "P1", figure.key, f"p1-{top}")
        hol = f"c{top}_hol_ns_per_req"
        section.tables.append(
            (
                f"{top + 1} classes {C.where_words(where)}: urgent p50/p99/p99.9 (µs), "
                "head-of-line (µs per urgent request), bulk throughput (M req/s)",
                _priority_table(C.select(table, where), top, hol),
            )
        )
    return section


def _priority_table(rows: Any, top: int, hol: str) -> Any:
    """The P1 table the issue asks for: urgent p50/p99/p99.9, head-of-line, bulk throughput."""
    out = rows[["label"]].copy()
    for tag in ("p50", "p99", "p99_9"):
        out[f"urgent {tag}"] = (rows[f"c{top}_lat_{tag}_ns"] / 1000).round(2)
    out["HoL"] = (rows[hol] / 1000).round(3)
    out["bulk M req/s"] = (rows["c0_requests_per_s"] / 1e6).round(3)
    return out.reset_index(drop=True)


def p2(results: dict[str, Any], folder: Path) -> Section:
    """P2: the three situations, each with its prio-alone and device-order comparisons."""
    section = Section("p2", "P2 where priority can help", list(prose.P2_PROSE))
    parts = {
        "P2a": ("device saturated by bulk traffic", "workload.arrival.rate", "max"),
        "P2b": ("ring full of bulk requests", "workload.arrival.in_flight", "max"),
        "P2c": ("guest busy with completions", "workload.arrival.rate", "max"),
    }
    present = {k: v for k, v in parts.items() if k in results}
    for key in parts.keys() - present.keys():
        section.notes.append(f"Not run: {key} ({parts[key][0]}).")
    if not present:
        return section
    figure = F.where_priority_helps(
        {title: (results[k].table, axis) for k, (title, axis, _) in present.items()}, folder
    )
    section.figures.append(figure)
    pairs = {
        "P2a": [PAIRS[0], PAIRS[1]],
        "P2b": [("virtio-mq-strict", "virtio-fifo"), ("vbus-1evq-strict", "vbus-single")],
        "P2c": [PAIRS[0], PAIRS[1]],
    }
    for key, (title, axis, pick) in present.items():
        table = results[key].table
        where = C.largest_point(table, {axis: pick})
        found = comparisons(
            table, [("c1_lat_p99_ns", *p) for p in pairs[key]], where, "P2", figure.key, key
        )
        section.conclusions += [
            replace(c, text=f"{title.capitalize()}: {c.text[0].lower()}{c.text[1:]}") for c in found
        ]
    return section
