"""What a comparison's verdict rests on: each cost figure moved across its stated range.

A simulated "vbus is faster than virtio" is a conclusion about the designs only if it survives
every cost figure the simulation prices it with, across the range that figure is known to span
(``low``/``high`` in the preset, each with its source). :func:`run_cases` runs the config once at
the preset's values (the base) and once with each figure at each end of its range, the others
left alone; :func:`assess` then says, for every pair of models and every verdict metric, at how
many sweep points the verdict (which model is ahead, or a tie) holds in every case, and which
figure's end flips it where it does not.

Every case is simulated afresh rather than re-priced from the base run's counts: in this
simulator time feeds back into the counts (a slower kick lets more requests pile up behind it,
which changes how many later kicks are suppressed), so re-pricing would answer a different
question. The runs are deterministic (same seed, same workload), so a changed verdict is the
figure's doing, not noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import pandas as pd

from vbench.config import Plan, plan
from vbench.costs import OP_COSTS_FACTOR
from vbench.errors import ConfigError
from vbench.exits import Stop

#: Verdict metrics and their direction (+1 higher is better, -1 lower is better): which model
#: is faster (the modelled time both sides spend per request: under an open-loop load the
#: achieved rate is the offered one, so time per request is where speed shows) and which has
#: the lower p99 latency.
METRICS: dict[str, int] = {"time_total_ns_per_req": -1, "lat_p99_ns": -1}
METRIC_WORDS: dict[str, str] = {"time_total_ns_per_req": "time per request", "lat_p99_ns": "p99"}
#: Two models within this relative difference are a tie (neither verdict is claimed).
TIE = 0.02


@dataclass(frozen=True)
class Case:
    """One run of the config: the base (``figure`` None), or one figure at one end."""

    figure: str | None
    end: str  # "base", "low" or "high"
    value: float

    @property
    def name(self) -> str:
        return "base" if self.figure is None else f"{self.figure} {self.end}"


def cases(base: Plan, figures: list[str] | None = None) -> list[Case]:
    """The base, then each figure with a stated range at each end that differs from its value
    (``figures``: only these). A figure the preset gives no range is not varied."""
    preset = base.points[0].preset
    ranges = {
        name: (fig.value, fig.low, fig.high)
        for name, fig in preset.figures.items()
        if fig.has_range
    }
    if preset.op_costs is not None:
        # the operation table moves as one figure: a factor on every operation's cost
        ranges[OP_COSTS_FACTOR] = (1.0, preset.op_costs.low_factor, preset.op_costs.high_factor)
    known = [*preset.figures, *([OP_COSTS_FACTOR] if preset.op_costs is not None else [])]
    unknown = [f for f in figures or [] if f not in known]
    if unknown:
        raise ConfigError(
            f"--figure {unknown[0]!r} is not a cost figure: use one of {', '.join(known)}"
        )
    out = [Case(None, "base", math.nan)]
    for name, (value, low, high) in ranges.items():
        if figures and name not in figures:
            continue
        for end, at in (("low", low), ("high", high)):
            if at != value:
                out.append(Case(name, end, float(at)))
    return out


def check_comparable(base: Plan) -> None:
    """A sensitivity needs two models to compare and one preset for every point."""
    labels = {label for p in base.points for label, _, _ in p.models}
    if len(labels) < 2:
        raise ConfigError(
            f"{base.source}: sensitivity compares models, and this config has only "
            f"{', '.join(sorted(labels)) or 'none'}: add a second [[models]] entry"
        )


def run_cases(
    path: str | Path,
    sets: list[str],
    todo: list[Case],
    run: Callable[[Plan], list[dict[str, Any]]],
    on_case: Callable[[int, Case], None] | None = None,
    on_table: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Every case's rows, one table: the config's tidy rows plus ``case``, ``case_figure``,
    ``case_end`` and ``case_value``. ``run`` runs one plan and returns its rows (the CLI passes
    the sweep runner with its jobs; tests pass a fake); ``on_table`` gets the table so far
    after each case (the CLI writes it, so an interrupted sensitivity keeps its cases)."""
    frames = []
    for i, case in enumerate(todo):
        if on_case:
            on_case(i, case)
        extra = [] if case.figure is None else [f"costs.{case.figure}={case.value!r}"]
        rows = run(plan(path, sets + extra))
        frame = pd.DataFrame(rows)
        frame["case"] = case.name
        frame["case_figure"] = case.figure or ""
        frame["case_end"] = case.end
        frame["case_value"] = case.value
        frames.append(frame)
        if on_table:
            on_table(pd.concat(frames, ignore_index=True))
    return pd.concat(frames, ignore_index=True)


def verdict(a: float, b: float, direction: int) -> int:
    """+1 the first model is ahead, -1 the second, 0 a tie (within :data:`TIE`)."""
    if not (a > 0 and b > 0):
        return 0
    gain = direction * math.log(a / b)
    if abs(gain) <= math.log1p(TIE):
        return 0
    return 1 if gain > 0 else -1


