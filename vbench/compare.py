"""Comparisons of result sets: models side by side, and a baseline against a current run.

Every verdict follows the column's kind (:mod:`vbench.metrics`):

- **exact** columns are compared by equality: any difference is a change, judged better or
  worse by the column's direction (or just "changed" where no direction is better);
- **modeled** columns are compared with a relative tolerance (``rtol``, default 0: for one seed
  the simulation is deterministic, so equal inputs give bit-identical figures); with several
  seeds per row (replicates), by a bootstrap confidence interval of the relative change of the
  mean, which must lie wholly outside ``±rtol`` to count;
- **timing** columns are compared only between results of the same machine fingerprint (else
  "incomparable"), criterion-style: with at least 3 samples on each side a change counts only if
  a Mann-Whitney U test finds it significant *and* the bootstrap interval of the relative change
  of the median lies wholly outside the noise floor; with fewer samples, outside the noise
  floor reads "changed", never "better" or "worse".

Rows are matched on their label and sweep parameters (the point's identity), never on row
order or point index alone, so a reordered or extended sweep still pairs the right rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vbench.counters import AREAS
from vbench.errors import VbenchError, did_you_mean
from vbench.exits import Stop
from vbench.results import ResultSet, load

VERDICTS = ("same", "better", "worse", "changed", "incomparable")
REPORT_SCHEMA = "vbench.compare/1"
MODELS_SCHEMA = "vbench.compare-models/1"

DEFAULT_METRICS: tuple[str, ...] = (
    "kicks_per_req",
    "interrupts_per_req",
    "vm_exits_per_req",
    "lines_per_req",
    "invalidations_per_req",
    "desc_per_req",
    "lat_p50_ns",
    "lat_p99_ns",
    "requests_per_s",
    "time_total_ns_per_req",
)


@dataclass(frozen=True)
class Policy:
    """How much a modeled or timing figure may move before it counts as a change."""

    rtol: float = 0.0  # modeled: relative tolerance
    noise_floor: float = 0.05  # timing: relative change below which nothing counts
    alpha: float = 0.05  # timing: significance level of the Mann-Whitney U test
    resamples: int = 2000  # bootstrap resamples
    confidence: float = 0.95


# --- selection --------------------------------------------------------------------------------
_WHERE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|<=|>=|=|<|>)\s*(.+?)\s*$")


def _coerce(raw: str, series: pd.Series) -> Any:
    if pd.api.types.is_bool_dtype(series):
        return raw.lower() in ("1", "true", "yes")
    if pd.api.types.is_numeric_dtype(series):
        try:
            return float(raw)
        except ValueError:
            raise VbenchError(
                f"--where: {raw!r} is not a number, but column {series.name!r} is numeric"
            ) from None
    return raw


def select(table: pd.DataFrame, where: list[str] | None) -> pd.DataFrame:
    """Rows matching every ``--where`` condition (``key=value``, ``!=``, ``<``, ``<=``, ``>``,
    ``>=``; a key is any column, e.g. ``model=vbus-ioq`` or ``batch>=16``)."""
    for cond in where or []:
        m = _WHERE.match(cond)
        if not m:
            raise VbenchError(
                f"--where {cond!r}: expected KEY=VALUE (or !=, <, <=, >, >=), e.g. batch=16"
            )
        key, op, raw = m.groups()
        if key not in table.columns:
            raise VbenchError(
                f"--where {cond!r}: no column {key!r}{did_you_mean(key, list(table.columns))}"
            )
        s = table[key]
        v = _coerce(raw, s)
        if op in ("=", "=="):
            mask = s.astype(str) == raw if isinstance(v, str) else s == v
        elif op == "!=":
            mask = s.astype(str) != raw if isinstance(v, str) else s != v
        else:
            if isinstance(v, str):
                raise VbenchError(f"--where {cond!r}: {op} needs a numeric column")
            mask = {"<": s < v, "<=": s <= v, ">": s > v, ">=": s >= v}[op]
        table = table[mask]
    if table.empty:
        raise VbenchError("--where: no rows match: loosen the conditions")
    return table


def _area_columns(cols: list[str]) -> list[str]:
    """The per-area coherence columns present, area by area."""
    return [
        f"{kind}_per_req_{area}"
        for area in AREAS
        for kind in ("lines", "invalidations")
        if f"{kind}_per_req_{area}" in cols
    ]


def metrics_of(rs: ResultSet, asked: list[str] | None) -> list[str]:
    """The metric columns to compare: as asked (checked), else the defaults present."""
    cols = list(rs.table.columns)
    if not asked:
        from vbench.summary import NATIVE_HEADLINE, priority_metrics, sweeps_priority

        defaults = [m for m in DEFAULT_METRICS if m in cols]
        if not defaults:  # a native run: what it measured
            return [m for m in (*NATIVE_HEADLINE, "measured_lat_p50_ns") if m in cols]
        if sweeps_priority(rs.swept):  # the priority figures first
            defaults = [*priority_metrics(cols), *defaults]
        # the config's own headline ([report] metrics) before everything
        report = (rs.meta.get("config") or {}).get("report") or {}
        declared = report.get("metrics") if isinstance(report, dict) else None
        if isinstance(declared, list):
            declared = [m for m in declared if isinstance(m, str) and m in cols]
            defaults = list(dict.fromkeys([*declared, *defaults]))
        # then the areas where some model pays misses or invalidations
        return defaults + [m for m in _area_columns(cols) if (rs.table[m].fillna(0) != 0).any()]
    out = []
    for spec in asked:
        for name in (s.strip() for s in spec.split(",")):
            if not name:
                continue
            if name not in cols:
                raise VbenchError(
                    f"unknown metric {name!r}{did_you_mean(name, cols)}: "
                    "see the columns of results.csv"
                )
            kind = rs.column_meta(name)["kind"]
            if kind not in ("exact", "modeled", "timing"):
                raise VbenchError(f"{name!r} is a {kind} column, not a metric: pick a metric")
            out.append(name)
    return out


def keys_of(rs: ResultSet) -> list[str]:
    """The columns that identify a row across result sets: its label and sweep parameters."""
    return ["label", *rs.swept]


# --- one result set: models side by side -------------------------------------------------------
def default_ref(rs: ResultSet) -> str:
    """The first virtio model's label (the incumbent every other design is measured against)."""
    labels = rs.labels
    models = dict(zip(rs.table["label"].astype(str), rs.table["model"], strict=False))
    for lbl in labels:
        if str(models[lbl]).startswith("virtio"):
            return lbl
    return labels[0]


