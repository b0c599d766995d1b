"""The work of the commands that have no module of their own, callable without the CLI.

``vbench run`` is :func:`run_sweep` (a sweep from its config, or the folder it resumes, to its
verdict), ``vbench layout`` is :func:`model_layout`, ``vbench plot`` is :func:`draw_figures`.
``check`` and ``compare`` have theirs beside their logic (:func:`vbench.check.gate`,
:func:`vbench.compare.run`). What a person sees comes out through a :class:`SweepDisplay` or a
``status`` callback, which the CLI fills with rich output and code or a test leaves silent; an
answer other than success is a :class:`~vbench.exits.Stop` carrying its exit code.

Heavy imports (numba through the models, numpy, pandas) happen inside the functions: the CLI
imports this module, and ``vbench --help`` must stay instant.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vbench.exits import Stop

if TYPE_CHECKING:
    from vbench.config import Plan
    from vbench.journal import Journal
    from vbench.sweep import Failure, SweepOutcome

DEFAULT_CONFIG = Path("configs/default.toml")
ENGINES = ("sim", "native")

#: ``on_point(index, failure)``, told of each finished point (:func:`vbench.sweep.run_plan`)
OnPoint = Callable[[int, "Failure | None"], None]
#: ``status(text)``: a context held while a long step runs, e.g. a spinner saying ``text``
Status = Callable[[str], AbstractContextManager[Any]]


class SweepDisplay:
    """What a person sees of a sweep, told by :func:`run_sweep` in the order of these methods.

    This base shows nothing (a sweep run from code or a test); the CLI's display
    (:class:`vbench.render.SweepView`) overrides them with rich output."""

    def note(self, text: str) -> None:
        """Something worth knowing that changes no result (journal lines that were ignored)."""

    def starting(self, plan: Plan, runs: int, jobs: int, resuming: Path | None) -> None:
        """The sweep's size, before anything compiles; ``resuming`` the folder resumed."""

    def compiling(self) -> AbstractContextManager[Any]:
        """Held while the jitted models compile or load from the cache."""
        return contextlib.nullcontext()

    def compiling_model(self, model: str) -> None:
        """While :meth:`compiling` is held: ``model`` (its name, and its engine) compiles now."""

    def running(self, points: int) -> AbstractContextManager[OnPoint | None]:
        """Held while the points run; gives the callback told of each finished point."""
        return contextlib.nullcontext(None)

    def finished(self, plan: Plan, outcome: SweepOutcome, folder: Path) -> None:
        """The rows are written in ``folder``; the verdict comes next."""

    def verified(self, points: int) -> None:
        """--verify ran every one of ``points`` points twice with the same event sequence."""


@dataclass
class FinishedSweep:
    """A sweep that ended in success: its plan, its results folder and what it did."""

    plan: Plan
    folder: Path
    outcome: SweepOutcome


@dataclass
class _OpenSweep:
    """A sweep ready to run: its plan, what it was made from, its folder and journal."""

    plan: Plan
    config: Path
    overrides: list[str]
    folder: Path
    journal: Journal | None  # None until run_sweep starts a new run's journal
    resumed: bool
    cluster: Any = None  # where the points run: a vbench.cluster.ClusterSpec, or None (here)
    info: dict[str, Any] | None = None  # what a new run's run.json records


