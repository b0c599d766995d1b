"""Run a validated :class:`~vbench.config.Plan`: every point, every model, in parallel processes.

Each point generates its workload once (from the point's seed) and runs every model over it, so
rows of one point are paired. Rows come back as they finish; a failing point is recorded and
the others still run, so nothing already computed is lost.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from vbench.config import Plan, Point


@dataclass
class SweepOutcome:
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)  # (point index, message)
    interrupted: bool = False


def run_point(point: Point) -> list[dict[str, Any]]:
    """All models of one point over one shared workload; one tidy row per model."""
    from vbench.simulation import run_point as run_models
    from vbench.workload import generate

    wl = generate(point.workload, point.seed)
    rows = run_models(point.models, wl, point.engine, point.preset)
    head: dict[str, Any] = {"point": point.index}
    for k, v in point.params.items():
        head[k] = v if isinstance(v, int | float | str | bool) else str(v)
    fp = wl.fingerprint()
    return [{**head, **row, "seed": point.seed, "workload_fingerprint": fp} for row in rows]


def _run_point_safe(point: Point) -> tuple[int, list[dict[str, Any]] | None, str | None]:
    from vbench.errors import InvariantError, VbenchError

    try:
        return point.index, run_point(point), None
    except (InvariantError, VbenchError) as e:
        return point.index, None, str(e)


def _warm_one(label: str, mdef: Any, opts: Any, point: Point) -> None:
    from vbench.simulation import run_model
    from vbench.workload import generate

    small = point.workload.model_copy(update={"requests": 8})
    run_model(label, mdef, opts, generate(small, point.seed), point.engine, point.preset)


def warm_up(plan: Plan, jobs: int = 1) -> None:
    """Compile (or load from cache) every model's engine once, before starting workers.

    With ``jobs > 1`` the models compile in parallel processes (each writes its own entries of
    the on-disk cache), which is what makes a cold start on a small machine tolerable."""
    todo = {}
    for point in plan.points:
        for label, mdef, opts in point.models:
            todo.setdefault(mdef.name, (label, mdef, opts, point))
    jobs = max(1, min(jobs, len(todo), os.cpu_count() or 1))
    if jobs == 1:
        for args in todo.values():
            _warm_one(*args)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for f in [pool.submit(_warm_one, *args) for args in todo.values()]:
            f.result()


def run_plan(
    plan: Plan,
    jobs: int = 1,
    on_point: Callable[[int, str | None], None] | None = None,
) -> SweepOutcome:
    """Run every point; ``on_point(index, error)`` is called as each one finishes."""
    out = SweepOutcome()
    jobs = max(1, min(jobs, len(plan.points), os.cpu_count() or 1))
    try:
        if jobs == 1:
            for p in plan.points:
                idx, rows, err = _run_point_safe(p)
                _collect(out, idx, rows, err, on_point)
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(_run_point_safe, p) for p in plan.points]
                try:
                    for f in as_completed(futures):
                        idx, rows, err = f.result()
                        _collect(out, idx, rows, err, on_point)
                except KeyboardInterrupt:
                    for f in futures:
                        f.cancel()
                    raise
    except KeyboardInterrupt:
        out.interrupted = True
    out.rows.sort(key=lambda r: (r["point"], r["label"]))
    return out


def _collect(out: SweepOutcome, idx: int, rows: Any, err: str | None, cb: Any) -> None:
    if rows is not None:
        out.rows.extend(rows)
    if err is not None:
        out.failures.append((idx, err))
    if cb is not None:
        cb(idx, err)


def meta_of(
    plan: Plan,
    config: Any,
    overrides: list[str],
    outcome: SweepOutcome,
    started: str,
    finished: str,
) -> dict[str, Any]:
    """What a result folder's meta.json says about how it was made."""
    from vbench import results

    status = (
        "interrupted" if outcome.interrupted else ("failed" if outcome.failures else "complete")
    )
    return {
        "name": plan.name,
        "config_file": str(config),
        "config": plan.raw,
        "config_hash": plan.config_hash,
        "overrides": overrides,
        "seed": plan.raw.get("seed", 1),
        "swept": plan.swept,
        "points": len(plan.points),
        "status": status,
        "failures": [{"point": i, "error": e} for i, e in outcome.failures],
        "started": started,
        "finished": finished,
        "versions": results.versions(),
        "git": results.git_commit(),
        "machine": results.machine(),
        "machine_fingerprint": results.fingerprint(),
        "presets": {p.preset.name: p.preset.provenance() for p in plan.points[:1]},
        "columns_doc": "see README: Result columns",
    }