def side_by_side(
    rs: ResultSet,
    metrics: list[str] | None = None,
    ref: str | None = None,
    where: list[str] | None = None,
) -> pd.DataFrame:
    """Per sweep point and metric, each model's value and its ratio to the reference model,
    then one geometric-mean row per metric (over the points where the ratio is defined)."""
    table = select(rs.table, where)
    mets = metrics_of(rs, metrics)
    present = set(table["label"].astype(str))
    labels = [lbl for lbl in rs.labels if lbl in present]
    ref = default_ref(rs) if ref is None else ref  # an empty --ref names no model: refused
    if ref not in labels:
        raise VbenchError(
            f"--ref {ref!r}: no such model label in the selected rows (labels: {', '.join(labels)})"
        )
    point_keys = [k for k in rs.swept if k in table.columns]
    if "seed" in table.columns and table["seed"].nunique() > 1 and "seed" not in point_keys:
        point_keys.append("seed")
    group_keys = point_keys or ["point"]
    # several rows per point and model (a native run's repetitions): median, min, max, n
    reps = bool(table.groupby([*group_keys, "label"], dropna=False).size().gt(1).any())
    rows = []
    for key, grp in table.groupby(group_keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        by_label = grp.set_index("label")
        for met in mets:
            row: dict[str, Any] = dict(zip(group_keys, key, strict=True))
            row["metric"] = met
            base = _value(by_label, ref, met)
            for lbl in labels:
                row[lbl] = _value(by_label, lbl, met)
                if reps:
                    row[f"{lbl} min"], row[f"{lbl} max"], row[f"{lbl} n"] = _spread(
                        by_label, lbl, met
                    )
            for lbl in labels:
                if lbl != ref:
                    row[f"{lbl}/{ref}"] = _ratio(row[lbl], base)
            rows.append(row)
    out = pd.DataFrame(rows)
    summary = []
    for met in mets:
        row = {k: ("geomean" if i == 0 else "") for i, k in enumerate(group_keys)}
        row["metric"] = met
        sub = out[out["metric"] == met]
        for lbl in labels:
            row[lbl] = float("nan")
        for lbl in labels:
            if lbl != ref:
                row[f"{lbl}/{ref}"] = geomean(sub[f"{lbl}/{ref}"].to_numpy(dtype=float))
        summary.append(row)
    out = pd.concat([out, pd.DataFrame(summary)], ignore_index=True)
    out.attrs["ref"] = ref
    out.attrs["labels"] = labels
    return out


def _values(by_label: pd.DataFrame, label: str, metric: str) -> np.ndarray:
    """A model's finite values of a metric at one point (one per repetition or row)."""
    if label not in by_label.index:
        return np.array([])
    v = np.atleast_1d(np.asarray(by_label.loc[label, metric], dtype=float))
    return v[np.isfinite(v)]


def _value(by_label: pd.DataFrame, label: str, metric: str) -> float:
    """The model's figure at the point: the median over its rows (NaN where none)."""
    v = _values(by_label, label, metric)
    return float(np.median(v)) if v.size else float("nan")


def _spread(by_label: pd.DataFrame, label: str, metric: str) -> tuple[float, float, int]:
    """Min, max and number of a model's values at one point."""
    v = _values(by_label, label, metric)
    return (float(v.min()), float(v.max()), int(v.size)) if v.size else (math.nan, math.nan, 0)


def _ratio(a: float, b: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return float("nan") if not (a == 0 and b == 0) else 1.0
    return a / b


def geomean(ratios: np.ndarray) -> float:
    """Geometric mean of the positive finite ratios (a ratio of 0 or undefined is left out)."""
    r = ratios[np.isfinite(ratios) & (ratios > 0)]
    return float(np.exp(np.mean(np.log(r)))) if r.size else float("nan")


# --- two result sets: baseline against current -------------------------------------------------
@dataclass
class Comparison:
    """The verdict table of a baseline/current comparison and what it was made from."""

    table: pd.DataFrame  # keys..., metric, kind, better, old, new, change, change_pct, verdict
    keys: list[str]
    notes: list[str] = field(default_factory=list)
    config_match: bool = True
    machine_match: bool = True

    def counts(self) -> dict[str, int]:
        vc = self.table["verdict"].value_counts() if len(self.table) else {}
        return {v: int(vc.get(v, 0)) for v in VERDICTS}

    @property
    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["verdict"] == "worse"]


def compare_sets(
    base: ResultSet,
    cur: ResultSet,
    metrics: list[str] | None = None,
    where: list[str] | None = None,
    policy: Policy | None = None,
    all_metrics: bool = False,
) -> Comparison:
    """Match rows by label and sweep parameters; judge every metric by its kind."""
    policy = policy or Policy()
    keys = [k for k in keys_of(cur) if k in base.table.columns]
    notes = []
    if set(keys_of(base)) != set(keys_of(cur)):
        notes.append(
            f"the sweeps differ: baseline swept {base.swept}, current swept {cur.swept}; "
            f"rows matched on {keys}"
        )
    config_match = base.meta.get("config_hash") == cur.meta.get("config_hash")
    if not config_match:
        notes.append(
            f"config hash differs (baseline {base.meta.get('config_hash')}, current "
            f"{cur.meta.get('config_hash')}): rows were matched by label and parameters"
        )
    machine_match = base.meta.get("machine_fingerprint") == cur.meta.get("machine_fingerprint")
    if all_metrics:
        mets = [
            c
            for c in cur.table.columns
            if c in base.table.columns
            and cur.column_meta(c)["kind"] in ("exact", "modeled", "timing")
        ]
    else:
        mets = metrics_of(cur, metrics)
        missing = [m for m in mets if m not in base.table.columns]
        if missing:
            raise VbenchError(
                f"the baseline has no column(s) {', '.join(missing)}: pick metrics both sets have"
            )
    bt = _in_label_order(select(base.table, where) if where else base.table, cur.labels)
    ct = _in_label_order(select(cur.table, where) if where else cur.table, cur.labels)
    bgroups = {k: g for k, g in bt.groupby(keys, sort=False, dropna=False)}
    cgroups = {k: g for k, g in ct.groupby(keys, sort=False, dropna=False)}
    order = list(bgroups) + [k for k in cgroups if k not in bgroups]
    rows = []
    for k in order:
        kt = k if isinstance(k, tuple) else (k,)
        b, c = bgroups.get(k), cgroups.get(k)
        for met in mets:
            meta = cur.column_meta(met)
            row: dict[str, Any] = dict(zip(keys, kt, strict=True))
            row.update(metric=met, kind=meta["kind"], better=meta["better"])
            if b is None or c is None:
                old = _center(b[met]) if b is not None else float("nan")
                new = _center(c[met]) if c is not None else float("nan")
                row.update(old=old, new=new, change=float("nan"), change_pct=float("nan"))
                row["verdict"] = "incomparable"
                row["why"] = "only in the baseline" if c is None else "only in the current set"
                rows.append(row)
                continue
            verdict, why, old, new = judge(
                meta["kind"],
                meta["better"],
                b[met].to_numpy(dtype=float),
                c[met].to_numpy(dtype=float),
                policy,
                machine_match,
            )
            change = new - old if math.isfinite(old) and math.isfinite(new) else float("nan")
            pct = change / abs(old) * 100 if math.isfinite(change) and old != 0 else float("nan")
            row.update(old=old, new=new, change=change, change_pct=pct, verdict=verdict, why=why)
            rows.append(row)
    table = pd.DataFrame(rows)
    return Comparison(table, keys, notes, config_match, machine_match)


def _in_label_order(table: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The rows point by point, the models of a point in the config's order."""
    rank = {lbl: i for i, lbl in enumerate(labels)}
    order = table["label"].astype(str).map(lambda lbl: rank.get(lbl, len(rank)))
    sort = ["point"] if "point" in table.columns else []
    return (
        table.copy()  # a table built column by column is fragmented: pandas warns on assign
        .assign(_order=order)
        .sort_values([*sort, "_order"], kind="stable")
        .drop(columns="_order")
    )


def _center(s: pd.Series) -> float:
    a = s.to_numpy(dtype=float)
    return float(np.mean(a)) if a.size else float("nan")


def _direction(better: str, old: float, new: float) -> str:
    if better == "lower":
        return "better" if new < old else "worse"
    if better == "higher":
        return "better" if new > old else "worse"
    return "changed"


def _same_nan(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def judge(
    kind: str,
    better: str,
    old: np.ndarray,
    new: np.ndarray,
    policy: Policy,
    machine_match: bool = True,
) -> tuple[str, str, float, float]:
    """Verdict, reason, and the two representative values for one metric of one row."""
    if kind == "timing":
        o, n = float(np.median(old)), float(np.median(new))
        if not machine_match:
            return "incomparable", "timings from different machines", o, n
        return _judge_timing(better, old, new, policy) + (o, n)
    o, n = float(np.mean(old)), float(np.mean(new))
    if kind == "exact":
        if _same_nan(np.sort(old), np.sort(new)):
            return "same", "equal", o, n
        if not (math.isfinite(o) and math.isfinite(n)):
            return "changed", "defined on one side only", o, n
        return _direction(better, o, n), "not equal", o, n
    # modeled
    if old.size == 1 and new.size == 1:
        if _same_nan(old, new):
            return "same", "equal", o, n
        if not (math.isfinite(o) and math.isfinite(n)):
            return "changed", "defined on one side only", o, n
        rel = abs(n - o) / abs(o) if o != 0 else math.inf
        if rel <= policy.rtol:
            return "same", f"within ±{policy.rtol:.1%}", o, n
        return _direction(better, o, n), f"{(n - o) / abs(o) if o else math.inf:+.2%}", o, n
    lo, hi = bootstrap_rel_change(old, new, np.mean, policy)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "changed", "interval undefined", o, n
    if lo > policy.rtol or hi < -policy.rtol:
        return _direction(better, o, n), f"{policy.confidence:.0%} CI [{lo:+.2%}, {hi:+.2%}]", o, n
    return (
        "same",
        f"{policy.confidence:.0%} CI [{lo:+.2%}, {hi:+.2%}] within ±{policy.rtol:.1%}",
        o,
        n,
    )


def _judge_timing(better: str, old: np.ndarray, new: np.ndarray, p: Policy) -> tuple[str, str]:
    o, n = float(np.median(old)), float(np.median(new))
    if not (math.isfinite(o) and math.isfinite(n)) or o == 0:
        return "incomparable", "no valid timing"
    rel = (n - o) / abs(o)
    if old.size < 3 or new.size < 3:
        if abs(rel) <= p.noise_floor:
            return "same", f"{rel:+.1%}, within the ±{p.noise_floor:.0%} noise floor"
        return "changed", f"{rel:+.1%} from < 3 samples: no significance test possible"
    from scipy.stats import mannwhitneyu

    pval = float(mannwhitneyu(old, new, alternative="two-sided").pvalue)
    lo, hi = bootstrap_rel_change(old, new, np.median, p)
    outside = lo > p.noise_floor or hi < -p.noise_floor
    why = f"p={pval:.3g}, {p.confidence:.0%} CI [{lo:+.1%}, {hi:+.1%}], floor ±{p.noise_floor:.0%}"
    if pval < p.alpha and outside:
        return _direction(better, o, n), why
    return "same", why


def bootstrap_rel_change(
    old: np.ndarray, new: np.ndarray, stat: Any, policy: Policy
) -> tuple[float, float]:
    """Percentile-bootstrap interval of stat(new)/stat(old) - 1 (deterministic: fixed seed)."""
    rng = np.random.default_rng(0)
    o = old[np.isfinite(old)]
    n = new[np.isfinite(new)]
    if o.size == 0 or n.size == 0:
        return float("nan"), float("nan")
    bo = stat(rng.choice(o, size=(policy.resamples, o.size)), axis=1)
    bn = stat(rng.choice(n, size=(policy.resamples, n.size)), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = bn / bo - 1.0
    rel = rel[np.isfinite(rel)]
    if rel.size == 0:
        return float("nan"), float("nan")
    a = (1 - policy.confidence) / 2
    return float(np.quantile(rel, a)), float(np.quantile(rel, 1 - a))


# --- machine-readable forms ----------------------------------------------------------------------
def to_json(cmp: Comparison, base: ResultSet, cur: ResultSet, policy: Policy) -> dict[str, Any]:
    """The versioned JSON report (schema ``vbench.compare/1``, documented in docs/results-schema.md)."""
    return {
        "schema": REPORT_SCHEMA,
        "baseline": _set_info(base),
        "current": _set_info(cur),
        "config_match": cmp.config_match,
        "machine_match": cmp.machine_match,
        "policy": {
            "modeled_rtol": policy.rtol,
            "timing_noise_floor": policy.noise_floor,
            "timing_alpha": policy.alpha,
            "confidence": policy.confidence,
        },
        "keys": cmp.keys,
        "summary": cmp.counts(),
        "notes": cmp.notes,
        "rows": _records(cmp.table),
    }


def side_by_side_json(df: pd.DataFrame, rs: ResultSet) -> dict[str, Any]:
    """The versioned JSON of one result set's models side by side (``vbench.compare-models/1``)."""
    return {
        "schema": MODELS_SCHEMA,
        "results": _set_info(rs),
        "ref": df.attrs.get("ref"),
        "labels": df.attrs.get("labels"),
        "rows": _records(df),
    }


def _set_info(rs: ResultSet) -> dict[str, Any]:
    m = rs.meta
    return {
        "path": str(rs.path),
        "name": m.get("name"),
        "config_hash": m.get("config_hash"),
        "git": m.get("git"),
        "machine_fingerprint": m.get("machine_fingerprint"),
        "finished": m.get("finished"),
    }


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({k: _jsonable(v) for k, v in rec.items()})
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def gab_json(rs: ResultSet, metrics: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """github-action-benchmark's custom formats: ``customSmallerIsBetter`` and
    ``customBiggerIsBetter`` entries (``name``, ``unit``, ``value``, ``extra``), one per row and
    metric with a better direction, ``name`` saying the model and the sweep point. Each list is
    the content of one file given to the action with that ``tool``."""
    mets = metrics_of(rs, metrics)
    out: dict[str, list[dict[str, Any]]] = {"customSmallerIsBetter": [], "customBiggerIsBetter": []}
    for rec in rs.table.to_dict(orient="records"):
        point = ",".join(f"{k}={rec[k]}" for k in rs.swept)
        for met in mets:
            meta = rs.column_meta(met)
            v = _jsonable(rec[met])
            if v is None or meta["better"] == "none":
                continue
            tool = "customSmallerIsBetter" if meta["better"] == "lower" else "customBiggerIsBetter"
            out[tool].append(
                {
                    "name": f"{rec['label']} {met}" + (f" [{point}]" if point else ""),
                    "unit": meta["unit"],
                    "value": v,
                    "extra": f"{meta['kind']} metric; {meta['what']}",
                }
            )
    return out


# --- one result set: the simulation against the native measurement ------------------------------
ENGINES_SCHEMA = "vbench.compare-engines/1"

#: (simulated column, measured column): what the simulation predicts beside what the native
#: engine measured on the same point. The simulation's figures are modeled from counts and a
#: preset; the native ones are wall-clock measurements (a column never holds both kinds).
ENGINE_PAIRS: tuple[tuple[str, str], ...] = (
    ("requests_per_s", "measured_requests_per_s"),
    ("kicks_per_req", "measured_kicks_per_req"),
    ("interrupts_per_req", "measured_interrupts_per_req"),
    ("lat_p50_ns", "measured_lat_p50_ns"),
    ("lat_p99_ns", "measured_lat_p99_ns"),
)
_ENGINE_KEY = "engine.kind"


def engine_of(table: pd.DataFrame) -> pd.Series | None:
    """Each row's engine ("sim" or "native"): the ``engine`` id column where sweep wrote it,
    else the swept ``engine.kind``; None when the table says nothing about engines."""
    for col in ("engine", _ENGINE_KEY):
        if col in table.columns:
            return table[col].astype(str)
    return None


def has_both_engines(rs: ResultSet) -> bool:
    """True when the result set holds rows of both engines (``vbench compare`` then shows the
    simulation against the measurement by default)."""
    eng = engine_of(rs.table)
    return eng is not None and {"sim", "native"} <= set(eng)


def sim_vs_native(
    rs: ResultSet,
    metrics: list[str] | None = None,
    where: list[str] | None = None,
    by_mode: bool = True,
) -> pd.DataFrame:
    """Per point, model, line-transfer mode and metric: the simulation's prediction, the native
    measurement and their ratio ``sim/native`` (1 = the prediction is exact; 1.3 = it promises
    30 % more).

    Rows of the two engines are paired on the label and every sweep parameter except
    ``engine.kind``. A native point has one row per repetition (``rep``). With ``by_mode``
    (the default) its repetitions are grouped by the line-transfer mode their probes saw
    (:mod:`vbench.line_modes`), and each group is held against the point simulated afresh at
    that mode's figure: the host's placement of the vCPUs moves native throughput 3-5x, and a
    single price compares half the repetitions with a machine they did not run on. Without
    probes (older results), or without ``by_mode``, all repetitions form one group against
    the simulation as it was run. ``line_mode`` names the group, ``sim_line_ns`` the line
    figure its simulated figure was priced at. A group's native figure is the median over its
    repetitions, shown with the min and max; a point run by one engine only keeps the other
    side empty. The last row per metric, keyed ``"geomean"``, holds the geometric mean of the
    ratios and, in ``reps``, how many pairs lie within ±30 %.
    """
    table = select(rs.table, where)
    eng = engine_of(table)
    if eng is None or not {"sim", "native"} <= set(eng):
        raise VbenchError(
            "--engines: this result set does not hold both engines: run a config that sweeps "
            'engine.kind = ["sim", "native"] (e.g. configs/validate.toml)'
        )
    pairs = _engine_pairs(metrics)
    keys = ["label", *[k for k in rs.swept if k not in (_ENGINE_KEY, "rep")]]
    keys = [k for k in keys if k in table.columns]
    nat = table[eng == "native"]
    every = engine_of(rs.table)  # the modes come from all the run's probes, not a selection
    pricing = _Pricing(rs, rs.table[every == "native"] if every is not None else nat, by_mode)
    groups_sim = dict(_groups(table[eng == "sim"], keys))
    groups_nat = dict(_groups(nat, keys))
    rows: list[dict[str, Any]] = []
    for key in dict.fromkeys([*groups_sim, *groups_nat]):
        s, n = groups_sim.get(key), groups_nat.get(key)
        model = (s if s is not None else n)["model"].iloc[0] if "model" in table.columns else ""
        for line, line_ns, reps, sim in pricing.groups(s, n, str(key[0])):
            head = {**dict(zip(keys, key, strict=True)), "model": model}
            rows += [_engine_row(head, p, line, line_ns, reps, sim) for p in pairs]
    out = pd.DataFrame(rows)
    out = pd.concat([out, _engine_summary(out, pairs, keys)], ignore_index=True)
    out.attrs.update(keys=keys, notes=pricing.notes, line_modes=pricing.modes_words())
    return out


def _engine_row(
    head: dict[str, Any],
    pair: tuple[str, str],
    line: str,
    line_ns: float,
    reps: pd.DataFrame | None,
    sim: pd.DataFrame | None,
) -> dict[str, Any]:
    """One metric of one group of repetitions beside the simulation priced for them."""
    sim_col, nat_col = pair
    nv = reps[nat_col].to_numpy(dtype=float) if reps is not None and nat_col in reps else None
    nv = nv[np.isfinite(nv)] if nv is not None else np.array([])
    row = {**head, "metric": sim_col, "line_mode": line, "sim_line_ns": line_ns}
    row["sim"] = _median(sim, sim_col)
    row["native"] = float(np.median(nv)) if nv.size else float("nan")
    row["native_min"] = float(nv.min()) if nv.size else float("nan")
    row["native_max"] = float(nv.max()) if nv.size else float("nan")
    row["reps"] = int(nv.size)
    row["sim/native"] = _ratio(row["sim"], row["native"])
    return row


def _engine_summary(
    out: pd.DataFrame, pairs: list[tuple[str, str]], keys: list[str]
) -> pd.DataFrame:
    """Per metric: the geometric mean of the ratios and how many lie within ±30 %."""
    summary = []
    for sim_col, _ in pairs:
        ratios = out.loc[out["metric"] == sim_col, "sim/native"].to_numpy(dtype=float)
        row = {k: ("geomean" if i == 0 else "") for i, k in enumerate(keys)}
        finite = ratios[np.isfinite(ratios)]
        nan = float("nan")
        row.update(model="", metric=sim_col, line_mode="", sim_line_ns=nan, sim=nan)
        row.update(native=nan, native_min=nan, native_max=nan)
        row["reps"] = int(np.sum(np.abs(finite - 1.0) <= 0.3))
        row["sim/native"] = geomean(ratios)
        summary.append(row)
    return pd.DataFrame(summary)


class _Pricing:
    """How each group of native repetitions is priced: at its line-transfer mode, re-simulated
    (:mod:`vbench.line_modes`), or, without probes or ``by_mode``, as the simulation ran."""

    def __init__(self, rs: ResultSet, native: pd.DataFrame, by_mode: bool) -> None:
        from vbench import line_modes as LM

        self.notes: list[str] = []
        self.modes: list[Any] = []
        self.resim: Any = None
        self._lines: list[Any] = []
        self._native = native
        if by_mode and LM.has_probes(native):
            probes = native[list(LM.PROBES)].to_numpy(dtype=float)
            self.modes = LM.probe_modes(probes)
            self._lines = LM.rep_modes(native, self.modes)
            self.resim = LM.Resimulator(rs.meta)
            self.notes += self.resim.notes
        self._as_run = LM.recorded_line_ns(rs.meta)

    def modes_words(self) -> str:
        """The modes in words (empty without probes)."""
        from vbench.native.modes import describe

        return describe(self.modes) if self.modes else ""

    def _sim_at(self, s: pd.DataFrame | None, label: str, line_ns: float) -> pd.DataFrame | None:
        """The point re-simulated at ``line_ns`` (None: cannot be, no simulated point)."""
        if s is None or "point" not in s or self.resim is None:
            return None
        row = self.resim.row(int(s["point"].iloc[0]), label, line_ns)
        return pd.DataFrame([row]) if row is not None else None

    def groups(
        self, s: pd.DataFrame | None, n: pd.DataFrame | None, label: str
    ) -> list[tuple[str, float, pd.DataFrame | None, pd.DataFrame | None]]:
        """(line mode, figure the simulation is priced at, the group's repetitions, the
        simulated rows) for every group of the point's repetitions."""
        from vbench import line_modes as LM

        if n is None or not self._lines:
            return [("all", self._as_run, n, s)]
        where = pd.Series(self._lines, index=self._native.index).loc[n.index]
        out: list[tuple[str, float, pd.DataFrame | None, pd.DataFrame | None]] = []
        for mode in [*self.modes, LM.MIXED, LM.UNPROBED]:
            reps = n[[m == mode for m in where]]
            if not len(reps):
                continue
            if mode == LM.MIXED:  # moved during the run: no single price is right
                out.append((LM.MIXED, math.nan, reps, None))
            elif mode == LM.UNPROBED:
                out.append((LM.UNPROBED, self._as_run, reps, s))
            else:
                sim = self._sim_at(s, label, mode.value)
                name = LM.mode_name(mode)
                out.append(
                    (name, mode.value, reps, sim)
                    if sim is not None
                    else (name, self._as_run, reps, s)
                )
        return out


def _engine_pairs(metrics: list[str] | None) -> list[tuple[str, str]]:
    """The pairs asked for by either name (``lat_p50_ns`` or ``measured_lat_p50_ns``)."""
    if not metrics:
        return list(ENGINE_PAIRS)
    by_name = {n: p for p in ENGINE_PAIRS for n in p}
    out = []
    for spec in metrics:
        for name in (s.strip() for s in spec.split(",")):
            if not name:
                continue
            if name not in by_name:
                raise VbenchError(
                    f"--engines: no simulated/measured pair for metric {name!r}"
                    f"{did_you_mean(name, [p[0] for p in ENGINE_PAIRS], list_all=True)}"
                )
            out.append(by_name[name])
    return list(dict.fromkeys(out))


def _groups(table: pd.DataFrame, keys: list[str]) -> list[tuple[tuple[Any, ...], pd.DataFrame]]:
    out = []
    for key, grp in table.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        # a model option swept for another model is NaN on this model's rows; NaN != NaN, so
        # the two engines' keys would never meet: None stands for "not applicable" instead
        out.append((tuple(None if _isnan(v) else v for v in key), grp))
    return out


def _isnan(v: Any) -> bool:
    return isinstance(v, float | np.floating) and math.isnan(v)


def _median(grp: pd.DataFrame | None, col: str) -> float:
    """The median of a column over a group's rows (one row for a sim point, or several
    seeds); NaN when the group or the column is missing."""
    if grp is None or col not in grp:
        return float("nan")
    v = grp[col].to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


def sim_vs_native_json(df: pd.DataFrame, rs: ResultSet) -> dict[str, Any]:
    """The versioned JSON of :func:`sim_vs_native` (``vbench.compare-engines/1``)."""
    return {
        "schema": ENGINES_SCHEMA,
        "results": _set_info(rs),
        "keys": df.attrs.get("keys"),
        "pairs": [list(p) for p in ENGINE_PAIRS],
        "line_modes": df.attrs.get("line_modes") or None,
        "rows": _records(df),
    }


# --- the command: what ``vbench compare`` shows --------------------------------------------------
FORMATS = ("table", "markdown", "json", "csv", "gab-json")


@dataclass
class Report:
    """What ``vbench compare`` shows: a JSON ``document``, or a ``table`` with its ``title``
    (``verdicts``: its verdict column is coloured); the ``notes`` for stderr; and, for two
    result sets, the verdict ``counts`` that decide the exit code."""

    document: dict[str, Any] | None = None
    table: pd.DataFrame | None = None
    title: str = ""
    verdicts: bool = False
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] | None = None

    @property
    def worse(self) -> int:
        """Values that got worse (two result sets; 0 for one): ``vbench compare`` exits 1."""
        return (self.counts or {}).get("worse", 0)


def run(
    paths: list[Path],
    metrics: list[str] | None = None,
    where: list[str] | None = None,
    ref: str | None = None,
    fmt: str = "table",
    policy: Policy | None = None,
    engines: bool | None = None,
    show_all: bool = False,
    by_mode: bool = True,
) -> Report:
    """``vbench compare`` without its command line: one results folder shows its models side by
    side (or, with ``engines``, by default when it holds both, the simulation beside the
    native measurement); two, BASELINE and CURRENT, show what changed, judged by ``policy``:
    the rows whose verdict is not "same" (every row with ``show_all``, and always in JSON).

    ``fmt`` chooses a JSON document (json, gab-json) or a table (table, markdown, csv: the
    caller renders it). ``by_mode`` (``--engines``): each native repetition against the
    simulation at its line-transfer mode; False, every one at the preset's figure. Arguments
    that contradict each other raise :class:`Stop` (exit 2)."""
    if fmt not in FORMATS:
        raise Stop(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if len(paths) not in (1, 2):
        raise Stop("compare takes one results folder, or two: BASELINE CURRENT")
    if engines and len(paths) == 2:
        raise Stop("--engines shows one result set: vbench compare RESULTS --engines")
    sets = [load(p) for p in paths]
    if len(sets) == 1:
        return _one_set(sets[0], metrics, where, ref, fmt, engines, by_mode)
    if fmt == "gab-json":
        raise Stop(
            "--format gab-json exports one result set: vbench compare RESULTS --format gab-json"
        )
    base, cur = sets
    policy = policy or Policy()
    cmp = compare_sets(base, cur, metrics, where, policy)
    if fmt == "json":
        doc = to_json(cmp, base, cur, policy)
        return Report(document=doc, notes=cmp.notes, counts=cmp.counts())
    title = f"{base.name} → {cur.name}"
    table, notes = cmp.table, list(cmp.notes)
    if not show_all and len(table):
        table = table[table["verdict"] != "same"]
        hidden = len(cmp.table) - len(table)
        if hidden:
            notes.append(f"{hidden} unchanged value(s) not shown: --all shows every row")
    return Report(table=table, title=title, verdicts=True, notes=notes, counts=cmp.counts())


def _one_set(
    rs: ResultSet,
    metrics: list[str] | None,
    where: list[str] | None,
    ref: str | None,
    fmt: str,
    engines: bool | None,
    by_mode: bool = True,
) -> Report:
    """One result set: its models side by side, or the simulation beside the measurement
    (``by_mode``: each group of native repetitions at its line-transfer mode)."""
    if fmt == "gab-json":
        return Report(document=gab_json(rs, metrics))
    if engines or (engines is None and has_both_engines(rs)):
        df = sim_vs_native(rs, metrics, where, by_mode)
        notes = list(df.attrs.get("notes") or [])
        if fmt == "json":
            return Report(document=sim_vs_native_json(df, rs), notes=notes)
        title = f"{rs.name}: simulation (sim) against native measurement"
        if df.attrs.get("line_modes"):
            title += (
                f"; line-transfer modes of the probes: {df.attrs['line_modes']}; each group "
                "of repetitions against the simulation at its mode (sim_line_ns)"
            )
        return Report(table=df, title=title, notes=notes)
    df = side_by_side(rs, metrics, ref, where)
    if fmt == "json":
        return Report(document=side_by_side_json(df, rs))
    return Report(table=df, title=f"{rs.name}: models side by side (ratios to {df.attrs['ref']})")
