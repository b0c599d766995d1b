"""Run a validated :class:`~vbench.config.Plan`: every point, every model, in parallel processes.

Each point generates its workload once (from the point's seed) and runs every model over it, so
rows of one point are paired. Rows come back as they finish; a failing point is recorded and
the others still run, so nothing already computed is lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from vbench.config import Plan, Point
from vbench.errors import VbenchError
from vbench.journal import Interrupted, Journal, interrupt_handlers, point_key, signals_held


@dataclass
class Failure:
    """A point that did not give rows: ``kind`` is "invariant" (a model or the engine broke a
    protocol invariant: a vbench bug), "verify" (two runs of the point differed) or "error"."""

    point: int
    kind: str
    message: str


@dataclass
class SweepOutcome:
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    interrupted: int = 0  # the exit code of the signal that stopped the sweep (130, 143), or 0
    resumed: int = 0  # points whose rows came from the journal
    write_error: str | None = None  # the journal could not be written: the sweep stopped


def run_point(point: Point) -> list[dict[str, Any]]:
    """All models of one point over one shared workload; one tidy row per model."""
    from vbench.config import needs_for
    from vbench.simulation import WINDOW
    from vbench.workload import WorkloadStream, generate

    native = point.engine.kind == "native"
    spec = point.workload
    if native:
        from vbench.native.runner import run_point as run_models

        rows = run_models(point.models, generate(spec, point.seed), point.engine, point.preset)
    else:
        from vbench.simulation import run_point as run_models

        # a run too long to hold is drawn chunk by chunk, each model afresh (same requests)
        wl = (
            generate(spec, point.seed)
            if spec.requests <= WINDOW
            else WorkloadStream(spec, point.seed)
        )
        rows = run_models(point.models, wl, point.engine, point.preset, needs_for(spec))
    head: dict[str, Any] = {"point": point.index}
    for k, v in point.params.items():
        head[k] = v if isinstance(v, int | float | str | bool) else str(v)
    tail = {"seed": point.seed, "engine": point.engine.kind}
    return [{**head, **row, **tail} for row in rows]


def _run_point_safe(
    point: Point, verify: bool = False
) -> tuple[int, list[dict[str, Any]] | None, Failure | None]:
    from vbench.errors import InvariantError, VbenchError

    try:
        rows = run_point(point)
        if verify:
            problem = _verify(point, rows)
            if problem:
                return point.index, None, Failure(point.index, "verify", problem)
        return point.index, rows, None
    except InvariantError as e:
        return point.index, None, Failure(point.index, "invariant", str(e))
    except VbenchError as e:
        return point.index, None, Failure(point.index, "error", str(e))


def _verify(point: Point, rows: list[dict[str, Any]]) -> str | None:
    """Run the point again; every simulated row's event digest must be the same. A native run
    measures, it does not replay: it has no digest and is not run twice."""
    if point.engine.kind != "sim":
        return None
    again = {r["label"]: r.get("event_digest") for r in run_point(point)}
    for r in rows:
        first, second = r.get("event_digest"), again.get(r["label"])
        if first and first != second:
            return (
                f"point {point.index}, {r['label']}: the event sequence differs between two "
                f"runs (digest {first} vs {second}): the simulation is not deterministic"
            )
    return None


def _warm_one(label: str, mdef: Any, opts: Any, point: Point) -> None:
    from vbench.workload import generate

    small = point.workload.model_copy(update={"requests": 8})
    wl = generate(small, point.seed)
    if point.engine.kind == "native":
        from vbench.native.runner import compile_loops, refuse

        try:
            refuse(mdef, opts, wl, label)
        except VbenchError:
            return  # the point itself reports it, with the sweep's failure handling
        compile_loops(mdef, opts, wl, point.engine)
        return
    from vbench.simulation import run_model

    run_model(label, mdef, opts, wl, point.engine, point.preset)


def models_to_warm(plan: Plan) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Each (engine, model) of the plan once, with the arguments :func:`_warm_one` takes."""
    todo: dict[tuple[str, str], tuple[Any, ...]] = {}
    for point in plan.points:
        for label, mdef, opts in point.models:
            todo.setdefault((point.engine.kind, mdef.name), (label, mdef, opts, point))
    return todo


def warm_up(plan: Plan, jobs: int = 1, on_model: Callable[[str], None] | None = None) -> None:
    """Compile (or load from cache) every model's engine once, before starting workers.

    With ``jobs > 1`` the models compile in parallel processes (numba's cache saves are locked,
    see :func:`vbench.jit.lock_cache_saves`), which is what makes a cold start on a small
    machine tolerable. A native point's two loops are compiled here too (and again, from the
    cache, by :mod:`vbench.native.runner` before its threads start). ``on_model`` is told
    each model's name (and its engine) as it starts compiling."""
    todo = models_to_warm(plan)
    jobs = max(1, min(jobs, len(todo), os.cpu_count() or 1))
    tell = on_model or (lambda _name: None)
    if jobs == 1:
        for (kind, name), args in todo.items():
            tell(f"{name} ({kind})")
            _warm_one(*args)
        return
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init)
    try:
        futures = []
        for (kind, name), args in todo.items():
            tell(f"{name} ({kind})")
            futures.append(pool.submit(_warm_one, *args))
        for f in futures:
            f.result()
    except BaseException:
        _stop_workers(pool)
        raise
    pool.shutdown(wait=True)


