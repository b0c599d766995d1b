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

import pandas as pd

from vbench.report.conclusions import METRIC_WORDS, Claim, select
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
        if verdicts is None:
            continue
        base = verdicts["base"]
        flipped = [c for c, v in verdicts.items() if c != "base" and v != base]
        if not flipped:
            return f"holds for every cost in range ({len(verdicts)} cases of E5)"
        how = "the tie breaks" if base == 0 else "flips"
        named = "; ".join(_case_words(cases, c) for c in flipped[:MOST_NAMED])
        if len(flipped) > MOST_NAMED:
            named += f" (and {len(flipped) - MOST_NAMED} more of the {len(verdicts) - 1} cases)"
        return f"{how} when {named}"
    return "not assessed by E5 (its cases do not include this comparison)"


def _case_words(cases: pd.DataFrame, case: str) -> str:
    """'line_transfer_ns is at its low end (17)' for a case named 'line_transfer_ns low'."""
    rows = cases[cases["case"] == case]
    figure, _, end = case.rpartition(" ")
    value = float(rows["case_value"].iloc[0]) if len(rows) else math.nan
    return f"{figure} is at its {end} end ({value:g})"
