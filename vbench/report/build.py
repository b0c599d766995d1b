"""``vbench report``: run the experiments, compute the conclusions, write report.html and
report.md. :func:`build_report` is the one library call behind the command.

The steps: each experiment through ``vbench run``'s library (resumed in ``OUT/runs``), E5
through ``vbench sensitivity``'s, the sections (figures and generated conclusions), each
conclusion's robustness from E5's cases, the two answers (the headline conclusions of each
question, with the mechanism's prose), provenance, then both renderings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbench.report import conclusions as C
from vbench.report import experiments as X
from vbench.report import priority, prose, sections
from vbench.report import provenance as P
from vbench.report import robustness as R
from vbench.report.render import Report, to_html, to_markdown

Say = Callable[[str], None]


@dataclass
class ReportOutcome:
    """What a report run wrote and how long it took."""

    html: Path
    markdown: Path
    runs: Path
    seconds: float
    notes: list[str]


def run_experiments(
    sizing: X.Sizing, runs: Path, only: set[str] | None, jobs: int, cluster: str | None, say: Say
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Every experiment's results (key -> ResultSet), E5's cases tables (experiment key ->
    table), and notes on what did not run and why."""
    results: dict[str, Any] = {}
    notes: list[str] = []
    for experiment in X.EXPERIMENTS:
        if only is not None and experiment.key not in only:
            continue
        extra = None
        if experiment.native and (why := X.native_possible()):
            if experiment.key != "E8":
                notes.append(f"{experiment.key} skipped: {why}")
                say(notes[-1])
                continue
            notes.append(f"E8 ran in the simulation only: {why}")
            say(notes[-1])
            extra = X.SIM_ONLY
        results[experiment.key] = X.run(
            experiment,
            sizing,
            runs,
            jobs=jobs,
            cluster=cluster,
            say=say,
            extra=extra,
            failures_count=experiment.key == "E8",
        )
    cases = {}
    for key in X.SENSITIVITY:
        if only is None or "E5" in only:
            experiment = next(e for e in X.EXPERIMENTS if e.key == key)
            cases[key] = X.sensitivity(experiment, sizing, runs, jobs=jobs, say=say)
    return results, cases, notes


def make_sections(
    results: dict[str, Any], cases: dict[str, Any], figures: Path, notes: list[str]
) -> list[tuple[str, list[Any]]]:
    """The report's two parts, each a list of sections."""
    q1 = [sections.layouts(figures)]
    builders = [
        ("E1", sections.anatomy),
        ("E2", sections.notifications),
        ("E3", sections.scatter_gather),
        ("E4", sections.capacity),
    ]
    q1 += [build(results[key], figures) for key, build in builders if key in results]
    q1.append(sections.robustness(list(cases.values()), figures))
    why_e6 = next((n for n in notes if n.startswith("E6")), "not requested")
    q1.append(sections.native(results.get("E6"), why_e6, figures))
    if "E7" in results:
        q1.append(sections.history(results["E7"], figures))
    e8 = next((e for e in X.EXPERIMENTS if e.key == "E8"), None)
    trials = X.trials(results["E8"], e8) if "E8" in results and e8 else None
    why_e8 = next((n for n in notes if n.startswith("E8")), None)
    q1.append(sections.lost_wakeups(trials, why_e8, figures))
    q2 = [priority.p1(results, figures), priority.p2(results, figures)]
    return [
        ("Question 1: how is shm() different from add_buf?", q1),
        ("Question 2: what does one do with priority?", q2),
    ]


def _all_conclusions(parts: list[tuple[str, list[Any]]]) -> list[Any]:
    return [c for _t, secs in parts for s in secs for c in s.conclusions]


def add_robustness(parts: list[tuple[str, list[Any]]], cases: dict[str, Any]) -> None:
    """Each conclusion's robustness (in place): from E5's cases where a section did not give
    its own (E6's spread over repetitions, E8's counts of runs)."""
    tables = [C.with_derived(t) for t in cases.values()]
    if "E4" in cases:
        tables.append(R.capacity_cases(cases["E4"], sections.P99_BOUND_NS))
    for _title, secs in parts:
        for section in secs:
            section.conclusions = [
                c if c.robustness else c.with_robustness(conclusion_robustness(c, cases, tables))
                for c in section.conclusions
            ]


