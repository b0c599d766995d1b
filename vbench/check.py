"""The CI regression gate: a small sweep compared with the committed baseline.

Policy, by metric kind (:mod:`vbench.metrics`):

- **exact** metrics (counts) must be equal. Any change fails, an improvement too, until the
  baseline is updated on purpose (``--update-baseline``) in the same commit: a count that moves
  means the model's behaviour moved, and a reviewer should see it as a diff of the baseline CSV.
- **modeled** metrics (times from a preset) must stay within a stated relative tolerance.
- **timing** metrics (wall clock) are compared only against a baseline from the same machine
  fingerprint; otherwise they are reported as incomparable and never fail the gate. The
  committed baseline leaves them out (they would make every update a noisy diff).

The sweep runs twice; the second run must reproduce the first bit for bit (exact metrics),
else the gate reports non-determinism. Exit codes: 0 no regression, 1 regression, 2 usage or
configuration error, 3 invariant violation or a rerun that is not bit-identical, 4 baseline
missing or incomparable (made from a different config).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vbench import results
from vbench.compare import Comparison, Policy, compare_sets, to_json
from vbench.errors import InvariantError, VbenchError
from vbench.results import ResultSet

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_INVARIANT, EXIT_BASELINE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # Ctrl-C (or SIGTERM) while the gate's sweep ran: nothing was judged
DEFAULT_CONFIG = Path("configs/ci.toml")
DEFAULT_BASELINE = Path("results/baseline")
DEFAULT_RTOL = 0.01
# verdicts that fail the gate, per kind
FAILING = {
    "exact": {"better", "worse", "changed"},
    "modeled": {"better", "worse", "changed"},
    "timing": {"worse"},
}


@dataclass
class CheckResult:
    code: int
    headline: str
    comparison: Comparison | None = None
    report_dir: Path | None = None
    details: list[str] = field(default_factory=list)

    @property
    def failing(self) -> pd.DataFrame:
        if self.comparison is None or self.comparison.table.empty:
            return pd.DataFrame()
        t = self.comparison.table
        mask = [v in FAILING.get(k, set()) for k, v in zip(t["kind"], t["verdict"], strict=True)]
        return t[mask]


def baseline_present(path: Path) -> bool:
    return (path / "meta.json").is_file() and (path / f"{results.TABLE}.csv").is_file()


def load_baseline(path: Path) -> ResultSet:
    if not baseline_present(path):
        raise BaselineMissing(
            f"no baseline in {path} (meta.json and {results.TABLE}.csv): create it with "
            "vbench check --update-baseline and commit it"
        )
    return results.load(path / f"{results.TABLE}.csv")


class BaselineMissing(VbenchError):
    """The baseline folder is missing or unreadable (exit 4)."""


def judge(
    base: ResultSet, cur: ResultSet, policy: Policy, rerun: ResultSet | None = None
) -> CheckResult:
    """The gate's verdict on ``cur`` against ``base`` (and on ``rerun`` against ``cur``)."""
    if rerun is not None:
        det = compare_sets(cur, rerun, all_metrics=True, policy=Policy(rtol=0.0))
        t = det.table
        bad = t[(t["kind"] == "exact") & (t["verdict"] != "same")]
        if len(bad):
            r = bad.iloc[0]
            return CheckResult(
                EXIT_INVARIANT,
                f"the rerun is not bit-identical: {len(bad)} exact value(s) differ "
                f"(first: {r['label']} {r['metric']} {r['old']} vs {r['new']}): "
                "the simulation is not deterministic",
                det,
            )
    if base.meta.get("config_hash") != cur.meta.get("config_hash"):
        return CheckResult(
            EXIT_BASELINE,
            f"the baseline is incomparable: it was made from another config (hash "
            f"{base.meta.get('config_hash')}, current {cur.meta.get('config_hash')}): "
            "update it with vbench check --update-baseline if the config change is intended",
        )
    cmp = compare_sets(base, cur, all_metrics=True, policy=policy)
    res = CheckResult(EXIT_OK, "", cmp)
    t = cmp.table
    only = t[t["verdict"] == "incomparable"]
    only = only[only["why"].astype(str).str.startswith("only in")]
    if len(only):
        res.code = EXIT_BASELINE
        res.headline = (
            f"the baseline is incomparable: {only['label'].nunique()} row key(s) exist on one "
            "side only: update it with vbench check --update-baseline"
        )
        return res
    failing = res.failing
    if len(failing):
        kinds = failing["kind"].value_counts().to_dict()
        res.code = EXIT_REGRESSION
        res.headline = (
            f"regression: {len(failing)} metric value(s) changed beyond the policy "
            f"({', '.join(f'{n} {k}' for k, n in kinds.items())})"
        )
    else:
        c = cmp.counts()
        res.headline = f"no regression: {c['same']} values unchanged" + (
            f", {c['incomparable']} incomparable (timing on another machine)"
            if c["incomparable"]
            else ""
        )
    return res