@dataclass
class Finding:
    """One verdict metric for one pair of models over the sweep and all cases."""

    first: str
    second: str
    metric: str
    points: int
    base: dict[int, int] = field(default_factory=dict)  # verdict at each point, base case
    flips: dict[str, list[int]] = field(default_factory=dict)  # case -> points it changed
    ratios: dict[str, float] = field(default_factory=dict)  # case -> geomean first/second

    @property
    def robust_points(self) -> int:
        changed = {p for pts in self.flips.values() for p in pts}
        return self.points - len(changed)

    @property
    def robust(self) -> bool:
        return not self.flips

    def base_words(self) -> str:
        """At how many points each model is ahead in the base case."""
        ahead = {1: 0, -1: 0, 0: 0}
        for v in self.base.values():
            ahead[v] += 1
        parts = [f"{self.first} at {ahead[1]}", f"{self.second} at {ahead[-1]}"]
        if ahead[0]:
            parts.append(f"tie at {ahead[0]}")
        return ", ".join(parts) + f" of {self.points}"

    def flip_words(self) -> str:
        if not self.flips:
            return "nothing: robust across every figure's range"
        ranked = sorted(self.flips.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        return "; ".join(
            f"{case} ({len(pts)} point{'s' if len(pts) > 1 else ''})" for case, pts in ranked
        )


def _pivot(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """metric by (case, point) x label."""
    return table.pivot_table(index=["case", "point"], columns="label", values=metric)


def assess(table: pd.DataFrame) -> list[Finding]:
    """Every pair of labels (in the config's order) x every verdict metric."""
    labels = list(dict.fromkeys(table["label"]))
    out = []
    for metric, direction in METRICS.items():
        if metric not in table.columns:
            continue
        wide = _pivot(table, metric)
        for first, second in combinations(labels, 2):
            out.append(_finding(wide, first, second, metric, direction))
    return out


def _finding(wide: pd.DataFrame, first: str, second: str, metric: str, direction: int) -> Finding:
    base = wide.loc["base"]
    points = list(base.index)
    finding = Finding(first, second, metric, len(points))
    finding.base = {p: verdict(base.at[p, first], base.at[p, second], direction) for p in points}
    for case in dict.fromkeys(wide.index.get_level_values("case")):
        rows = wide.loc[case]
        ratios = [rows.at[p, first] / rows.at[p, second] for p in points]
        finding.ratios[case] = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        if case == "base":
            continue
        changed = [
            p
            for p in points
            if verdict(rows.at[p, first], rows.at[p, second], direction) != finding.base[p]
        ]
        if changed:
            finding.flips[case] = changed
    return finding


def findings_table(findings: list[Finding]) -> pd.DataFrame:
    """One row per finding, for the CSV and the report."""
    return pd.DataFrame(
        [
            {
                "first": f.first,
                "second": f.second,
                "metric": f.metric,
                "points": f.points,
                "robust_points": f.robust_points,
                "robust": f.robust,
                "base_verdict": f.base_words(),
                "ratio_base": f.ratios.get("base", math.nan),
                "flipped_by": f.flip_words(),
            }
            for f in findings
        ]
    )


def require_success(outcome: Any, folder: Path) -> list[dict[str, Any]]:
    """The rows of a finished sweep, or the command's end: interrupted (its signal's exit
    code) or a failed point (exit 1), saying where the finished cases are."""
    kept = f"the finished cases are in {folder / 'cases.csv'}"
    if outcome.interrupted:
        raise Stop(f"sensitivity interrupted: {kept}", outcome.interrupted)
    if outcome.failures:
        first = outcome.failures[0]
        message = getattr(first, "message", first)
        raise Stop(f"sensitivity: a point failed ({message}); {kept}", 1)
    return outcome.rows


# --- the tornado figure ----------------------------------------------------------------------------
def tornado(finding: Finding, path_stem: Path, formats: str = "png") -> list[Path]:
    """One comparison's tornado: per figure, the geometric-mean ratio first/second over the
    sweep at the figure's low and high end, around the base ratio; the grey band is a tie.
    A bar crossing 1 is a figure that can flip the verdict somewhere."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = finding.ratios["base"]
    spans: dict[str, tuple[float, float]] = {}
    for case, ratio in finding.ratios.items():
        if case == "base":
            continue
        figure, _, end = case.rpartition(" ")
        low, high = spans.get(figure, (base, base))
        spans[figure] = (ratio, high) if end == "low" else (low, ratio)
    order = sorted(spans, key=lambda f: abs(math.log(spans[f][1] / spans[f][0])))
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(order) + 1.6))
    ax.axvspan(1 / (1 + TIE), 1 + TIE, color="0.9", label="tie")
    ax.axvline(base, color="0.3", linewidth=1, label=f"base {base:.3g}")
    for y, figure in enumerate(order):
        low, high = spans[figure]
        ax.barh(y, low - base, left=base, color="tab:blue", height=0.6)
        ax.barh(y, high - base, left=base, color="tab:orange", height=0.6)
    ax.set_yticks(range(len(order)), order)
    ax.set_xscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:.3g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    word = METRIC_WORDS.get(finding.metric, finding.metric)
    ax.set_xlabel(f"{finding.first} / {finding.second}, {word} (geomean of {finding.points} pts)")
    ax.set_title(f"{word}: blue = figure at its low end, orange = at its high end", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = []
    for ext in formats.split(","):
        target = path_stem.with_suffix(f".{ext.strip()}")
        fig.savefig(target)
        out.append(target)
    plt.close(fig)
    return out


def write(folder: Path, table: pd.DataFrame, findings: list[Finding], formats: str) -> list[Path]:
    """cases.csv (every case's rows), findings.csv and one tornado per finding."""
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "cases.csv", index=False)
    findings_table(findings).to_csv(folder / "findings.csv", index=False)
    paths = [folder / "cases.csv", folder / "findings.csv"]
    for f in findings:
        stem = folder / f"tornado-{f.first}-vs-{f.second}-{f.metric}"
        paths += tornado(f, stem, formats)
    return paths


def load_findings(folder: Path) -> list[Finding]:
    """The findings of a sensitivity folder, recomputed from its cases.csv (``vbench plot``)."""
    cases_csv = folder / "cases.csv"
    if not cases_csv.is_file():
        raise ConfigError(f"{folder} has no cases.csv: give a folder written by vbench sensitivity")
    return assess(pd.read_csv(cases_csv))
