"""E5 applied to one conclusion: does its verdict survive every cost figure's stated range?

``vbench sensitivity`` (:mod:`vbench.sensitivity`) runs a config at the preset's figures and
with each figure at each end of its range; its cases table holds every row of every case.
:func:`robustness_words` reads one :class:`~vbench.report.conclusions.Claim` (two labels, a
metric, a point) out of that table and says whether the verdict (who is ahead, or a tie,
with sensitivity's own tie band) is the same in every case, or which figure's end flips it.
Pure: a cases table in, words out.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from vbench.report.conclusions import METRIC_WORDS, Claim, history, max_sustainable, select
from vbench.sensitivity import verdict

#: How many flipping cases a robustness note names before it counts the rest.
MOST_NAMED = 3


def _claim_rows(cases: pd.DataFrame, claim: Claim) -> pd.DataFrame | None:
    """The cases' rows for the claim's point and labels, or None when E5 did not cover it."""
    where = dict(claim.where)
    if any(k not in cases.columns for k in where) or claim.metric not in cases.columns:
        return None
    rows = select(cases, where)
    labels = set(rows["label"].astype(str))
    if claim.first not in labels or claim.second not in labels or rows.empty:
        return None
    return rows


def case_verdicts(cases: pd.DataFrame, claim: Claim) -> pd.Series | None:
    """Per case (base first), the verdict +1 / -1 / 0 of ``first`` against ``second``."""
    rows = _claim_rows(cases, claim)
    if rows is None:
        return None
    direction = -1 if METRIC_WORDS.get(claim.metric, ("", True, ""))[1] else 1
    wide = rows.pivot_table(index="case", columns="label", values=claim.metric, aggfunc="median")
    if "base" not in wide.index or not _reproduces(wide.loc["base"], claim):
        return None
    out = {
        case: verdict(float(r[claim.first]), float(r[claim.second]), direction)
        for case, r in wide.iterrows()
    }
    order = ["base"] + [c for c in out if c != "base"]
    return pd.Series({c: out[c] for c in order if c in out})


def _reproduces(base: pd.Series, claim: Claim) -> bool:
    """E5's base case gives the very values the conclusion read (else it is another run)."""
    if not claim.values:
        return True
    found = (float(base[claim.first]), float(base[claim.second]))
    return all(math.isclose(x, y, rel_tol=1e-9) for x, y in zip(found, claim.values, strict=True))


def robustness_words(cases_tables: list[pd.DataFrame], claim: Claim | None) -> str:
    """'holds for every cost in range (22 cases)' or 'flips when line_transfer_ns is at its
    low end (17 ns)', from the first cases table that covers the claim."""
    if claim is None:
        return "not assessed by E5 (a rate or count read off one sweep, not a pairwise verdict)"
    for cases in cases_tables:
        verdicts = case_verdicts(cases, claim)
        if verdicts is not None:
            return outcome_words(verdicts, cases)
    return "not assessed by E5 (its cases do not include this comparison)"


def outcome_words(
    outcomes: pd.Series, cases: pd.DataFrame, shown: dict[str, str] | None = None
) -> str:
    """Words for one conclusion's outcome per case (base first; any comparable value: a
    verdict +1 / -1 / 0, a count, a tuple): 'holds for every cost in range (22 cases of E5)'
    or 'flips when <figure> is at its <end> end (<value>)' for a verdict; with ``shown`` (what
    the outcome became in each case: '2 of 8'), 'changes when ...: 2 of 8'."""
    base = outcomes["base"]
    flipped = [c for c, v in outcomes.items() if c != "base" and v != base]
    if not flipped:
        return f"holds for every cost in range ({len(outcomes)} cases of E5)"
    how = "changes" if shown else ("the tie breaks" if base == 0 else "flips")
    named = "; ".join(
        _case_words(cases, c) + (f": {shown[c]}" if shown and c in shown else "")
        for c in flipped[:MOST_NAMED]
    )
    if len(flipped) > MOST_NAMED:
        named += f" (and {len(flipped) - MOST_NAMED} more of the {len(outcomes) - 1} cases)"
    return f"{how} when {named}"