def run_config(config: Path, jobs: int, out: Path, plan: Any = None) -> Path:
    """Run a sweep config (or an already made ``plan``) into the folder ``out``. A point that
    breaks an invariant raises InvariantError: the gate must not judge a broken run."""
    from vbench import config as cfgmod
    from vbench import sweep

    plan = plan or cfgmod.plan(config, [])
    start = results.now()
    # compiling is what takes time on a cold start: that runs in parallel; the gate's points are
    # small, so they run here rather than in worker processes that would each load every model
    sweep.warm_up(plan, jobs)
    outcome = sweep.run_plan(plan, 1)
    if outcome.interrupted:
        raise KeyboardInterrupt
    if outcome.failures:
        f = outcome.failures[0]
        raise InvariantError(f"point {f.point}: {f.message}")
    meta = sweep.meta_of(plan, config, [], outcome, start, results.now())
    results.write(out, outcome.rows, meta)
    return out


@dataclass
class GateOutcome:
    """How ``vbench check`` ended: the verdict (``result.code`` is the exit code), the reports
    written (check.md, check.json), whether the run was judged against the baseline (else it
    stopped before: a broken run, no baseline, an interrupt) and, after --update-baseline,
    what changed against the previous baseline."""

    result: CheckResult
    reports: tuple[Path, Path] | None = None
    judged: bool = False
    baseline_changes: list[str] | None = None


