"""Result folders: a tidy table (Parquet and CSV) plus ``meta.json`` saying how it was made.

One row per sweep point and model, every counter and figure a column, so a result can be
filtered, pivoted and compared with pandas without knowing vbench. ``meta.json`` records what a
reader needs to trust or reproduce it: the config as run and its hash, the seed, versions, the
git commit of vbench, the machine, the cost preset with every figure's provenance, the time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vbench import __version__
from vbench.errors import VbenchError, reading

TABLE = "results"
HISTOGRAMS = "histograms"  # latency histograms, long form: point, label, class, bucket, count
# The layout of a result folder (table columns, meta.json keys). Bumped on any incompatible
# change; a reader refuses a folder whose version it does not know rather than misread it.
SCHEMA_VERSION = 1
REQUIRED_COLUMNS = ("point", "label", "model")
# a CSV must read back the very floats that were written (baselines are compared exactly):
# pandas 2 needs the round-trip parser asked for; pandas 3 uses it by default (and deprecates
# the argument)
_CSV_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def git_commit() -> dict[str, Any]:
    """The commit of the vbench source in use (and whether it had local changes)."""
    src = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def machine() -> dict[str, Any]:
    return {
        "node": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python_implementation": platform.python_implementation(),
        "cpu_model": _cpu_model(),
        "mem_gib": _mem_total_gib(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20)
    except (OSError, ValueError, IndexError):
        pass
    return None


def fingerprint(m: dict[str, Any] | None = None) -> str:
    """A short hash of what makes wall-clock timings comparable: CPU model, core count, memory,
    OS, architecture and Python implementation (not the host name: CI runners change it)."""
    m = m or machine()
    keys = ("cpu_model", "cpu_count", "mem_gib", "system", "machine", "python_implementation")
    blob = json.dumps({k: m.get(k) for k in keys}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def versions() -> dict[str, str]:
    import numba
    import numpy

    return {
        "vbench": __version__,
        "python": sys.version.split()[0],
        "numba": numba.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
    }


def default_dir(name: str, root: str | Path = "results/runs") -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{name}-{stamp}"


def _atomic(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then rename: a reader never sees a
    half-written file, and an interrupted write leaves the previous one intact."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write a small text file atomically (temporary file, then rename)."""
    _atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def write(out_dir: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """Write the table and meta.json into ``out_dir`` (created if needed); return the folder.

    ``meta.json`` gains the schema version and, per column, its kind, better direction and unit
    (:mod:`vbench.metrics`), so a reader compares every column by the right rule."""
    from vbench.metrics import columns_meta

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VbenchError(
            f"cannot create the results folder {out_dir}: {e.strerror}: pass --out DIR"
        ) from None
    hist = _histogram_table(rows)
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "_hist"} for r in rows])
    meta = {"schema_version": SCHEMA_VERSION, **meta, "columns": columns_meta(list(df.columns))}
    try:
        _atomic(out_dir / f"{TABLE}.csv", lambda p: df.to_csv(p, index=False))
        _atomic(out_dir / f"{TABLE}.parquet", lambda p: df.to_parquet(p, index=False))
        if hist is not None:
            _atomic(out_dir / f"{HISTOGRAMS}.parquet", lambda p: hist.to_parquet(p, index=False))
        _atomic(
            out_dir / "meta.json",
            lambda p: p.write_text(json.dumps(meta, indent=2, default=str) + "\n"),
        )
    except OSError as e:
        raise VbenchError(
            f"cannot write results into {out_dir}: {e.strerror}: free some space or pass --out DIR"
        ) from None
    return out_dir


def _histogram_table(rows: list[dict[str, Any]]) -> pd.DataFrame | None:
    """Every row's latency histogram in long form (non-empty buckets only), with each bucket's
    upper bound in ns, so a reader can draw CDFs without vbench's histogram code."""
    from vbench.histogram import upper_bounds

    uppers = upper_bounds()

    parts = []
    for r in rows:
        for cls, buckets, counts in r.get("_hist", []):
            if len(buckets) == 0:
                continue
            parts.append(
                pd.DataFrame(
                    {
                        "point": r.get("point", 0),
                        "label": r["label"],
                        "class": cls,
                        "bucket": buckets,
                        "upper_ns": uppers[buckets],
                        "count": counts,
                    }
                )
            )
    return pd.concat(parts, ignore_index=True) if parts else None