def run_sweep(
    config: Path | None,
    overrides: list[str],
    *,
    jobs: int = 1,
    out: Path | None = None,
    resume: Path | None = None,
    verify: bool = False,
    engine: str | None = None,
    display: SweepDisplay | None = None,
    cluster: str | None = None,
) -> FinishedSweep:
    """Run every point of a sweep config into a results folder (``out``, or a new one under
    results/runs), or finish the interrupted sweep in the folder ``resume``.

    ``cluster`` (``tcp://HOST:PORT``, ``local:N`` or ``none``; default the config's
    ``[cluster]`` section) runs the points on a Dask cluster (:mod:`vbench.cluster`) instead of
    ``jobs`` local processes: same rows, same journal.

    Each finished point is journaled at once, so a signal or a crash loses nothing that ran.
    Raises :class:`Stop` when the answer is not success: 2 for options that contradict each
    other, 130/143 for Ctrl-C/SIGTERM, 1 for a failed point or results that could not be
    written, 3 for a broken invariant or a --verify difference."""
    from vbench.journal import Interrupted, Journal, interrupt_handlers

    display = display or SweepDisplay()
    with interrupt_handlers():
        try:
            sweep = _open(config, overrides, out, resume, engine, cluster, jobs)
        except (KeyboardInterrupt, Interrupted) as e:
            raise Stop("interrupted before any point ran", _interrupt_code(e)) from e
        try:
            # a cluster that does not answer leaves no results folder behind
            with _cluster_session(sweep.cluster) as session:
                if sweep.journal is None:
                    info, runs = sweep.info or {}, _runs(sweep.plan)
                    sweep.journal = Journal.start(sweep.folder, info, runs)
                return _run(sweep, jobs, verify, display, session)
        except (KeyboardInterrupt, Interrupted) as e:  # while compiling: nothing ran yet
            hint = f": resume with vbench run --resume {sweep.folder}" if sweep.journal else ""
            raise Stop(f"interrupted before any point ran{hint}", _interrupt_code(e)) from e


def _interrupt_code(exc: BaseException) -> int:
    """130 for Ctrl-C, or the code an :class:`~vbench.journal.Interrupted` asks for (143)."""
    from vbench.journal import Interrupted

    return exc.code if isinstance(exc, Interrupted) else 130


def _runs(plan: Plan) -> int:
    """Rows the sweep gives: one per model per point."""
    return sum(len(p.models) for p in plan.points)


def _open(
    config: Path | None,
    overrides: list[str],
    out: Path | None,
    resume: Path | None,
    engine: str | None,
    cluster: str | None = None,
    jobs: int = 1,
) -> _OpenSweep:
    """The plan, the results folder and its journal: a new one (started by :func:`run_sweep`
    once the cluster, if any, answers), or the one ``resume`` holds (run with the config it
    recorded, unless CONFIG is given again, which must be the same)."""
    from vbench import config as cfgmod
    from vbench import results
    from vbench.journal import Journal, check_same_config

    if engine is not None:
        if engine not in ENGINES:
            raise Stop(f"--engine {engine!r}: use sim or native")
        overrides = [*overrides, f"engine.kind={engine}"]
    if resume is None:
        config = config or DEFAULT_CONFIG
        raw = cfgmod.read_toml(config)
        plan = cfgmod.plan(config, overrides, raw=raw)
        folder = out or results.default_dir(plan.name)
        info = {
            "config_file": str(config),
            "config": plan.raw,
            "config_hash": plan.config_hash,
            "overrides": overrides,
            "name": plan.name,
            "created": results.now(),
        }
        if raw.get("cluster") is not None:  # where it ran, outside the config (and its hash)
            info["cluster"] = raw["cluster"]
        spec = _cluster_spec(cluster, raw.get("cluster"), config, jobs, plan)
        return _OpenSweep(plan, config, overrides, folder, None, False, spec, info)
    if out is not None and out != resume:
        raise Stop("--resume DIR writes into DIR: leave out --out")
    journal, info = Journal.resume(resume)
    if config is None:
        if overrides:
            raise Stop(
                "--set/--engine change the config: give the CONFIG again to resume with them"
            )
        config = Path(str(info.get("config_file") or "config"))
        overrides = list(info.get("overrides") or [])
        plan = cfgmod.plan(config, [], raw=info["config"])
        section = info.get("cluster")
    else:
        raw = cfgmod.read_toml(config)
        plan = cfgmod.plan(config, overrides, raw=raw)
        check_same_config(info, plan.config_hash, resume)
        section = raw.get("cluster")
    spec = _cluster_spec(cluster, section, config, jobs, plan)
    return _OpenSweep(plan, config, overrides, resume, journal, True, spec)


