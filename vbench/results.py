"""Result folders: a tidy table (Parquet and CSV) plus ``meta.json`` saying how it was made.

One row per sweep point and model, every counter and figure a column, so a result can be
filtered, pivoted and compared with pandas without knowing vbench. ``meta.json`` records what a
reader needs to trust or reproduce it: the config as run and its hash, the seed, versions, the
git commit of vbench, the machine, the cost preset with every figure's provenance, the time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from vbench import __version__
from vbench.errors import VbenchError

TABLE = "results"


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
    }


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


def write(out_dir: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """Write the table and meta.json into ``out_dir`` (created if needed); return the folder."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VbenchError(
            f"cannot create the results folder {out_dir}: {e.strerror}: pass --out DIR"
        ) from None
    df = pd.DataFrame(rows)
    df.to_csv(out_dir / f"{TABLE}.csv", index=False)
    df.to_parquet(out_dir / f"{TABLE}.parquet", index=False)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return out_dir