@dataclass
class ResultSet:
    """A result folder read back: the tidy table and its meta.json."""

    path: Path
    table: pd.DataFrame
    meta: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.path.name))

    @property
    def swept(self) -> list[str]:
        """The sweep parameters: the columns that say which point a row belongs to."""
        return [c for c in self.meta.get("swept") or [] if c in self.table.columns]

    @property
    def labels(self) -> list[str]:
        """Model labels in the config's order (the order a reader wrote them in), then any
        others in table order."""
        present = list(dict.fromkeys(self.table["label"].astype(str)))
        cfg_models = (self.meta.get("config") or {}).get("models") or []
        order = [str(m.get("label", m.get("model"))) for m in cfg_models if isinstance(m, dict)]
        first = [lbl for lbl in order if lbl in present]
        return first + [lbl for lbl in present if lbl not in first]

    def histograms(self) -> pd.DataFrame | None:
        """The latency histograms (point, label, class, bucket, upper_ns, count), if written."""
        f = self.path / f"{HISTOGRAMS}.parquet"
        if not f.is_file():
            return None
        try:
            return pd.read_parquet(f)
        except Exception as e:  # a truncated or edited file
            raise VbenchError(f"{f}: unreadable ({type(e).__name__}): rerun vbench run") from None

    def column_meta(self, column: str) -> dict[str, str]:
        from vbench.metrics import Metric, describe

        known = (self.meta.get("columns") or {}).get(column)
        if known:
            return known
        d = describe(column) or Metric("param", "none", "", "sweep parameter")
        return d.as_dict()


_TABLE_FILES = (f"{TABLE}.parquet", f"{TABLE}.csv")
_REFRESH = "rerun vbench run (or restore the folder as vbench wrote it)"


def load(path: str | Path) -> ResultSet:
    """Read a result folder (or its results.csv/.parquet/meta.json), checking that it is one.

    Every problem is one line naming the file and the fix (VbenchError), never a traceback:
    a missing or truncated file, an unknown schema version, a meta.json or a table edited into
    something vbench would misread (a key column renamed, text in a number column)."""
    p = Path(path)
    if not p.exists():
        raise VbenchError(f"{p}: no such results folder: pass a folder written by vbench run")
    if p.is_file() and p.name not in (*_TABLE_FILES, "meta.json"):
        raise VbenchError(
            f"{p} is a file, not a results folder: pass the folder written by vbench run "
            f"(or its {TABLE}.csv, {TABLE}.parquet or meta.json)"
        )
    folder = p.parent if p.is_file() else p
    meta = _read_meta(folder)
    chosen = p if p.is_file() and p.name != "meta.json" else None
    table = _read_table(folder, chosen)
    _check_table(folder, table, meta)
    return ResultSet(folder, table, meta)