def _run(
    sweep: _OpenSweep, jobs: int, verify: bool, display: SweepDisplay, session: Any
) -> FinishedSweep:
    """Compile, run every point through the journal, write the table, give the verdict."""
    from vbench import results
    from vbench import sweep as sweeping
    from vbench.journal import signals_held

    plan, folder = sweep.plan, sweep.folder
    start = results.now()
    if sweep.journal.skipped_lines:
        display.note(
            f"{sweep.journal.skipped_lines} journal line(s) cut short were ignored: "
            "those points run again"
        )
    native = any(p.engine.kind == "native" for p in plan.points)
    spec = sweep.cluster
    asked = spec.workers if spec is not None and spec.local else jobs
    jobs, capped = sweeping.useful_jobs(asked, len(plan.points), native)
    if capped and spec is None:
        display.note(capped)
    if session is not None:
        jobs = session.threads
        display.note(f"cluster {spec.address}: {session.workers} worker(s), {jobs} thread(s)")
    display.starting(plan, _runs(plan), jobs, folder if sweep.resumed else None)
    with display.compiling():
        if session is None or spec.local:  # a LocalCluster's workers load what this saves
            sweeping.warm_up(plan, jobs, display.compiling_model)
        if session is not None:
            session.warm(list(sweeping.models_to_warm(plan).values()))
    with display.running(len(plan.points)) as on_point:
        outcome = sweeping.run_plan(plan, jobs, on_point, sweep.journal, verify, session)
    if session is not None:
        session.close()  # before writing: an interrupted sweep's workers stop at once
    meta = sweeping.meta_of(plan, sweep.config, sweep.overrides, outcome, start, results.now())
    if outcome.rows:
        with signals_held():
            results.write(folder, outcome.rows, meta)
    display.finished(plan, outcome, folder)
    points_done = _verdict(plan, outcome, folder, spec)
    if verify:
        display.verified(points_done)
    return FinishedSweep(plan, folder, outcome)


def _cluster_spec(flag: str | None, section: Any, config: Path, jobs: int, plan: Plan) -> Any:
    """The :class:`vbench.cluster.ClusterSpec` asked for (``--cluster``, else the config's
    ``[cluster]``), or None for the local pool."""
    if flag is None and section is None:
        return None  # vbench.cluster (and Dask) are not even imported
    from vbench import cluster as clustering

    spec = clustering.choose(flag, section, str(config), jobs)
    if spec is not None and any(p.engine.kind == "native" for p in plan.points):
        raise Stop(
            f'--cluster {spec.address}: a native run (engine.kind = "native") measures the '
            "cores it runs on, two per point with nothing beside them: run it here, without a cluster"
        )
    return spec


@contextlib.contextmanager
def _cluster_session(spec: Any) -> Any:
    if spec is None:
        yield None
        return
    from vbench import cluster as clustering

    with clustering.session(spec) as session:
        yield session


def _verdict(plan: Plan, outcome: SweepOutcome, folder: Path, cluster: Any = None) -> int:
    """Raise the :class:`Stop` a sweep ends with unless every point gave its rows; return
    how many points did."""
    done = len({r["point"] for r in outcome.rows})
    resume_hint = f"resume with: vbench run --resume {folder}"
    if cluster is not None:
        resume_hint += f" --cluster {cluster.address}"
    if outcome.interrupted:
        also = ""
        if cluster is not None:
            from vbench.cluster import interrupt_note

            also = f" ({interrupt_note(cluster)})"
        raise Stop(
            f"interrupted: {done} of {len(plan.points)} points saved in {folder}{also}; "
            f"{resume_hint}",
            outcome.interrupted,
        )
    if outcome.write_error:
        raise Stop(f"{outcome.write_error}; {done} points saved; {resume_hint}", 1)
    if outcome.failures:
        first = outcome.failures[0]
        code = 3 if any(f.kind in ("invariant", "verify") for f in outcome.failures) else 1
        raise Stop(
            f"{len(outcome.failures)} point(s) failed (first, point {first.point}): "
            f"{first.message}; the rest are in {folder}",
            code,
        )
    return done


