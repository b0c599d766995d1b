"""Where the report's numbers come from: vbench's version and commit, every config with its
file hash and the hash of the config as run, every preset figure with its tag, range and
source, the machine and the date. Read from the result folders' meta.json (what actually
ran), not recomputed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd


def file_hash(path: Path) -> str:
    """sha256 of a config file's bytes (the file a reader can check out)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def configs_table(runs: dict[str, tuple[Any, Path]]) -> pd.DataFrame:
    """Per experiment: its config file, the file's hash, the hash of the config as run (after
    the report's overrides), the overrides, and the results folder."""
    rows = []
    for key, (result_set, config) in runs.items():
        meta = result_set.meta
        rows.append(
            {
                "experiment": key,
                "config": str(config.relative_to(config.parents[2])),
                "file sha256": file_hash(config)[:16],
                "as run sha256": str(meta.get("config_hash", ""))[:16],
                "overrides": " ".join(meta.get("overrides") or []) or "none",
                "results": result_set.path.name,
            }
        )
    return pd.DataFrame(rows)


def presets_table(metas: list[dict[str, Any]]) -> pd.DataFrame:
    """Every figure of every preset the experiments ran with: value, tag, range and source."""
    rows = []
    seen: set[tuple[str, str]] = set()
    for meta in metas:
        for preset, figures in (meta.get("presets") or {}).items():
            for name, figure in (figures.get("figures") or figures).items():
                if (preset, name) in seen or not isinstance(figure, dict):
                    continue
                seen.add((preset, name))
                rows.append(
                    {
                        "preset": preset,
                        "figure": name,
                        "value": figure.get("value"),
                        "tag": figure.get("tag"),
                        "range": f"{figure.get('low', '')}-{figure.get('high', '')}",
                        "source": figure.get("source"),
                    }
                )
    return pd.DataFrame(rows)


def summary(
    metas: list[dict[str, Any]], started: str, finished: str, seconds: float
) -> dict[str, str]:
    """vbench's version and commit, the machine, the date and how long the report took."""
    from vbench import results

    first = metas[0] if metas else {}
    versions = first.get("versions") or results.versions()
    git = first.get("git") or results.git_commit()
    machine = first.get("machine") or results.machine()
    dirty = " (with local changes)" if git.get("dirty") else ""
    return {
        "vbench": str(versions.get("vbench")),
        "commit": f"{git.get('commit')}{dirty}",
        "python / numba / numpy / pandas": " / ".join(
            str(versions.get(k)) for k in ("python", "numba", "numpy", "pandas")
        ),
        "machine": f"{machine.get('cpu_model')}, {machine.get('cpu_count')} CPUs, "
        f"{machine.get('mem_gib')} GiB, {machine.get('system')} {machine.get('release')}",
        "started (UTC)": started,
        "finished (UTC)": finished,
        "wall time": f"{seconds:.0f} s",
    }