def _read_meta(folder: Path) -> dict[str, Any]:
    """meta.json, checked for the shape every reader relies on."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise VbenchError(
            f"{folder}: no meta.json: not a vbench results folder (or an incomplete one): "
            "pass a folder written by vbench run"
        )
    with reading(meta_file, _REFRESH):
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise VbenchError(f"{meta_file}: not a JSON object: {_REFRESH}")
    version = meta.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise VbenchError(
            f"{folder}: results schema version {version!r}, this vbench reads {SCHEMA_VERSION}: "
            "rerun the sweep with this vbench (or use the vbench that wrote it)"
        )
    expected: dict[str, tuple[type, ...]] = {
        "swept": (list,),
        "config": (dict,),
        "columns": (dict,),
        "git": (dict,),
        "name": (str,),
    }
    for key, types in expected.items():
        value = meta.get(key)
        if value is not None and not isinstance(value, types):
            raise VbenchError(
                f"{meta_file}: {key} is a {type(value).__name__}, not a "
                f"{'JSON object' if types == (dict,) else types[0].__name__}: {_REFRESH}"
            )
    if not all(isinstance(c, str) for c in meta.get("swept") or []):
        raise VbenchError(f"{meta_file}: swept must list column names: {_REFRESH}")
    cfg = meta.get("config") or {}
    for key, typ in (("workload", dict), ("models", list)):
        if cfg.get(key) is not None and not isinstance(cfg[key], typ):
            raise VbenchError(f"{meta_file}: config.{key} has the wrong shape: {_REFRESH}")
    for column, info in (meta.get("columns") or {}).items():
        if not _valid_column_meta(info):
            raise VbenchError(
                f"{meta_file}: columns.{column} is not a column description "
                f"(kind, better, unit, what): {_REFRESH}"
            )
    return meta


def _valid_column_meta(info: Any) -> bool:
    from vbench.metrics import METRIC_KINDS

    return (
        isinstance(info, dict)
        and info.get("kind") in (*METRIC_KINDS, "param", "id")
        and info.get("better") in ("lower", "higher", "none")
        and all(isinstance(info.get(k), str) for k in ("unit", "what"))
    )


def _read_table(folder: Path, chosen: Path | None) -> pd.DataFrame:
    """The table: the file asked for, else the Parquet file, else the CSV.

    A Parquet file that is there but unreadable is an error, not a reason to fall back on the
    CSV quietly: a damaged folder should be noticed (the CSV can still be passed by name)."""
    if chosen is not None:
        f = chosen
    else:
        found = [folder / n for n in _TABLE_FILES if (folder / n).is_file()]
        if not found:
            raise VbenchError(f"{folder}: no {TABLE}.parquet or {TABLE}.csv: {_REFRESH}")
        f = found[0]
    fix = "the file is truncated or was edited; " + _REFRESH
    if f.suffix == ".parquet" and (folder / f"{TABLE}.csv").is_file() and chosen is None:
        fix += f", or pass {folder / TABLE}.csv to read the CSV"
    with reading(f, fix):  # only the parsers run in here: what they raise is the file's fault
        if f.suffix == ".parquet":
            import pyarrow.parquet as pq

            # a damaged string (invalid UTF-8) would only fail later, when a reader touches it
            pq.read_table(f).validate(full=True)
            return pd.read_parquet(f)
        widths = _csv_widths(f)
        table = pd.read_csv(f, **_CSV_FLOATS)
    # pandas pads a short row (a file cut off mid-row, a cell deleted by hand) with missing
    # values without a word, which would then read as data
    for i, n in enumerate(widths[1:]):
        if n != widths[0]:
            raise VbenchError(f"{f}: row {i} has {n} fields, the header {widths[0]}: {fix}")
    return table


def _csv_widths(f: Path) -> list[int]:
    """The number of fields of the header and of every non-blank row of a CSV file."""
    import csv

    with f.open(newline="", encoding="utf-8") as fh:
        return [len(row) for row in csv.reader(fh) if row]


def _check_table(folder: Path, table: pd.DataFrame, meta: dict[str, Any]) -> None:
    """The rows must be what vbench wrote: key columns present and filled, metrics numeric."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise VbenchError(
            f"{folder}: the results table lacks column(s) {', '.join(missing)}: "
            f"it was edited or truncated; {_REFRESH}"
        )
    if table.empty:
        raise VbenchError(f"{folder}: the results table has no rows: {_REFRESH}")
    if not table.columns.is_unique:
        dup = table.columns[table.columns.duplicated()][0]
        raise VbenchError(f"{folder}: the results table has two columns {dup!r}: {_REFRESH}")
    for col in REQUIRED_COLUMNS:
        blank = table[col].isna()
        if blank.any():
            raise VbenchError(
                f"{folder}: row {int(blank.to_numpy().argmax())} has no {col}: "
                f"the table was edited; {_REFRESH}"
            )
    from vbench.metrics import METRIC_KINDS, describe

    known = meta.get("columns") or {}
    for col in table.columns:
        info = known.get(col)
        kind = info["kind"] if info else getattr(describe(str(col)), "kind", None)
        if kind not in METRIC_KINDS:
            continue
        s = table[col]
        if pd.api.types.is_bool_dtype(s):
            bad = s.index[:1]
        elif pd.api.types.is_numeric_dtype(s):
            continue
        else:
            bad = s.index[pd.to_numeric(s, errors="coerce").isna() & s.notna()]
        if len(bad):
            row = table.index.get_loc(bad[0])
            raise VbenchError(
                f"{folder}: column {col!r} must hold numbers but row {row} holds "
                f"{s.loc[bad[0]]!r}: the table was edited; {_REFRESH}"
            )
        table[col] = pd.to_numeric(s)