def model_layout(model: str, queue_size: int = 256, segments: int = 1) -> dict[str, Any]:
    """Every field's offset and size in ``model``'s shared memory, and the total, as a dict
    (``vbench layout``): the options are validated as a config's are, so a queue size the
    model refuses is one line naming it, not a traceback."""
    from pydantic import ValidationError

    from vbench.config import pydantic_line
    from vbench.errors import VbenchError
    from vbench.models import get_model
    from vbench.models.interface import Needs

    if segments < 1:
        raise Stop("--segments must be at least 1")
    definition = get_model(model)
    try:
        options = definition.options(queue_size=queue_size)
    except ValidationError as e:
        where = f"--queue-size {queue_size}"
        raise VbenchError(pydantic_line(e, where, definition.options)) from None
    needs = Needs(max_segments=segments, max_size=max(segments, 1500))
    problem = definition.check(options, needs, 1)
    if problem:
        raise Stop(problem)
    return definition.layout(options, needs).as_dict()


def draw_figures(
    results_path: Path,
    out: Path | None = None,
    *,
    x: str | None = None,
    y: str | None = None,
    hue: str | None = None,
    facet: str | None = None,
    kind: str | None = None,
    where: list[str] | None = None,
    ref: str | None = None,
    formats: str = "png,svg",
    status: Status | None = None,
) -> tuple[list[Path], Path]:
    """Draw a results folder's figures into ``out`` (default RESULTS/figures): the default set,
    chosen from the sweep's own dimensions, or, as soon as any of x, y, hue, facet, kind,
    where or ref is given, the one custom figure they describe (``vbench plot``). Returns the
    files written and their folder."""
    from vbench import plot, results

    if (results_path / "findings.csv").is_file():  # a vbench sensitivity folder: its tornados
        from vbench import sensitivity

        folder = out or results_path / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for f in sensitivity.load_findings(results_path):
            stem = folder / f"tornado-{f.first}-vs-{f.second}-{f.metric}"
            paths += sensitivity.tornado(f, stem, formats)
        return paths, folder
    result_set = results.load(results_path)
    folder = out or plot.default_out_dir(result_set)
    chosen = (x, y, facet, kind, ref, hue)
    custom = any(v is not None for v in chosen) or bool(where)
    with status("drawing…") if status else contextlib.nullcontext():
        if not custom:
            return plot.default_figures(result_set, folder, formats), folder
        paths = plot.custom_figure(
            result_set,
            folder,
            x=x,
            y=y,
            hue=hue if hue is not None else "label",
            facet=facet,
            kind=kind or "line",
            formats=formats,
            where=where,
            ref=ref,
        )
    return paths, folder


def run_sensitivity(
    config: Path,
    sets: list[str],
    *,
    figures: list[str] | None = None,
    quick: bool = False,
    jobs: int = 1,
    out: Path | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> tuple[list[Any], Path]:
    """``vbench sensitivity``: the config at its preset's figures, then each figure at each end
    of its stated range; the findings (vbench.sensitivity) and the folder written."""
    from vbench import sensitivity as S
    from vbench.config import plan
    from vbench.sweep import run_plan

    sets = list(sets)
    base = plan(config, sets)
    S.check_comparable(base)
    if quick:  # a tenth of the requests (at least 2,000) at every point
        requests = max(2000, base.points[0].workload.requests // 10)
        sets.append(f"workload.requests={requests}")
    todo = S.cases(base, figures)
    folder = (
        out or Path("results/runs") / f"sensitivity-{base.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    )

    def announce(i: int, case: Any) -> None:
        value = "" if case.figure is None else f" = {case.value:g}"
        say(f"case {i + 1}/{len(todo)}: {case.name}{value}")

    def one(p: Any) -> list[dict[str, Any]]:
        return S.require_success(run_plan(p, jobs), folder)

    def keep(table: Any) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        table.to_csv(folder / "cases.csv", index=False)

    table = S.run_cases(config, sets, todo, one, announce, keep)
    findings = S.assess(table)
    S.write(folder, table, findings, "png")
    return findings, folder