def gate(
    config: Path = DEFAULT_CONFIG,
    baseline: Path = DEFAULT_BASELINE,
    policy: Policy | None = None,
    *,
    results_dir: Path | None = None,
    report: Path | None = None,
    jobs: int = 0,
    update: bool = False,
    rerun: bool = True,
    status: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> GateOutcome:
    """The CI regression gate, as ``vbench check`` runs it: run ``config`` (twice, with
    ``rerun``; or judge the folder ``results_dir``) and judge it against ``baseline``, or with
    ``update`` make it the baseline. The reports go to ``report`` (default: the run's folder)
    whatever the verdict, so CI always has one to show; ``jobs`` 0 means every core."""
    policy = policy or Policy(rtol=DEFAULT_RTOL)
    jobs = jobs or (os.cpu_count() or 1)
    second = None
    if results_dir is not None:
        cur = results.load(results_dir)
    else:
        try:
            with status(f"running {config}…") if status else contextlib.nullcontext():
                folder = run_config(config, jobs, results.default_dir("check"))
                cur = results.load(folder)
                if rerun:
                    second = results.load(run_config(config, jobs, folder / "rerun"))
        except InvariantError as e:
            res = CheckResult(EXIT_INVARIANT, f"invariant violation: {e}")
            out_dir = report or results.default_dir("check")
            return GateOutcome(res, write_reports(res, out_dir, None, None, policy))
        except KeyboardInterrupt:
            headline = "interrupted: nothing was judged; run vbench check again"
            return GateOutcome(CheckResult(EXIT_INTERRUPTED, headline))
    out_dir = report or cur.path
    if update:
        return _update(cur, second, baseline, out_dir, policy)
    try:
        base = load_baseline(baseline)
    except BaselineMissing as e:
        res = CheckResult(EXIT_BASELINE, str(e))
        return GateOutcome(res, write_reports(res, out_dir, None, cur, policy))
    res = judge(base, cur, policy, second)
    return GateOutcome(res, write_reports(res, out_dir, base, cur, policy), judged=True)


def _update(
    cur: ResultSet, rerun: ResultSet | None, baseline: Path, out_dir: Path, policy: Policy
) -> GateOutcome:
    """--update-baseline: write ``cur`` as the baseline, unless its rerun differs (a baseline
    must come from a deterministic run; then the reports say why, and nothing is written)."""
    if rerun is not None:
        res = judge(cur, cur, policy, rerun)  # determinism first
        if res.code == EXIT_INVARIANT:
            return GateOutcome(res, write_reports(res, out_dir, None, cur, policy))
    changes = update_baseline(cur, baseline)
    written = f"baseline written: {baseline} (commit it with the change that caused it)"
    return GateOutcome(CheckResult(EXIT_OK, written), baseline_changes=changes)


# --- reports ------------------------------------------------------------------------------------
def markdown(
    res: CheckResult, base: ResultSet | None, cur: ResultSet | None, limit: int = 40
) -> str:
    """A Markdown summary for a pull request: the verdict, the counts, the failing values."""
    icon = {EXIT_OK: "✅", EXIT_REGRESSION: "❌"}.get(res.code, "⚠️")
    lines = [f"## vbench check: {icon} {res.headline}", ""]
    if base is not None and cur is not None:
        bg, cg = base.meta.get("git") or {}, cur.meta.get("git") or {}
        lines += [
            f"- baseline: `{base.path}` (commit {str(bg.get('commit'))[:10]}, config "
            f"{base.meta.get('config_hash')})",
            f"- current: `{cur.path}` (commit {str(cg.get('commit'))[:10]}, config "
            f"{cur.meta.get('config_hash')})",
            f"- exit code: {res.code}",
            "",
        ]
    if res.comparison is not None and not res.comparison.table.empty:
        counts = res.comparison.counts()
        lines += ["| verdict | values |", "| --- | --- |"]
        lines += [f"| {v} | {n} |" for v, n in counts.items() if n]
        lines.append("")
        for note in res.comparison.notes:
            lines.append(f"> {note}")
        failing = res.failing
        if len(failing):
            keys = res.comparison.keys
            head = [*keys, "metric", "kind", "old", "new", "change %", "verdict"]
            lines += ["", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
            for _, r in failing.head(limit).iterrows():
                cells = [str(r[k]) for k in keys] + [
                    f"`{r['metric']}`",
                    r["kind"],
                    _num(r["old"]),
                    _num(r["new"]),
                    _num(r["change_pct"], "+.3g"),
                    f"**{r['verdict']}**",
                ]
                lines.append("| " + " | ".join(cells) + " |")
            if len(failing) > limit:
                lines.append(f"\n… and {len(failing) - limit} more in the JSON report.")
    for d in res.details:
        lines.append(f"\n{d}")
    return "\n".join(lines) + "\n"


def _num(v: Any, fmt: str = ".6g") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return format(f, fmt) if math.isfinite(f) else "–"


def write_reports(
    res: CheckResult,
    out_dir: Path,
    base: ResultSet | None,
    cur: ResultSet | None,
    policy: Policy,
) -> tuple[Path, Path]:
    """``check.md`` and ``check.json`` in ``out_dir`` (always, on failure too); the Markdown is
    appended to ``$GITHUB_STEP_SUMMARY`` when that is set."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = markdown(res, base, cur)
    md_path = out_dir / "check.md"
    md_path.write_text(md)
    report: dict[str, Any] = {
        "schema": "vbench.check/1",
        "exit_code": res.code,
        "headline": res.headline,
    }
    if res.comparison is not None and base is not None and cur is not None:
        report["comparison"] = to_json(res.comparison, base, cur, policy)
        report["failing"] = len(res.failing)
    json_path = out_dir / "check.json"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as f:
                f.write(md)
        except OSError:
            pass  # a summary we cannot write must not change the verdict
    return md_path, json_path


# --- the baseline -----------------------------------------------------------------------------
def update_baseline(cur: ResultSet, path: Path) -> list[str]:
    """Write ``cur`` as the baseline (CSV without timing columns, and its meta.json); return
    what changed against the previous baseline, one line per kind of change."""
    said = []
    if baseline_present(path):
        try:
            old = load_baseline(path)
            cmp = compare_sets(old, cur, all_metrics=True)
            c = cmp.counts()
            said.append(
                "changed against the previous baseline: "
                + ", ".join(f"{n} {v}" for v, n in c.items() if n and v != "same")
                + f" ({c['same']} unchanged)"
            )
            if old.meta.get("config_hash") != cur.meta.get("config_hash"):
                said.append(
                    f"config hash {old.meta.get('config_hash')} -> {cur.meta.get('config_hash')}"
                )
        except VbenchError as e:
            said.append(f"the previous baseline was unreadable ({e})")
    else:
        said.append("no previous baseline")
    keep = [c for c in cur.table.columns if cur.column_meta(c)["kind"] != "timing"]
    table = cur.table[keep]
    tmp = path.with_name(path.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    table.to_csv(tmp / f"{results.TABLE}.csv", index=False)
    meta = {k: v for k, v in cur.meta.items() if k not in ("columns",)}
    meta["columns"] = {c: cur.column_meta(c) for c in keep}
    meta["baseline_note"] = "written by vbench check --update-baseline; timing columns left out"
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return said