def conclusion_robustness(conclusion: Any, cases: dict[str, Any], tables: list[Any]) -> str:
    """One conclusion's robustness words from E5's cases (experiment key -> table; ``tables``:
    every cases table a comparison may be read from, E4's as maximum sustainable rates)."""
    import pandas as pd

    empty = pd.DataFrame()
    if conclusion.key == "e2-wins":
        e2 = cases.get("E2", empty)
        return R.wins_robustness(e2, sections.e2_wins_count, sections.COUNTS, conclusion.value)
    if conclusion.key.startswith("e7-history-"):
        metric = conclusion.key.removeprefix("e7-history-")
        e7 = cases.get("E7", empty)
        return R.history_robustness(e7, "virtio", "vbus-ioq", metric, prose.E7_STEPS)
    return R.robustness_words(tables, conclusion.claim)


#: The conclusions each answer leads with (by key), in order.
ANSWER_KEYS = {
    "q1": [
        "e1-lines_per_req-vbus-ioq-virtio-split",
        "e1-time_total_ns_per_req-vbus-ioq-virtio-split",
        "e4-capacity",
        "e2-wins",
        "e7-history-time_total_ns_per_req",
        "e7-history-lat_p99_ns",
        "e8-lost-wakeups",
    ],
    "q2": [
        "p1-1-c1_lat_p99_ns-vbus-evq-per-class-strict-vbus-1evq-strict",
        "p1-1-c1_lat_p99_ns-virtio-mq-strict-virtio-fifo",
        "P2a-c1_lat_p99_ns-vbus-evq-per-class-strict-vbus-1evq-strict",
        "P2a-c1_lat_p99_ns-virtio-mq-strict-virtio-fifo",
        "P2b-c1_lat_p99_ns-virtio-mq-strict-virtio-fifo",
        "P2c-c1_lat_p99_ns-vbus-evq-per-class-strict-vbus-1evq-strict",
    ],
}


def answers(parts: list[tuple[str, list[Any]]]) -> list[tuple[str, list[str], list[Any]]]:
    by_key = {c.key: c for c in _all_conclusions(parts)}
    pick = {q: [by_key[k] for k in keys if k in by_key] for q, keys in ANSWER_KEYS.items()}
    return [
        ("Question 1: how is shm() different from add_buf?", prose.Q1_CATEGORY[:1], pick["q1"]),
        ("Question 2: what does one do with priority?", prose.Q2_MECHANISM[:1], pick["q2"]),
    ]


def build_report(
    out: Path,
    sizing: X.Sizing,
    *,
    only: set[str] | None = None,
    jobs: int = 1,
    cluster: str | None = None,
    say: Say = lambda _m: None,
) -> ReportOutcome:
    """Run what ``only`` names (default every experiment and E5) into ``out/runs``, then write
    ``out/report.html``, ``out/report.md`` and ``out/figures/``."""
    from vbench import results as R

    start, started = time.monotonic(), R.now()
    out.mkdir(parents=True, exist_ok=True)
    runs, figures = out / "runs", out / "figures"
    results, cases, notes = run_experiments(sizing, runs, only, jobs, cluster, say)
    say("drawing figures and computing conclusions")
    parts = make_sections(results, cases, figures, notes)
    add_robustness(parts, cases)
    metas = [r.meta for r in results.values()]
    seconds = time.monotonic() - start
    info = P.summary(metas, started, R.now(), seconds)
    info["sizing"] = "quick" if sizing.quick else "full"
    if notes:
        info["not run"] = "; ".join(notes)
    by_key = {e.key: e for e in X.EXPERIMENTS}
    configs = P.configs_table({k: (r, by_key[k].path) for k, r in results.items()})
    report = Report(
        prose.TITLE,
        prose.INTRO,
        prose.FAIRNESS,
        answers(parts),
        parts,
        info,
        [("Configs", configs), ("Cost figures", P.presets_table(metas))],
    )
    html_path, md_path = out / "report.html", out / "report.md"
    R.atomic_write_text(html_path, to_html(report))
    R.atomic_write_text(md_path, to_markdown(report))
    return ReportOutcome(html_path, md_path, runs, time.monotonic() - start, notes)