def capacity_cases(cases: pd.DataFrame, bound_ns: float) -> pd.DataFrame:
    """E5 on E4's sweep turned into a cases table of maximum sustainable rates: one row per
    case and label (``max_sustainable_rate``: 0 where no offered rate qualifies), so that
    :func:`robustness_words` reads E4's capacity claim out of it like any other."""
    frames = []
    for case, rows in cases.groupby("case", sort=False):
        rates = max_sustainable(rows, bound_ns).fillna(0.0)
        frames.append(
            pd.DataFrame(
                {
                    "label": rates.index,
                    "max_sustainable_rate": rates.to_numpy(dtype=float),
                    "case": case,
                    "case_figure": rows["case_figure"].iloc[0],
                    "case_end": rows["case_end"].iloc[0],
                    "case_value": rows["case_value"].iloc[0],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def counts_identical(cases: pd.DataFrame, metrics: list[str]) -> bool:
    """Every (point, label)'s ``metrics`` are the same number in every case: counts that the
    cost figures do not move (time does not feed back into them at these points)."""
    if any(m not in cases.columns for m in metrics) or cases.empty:
        return False
    spread = cases.groupby(["point", "label"])[metrics].nunique(dropna=False)
    return bool((spread <= 1).all().all())


def wins_robustness(
    cases: pd.DataFrame,
    count: Callable[[pd.DataFrame], tuple[int, int]],
    metrics: list[str],
    expected: float | None = None,
) -> str:
    """E2's count of points where one design wins, across E5's cases of E2's whole sweep:
    'a count: identical at every cost in range (22 cases)' when every count under it is the
    same number in every case; else whether the number of wins holds, and where it changes.
    ``count`` gives (wins, points) for one case's rows; ``expected``, the conclusion's own
    number, which E5's base case must give (else it ran something else)."""
    if cases.empty or "case" not in cases.columns:
        return "not assessed by E5 (its cases do not include this sweep)"
    per_case = {case: count(rows) for case, rows in cases.groupby("case", sort=False)}
    if "base" not in per_case or (expected is not None and per_case["base"][0] != expected):
        return "not assessed by E5 (its base case is not the run the sentence read)"
    order = ["base"] + [c for c in per_case if c != "base"]
    if counts_identical(cases, metrics):
        return f"a count: identical at every cost in range ({len(order)} cases of E5)"
    wins = pd.Series({c: per_case[c][0] for c in order})
    shown = {c: f"{w} of {per_case[c][1]} points won" for c, w in wins.items()}
    words = outcome_words(wins, cases, shown)
    if words.startswith("holds"):
        hi = _count_spread(cases, metrics)
        return (
            f"{words}: the counts themselves move with the costs (kicks and interrupts per "
            f"request by up to {hi:.2g}x at one point), the number of wins does not"
            if hi > 1
            else words
        )
    return words


def _count_spread(cases: pd.DataFrame, metrics: list[str]) -> float:
    """The largest ratio between a (point, label)'s highest and lowest count across cases."""
    total = cases[metrics].sum(axis=1)
    grouped = total.groupby([cases["point"], cases["label"]])
    lo, hi = grouped.min(), grouped.max()
    ratio = (hi / lo.where(lo > 0)).dropna()
    return float(ratio.max()) if len(ratio) else 1.0


def history_robustness(
    cases: pd.DataFrame, virtio: str, vbus: str, metric: str, steps: list[str]
) -> str:
    """E7 across E5's cases of its whole sweep (under its own preset, kvm-2009): does the
    history sentence's outcome hold: who was ahead in 2009, who is after every step, and which
    step moved virtio most?"""
    if cases.empty or "case" not in cases.columns or metric not in cases.columns:
        return "not assessed by E5 (its cases do not include E7)"
    outcomes, ratios = {}, {}
    for case, rows in cases.groupby("case", sort=False):
        said = history(rows, virtio, vbus, metric, steps, "")
        first, last = said.extra["first"], said.value
        outcomes[case] = (verdict(1.0, first, 1), verdict(1.0, last, 1), said.extra["biggest"])
        ratios[case] = (first, last)
    if "base" not in outcomes:
        return "not assessed by E5 (its cases have no base case)"
    order = ["base"] + [c for c in outcomes if c != "base"]
    shown = {
        c: _history_change(outcomes["base"], outcomes[c], ratios[c], virtio, vbus) for c in order
    }
    return outcome_words(pd.Series({c: outcomes[c] for c in order}), cases, shown)


def _history_change(
    base: tuple[int, int, str],
    case: tuple[int, int, str],
    ratios: tuple[float, float],
    virtio: str,
    vbus: str,
) -> str:
    """What a case changes in the history sentence: 'after every step level (0.98x)', 'in
    2009 vbus-ioq's lower (1.10x)', 'the step that moved it most is X'."""
    who = {1: f"{virtio}'s lower", -1: f"{vbus}'s lower", 0: "level"}
    parts = [
        f"{when} {who[case[i]]} ({ratios[i]:.2f}x)"
        for i, when in enumerate(("in 2009", "after every step"))
        if case[i] != base[i]
    ]
    if case[2] != base[2]:
        parts.append(f"the step that moved it most is '{case[2]}'")
    return ", ".join(parts)


def _case_words(cases: pd.DataFrame, case: str) -> str:
    """'line_transfer_ns is at its low end (17)' for a case named 'line_transfer_ns low'."""
    rows = cases[cases["case"] == case]
    figure, _, end = case.rpartition(" ")
    value = float(rows["case_value"].iloc[0]) if len(rows) else math.nan
    return f"{figure} is at its {end} end ({value:g})"