def _worker_init() -> None:
    """Workers leave Ctrl-C to the parent (which stops them), so a terminal's SIGINT to the
    whole process group prints no traceback per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and kill what runs: an interrupted sweep leaves no worker."""
    pool.shutdown(wait=False, cancel_futures=True)
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(5)


def useful_jobs(requested: int, points: int, native: bool) -> tuple[int, str | None]:
    """The processes worth starting for ``points`` points, and why, when fewer than asked:
    never more than the points, nor than the CPUs, and one for a native run (which owns two
    cores: nothing else may run beside it)."""
    cpus = os.cpu_count() or 1
    jobs = 1 if native else max(1, min(requested, points or 1, cpus))
    if jobs >= requested:
        return requested, None
    if native:
        why = 'a native run (engine.kind = "native") owns two cores, so points run one at a time'
    elif jobs == points:
        why = f"the sweep has {points} point(s) to run"
    else:
        why = f"this machine has {cpus} CPU(s)"
    return jobs, f"--jobs {requested}: using {jobs}, the most that helps: {why}"


def run_plan(
    plan: Plan,
    jobs: int = 1,
    on_point: Callable[[int, Failure | None], None] | None = None,
    journal: Journal | None = None,
    verify: bool = False,
    cluster: Any = None,
) -> SweepOutcome:
    """Run every point; ``on_point(index, failure)`` is called as each one finishes.

    ``cluster``, a connected :class:`vbench.cluster.Session`, runs the points on its workers
    instead of ``jobs`` local processes; the journal and the outcome are the same.

    With a journal, points it already holds are taken from it, and every point that finishes
    is appended to it at once. A signal (SIGINT, SIGTERM) stops the sweep cleanly: workers are
    killed, nothing finished is lost, ``outcome.interrupted`` holds the exit code."""
    out = SweepOutcome()
    todo = []
    keys = {p.index: point_key(p.raw, p.seed) for p in plan.points}
    for p in plan.points:
        rows = journal.rows_for(keys[p.index], p.index) if journal else None
        if rows is None:
            todo.append(p)
            continue
        out.resumed += 1
        _collect(out, p.index, rows, None, on_point)
    jobs, _ = useful_jobs(jobs, len(todo), any(p.engine.kind == "native" for p in todo))

    def finished(idx: int, rows: Any, failure: Failure | None) -> None:
        # one step for a signal: a point journaled is also in the table written at interrupt
        with signals_held():
            if rows is not None and journal is not None:
                journal.append(keys[idx], idx, rows)
            _collect(out, idx, rows, failure, on_point)

    with interrupt_handlers():
        try:
            if cluster is not None:
                cluster.run(todo, verify, finished)
            elif jobs == 1:
                for p in todo:
                    finished(*_run_point_safe(p, verify))
            else:
                pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init)
                try:
                    futures = [pool.submit(_run_point_safe, p, verify) for p in todo]
                    for f in as_completed(futures):
                        finished(*f.result())
                except BaseException:
                    _stop_workers(pool)
                    raise
                pool.shutdown(wait=True)
        except KeyboardInterrupt:
            out.interrupted = 130
        except Interrupted as e:
            out.interrupted = e.code
        except VbenchError as e:  # the journal could not be written (disk full...)
            out.write_error = str(e)
    out.rows.sort(key=lambda r: (r["point"], r["label"], r.get("rep", 0)))
    return out


def _collect(out: SweepOutcome, idx: int, rows: Any, failure: Failure | None, cb: Any) -> None:
    if rows is not None:
        out.rows.extend(rows)
    if failure is not None:
        out.failures.append(failure)
    if cb is not None:
        cb(idx, failure)


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
        "interrupted"
        if outcome.interrupted or outcome.write_error
        else ("failed" if outcome.failures else "complete")
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
        "failures": [
            {"point": f.point, "kind": f.kind, "error": f.message} for f in outcome.failures
        ],
        "resumed_points": outcome.resumed,
        "started": started,
        "finished": finished,
        "versions": results.versions(),
        "git": results.git_commit(),
        "machine": results.machine(),
        "machine_fingerprint": results.fingerprint(),
        "presets": {p.preset.name: p.preset.provenance() for p in plan.points[:1]},
        "columns_doc": "see docs/results-schema.md: Result columns",
    }
