"""The ``vbench`` command line: parse, call the library, render. No logic of its own.

Heavy imports (numba, numpy, pandas) happen inside the commands so that ``vbench --help`` is
instant. Every user error ends with one line on stderr and exit code 2; data goes to stdout,
progress and diagnostics to stderr; NO_COLOR is honoured (rich reads it).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer

from vbench.errors import InvariantError, VbenchError

app = typer.Typer(
    name="vbench",
    help="vbus (shm-signal + IOQ) against virtio (virtqueues): measured, not argued.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


def _stdout():
    from rich.console import Console

    # a wide table piped to a file or a pager must not be crushed to 80 columns
    return Console() if sys.stdout.isatty() else Console(width=100_000)


def _fail(msg: str, code: int = 2) -> None:
    from vbench.errors import one_line

    # one line whatever the message quotes (a key with a newline, a parser's multi-line text)
    print(f"vbench: error: {one_line(msg, limit=2000)}", file=sys.stderr)
    raise typer.Exit(code)


# --debug (the app callback below): re-raise instead of printing one line, to see the traceback
_debug = False


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="on an error, show the Python traceback, not one line"),
    ] = False,
) -> None:
    global _debug
    _debug = debug


# click's exception classes, found through typer's public BadParameter: recent typer releases
# bundle their own click, and a plain `import click` may find none or another one
_CLICK = {c.__name__: c for c in typer.BadParameter.__mro__}


def friendly(fn):
    """Turn user errors into one line and exit code 2; bugs (invariants, and any exception
    nobody expected) into one line and exit code 1; ``--debug`` shows the traceback instead."""
    # typer's own exits, aborts and usage errors (click prints those) pass through
    own = (typer.Exit, typer.Abort, _CLICK["ClickException"])

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except own:
            raise
        except VbenchError as e:
            if _debug:
                raise
            _fail(str(e), 2)
        except InvariantError as e:
            if _debug:
                raise
            _fail(f"internal invariant broken (a vbench bug, please report): {e}", 1)
        except Exception as e:
            if _debug:
                raise
            from vbench.errors import unexpected

            msg, code = unexpected(e)
            _fail(msg, code)

    return wrapper


@app.command()
@friendly
def run(
    config: Annotated[
        Path | None,
        typer.Argument(help="sweep config (TOML); default configs/default.toml"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", help="override a value: key=value (repeatable), e.g. engine.batch=32"
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="points run in parallel processes")
    ] = 1,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="results folder (default results/runs/<name>-<time>)"),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="finish an interrupted run in this results folder: its finished points are kept",
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="run every point twice; a different event sequence exits 3"),
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine", help="sim (the deterministic simulation) or native (two real threads)"
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="no progress bar and no table")
    ] = False,
) -> None:
    """Run a sweep: every point, every model over one shared workload; write the results.

    Each finished point is journaled in the results folder at once; after Ctrl-C or SIGTERM
    (exit 130 or 143) or a crash, `vbench run --resume DIR` completes the rest. Exit codes: 0
    done; 1 a point failed or the results could not be written; 2 usage or configuration
    error; 3 an invariant broke or --verify found two runs that differ; 130/143 interrupted.
    """
    from vbench.journal import Interrupted, interrupt_handlers

    with interrupt_handlers():
        try:
            _run(config, set_ or [], jobs, out, resume, verify, engine, quiet)
        except (KeyboardInterrupt, Interrupted) as e:
            # before the journal existed (the sweep itself reports its own interruptions)
            _fail("interrupted before any point ran", _interrupt_code(e))


def _interrupt_code(e: BaseException) -> int:
    from vbench.journal import Interrupted

    return e.code if isinstance(e, Interrupted) else 130


def _run(
    config: Path | None,
    sets: list[str],
    jobs: int,
    out: Path | None,
    resume: Path | None,
    verify: bool,
    engine: str | None,
    quiet: bool,
) -> None:
    from vbench import config as cfgmod
    from vbench import results
    from vbench.journal import Interrupted, Journal, check_same_config

    if engine is not None:
        if engine not in ("sim", "native"):
            _fail(f"--engine {engine!r}: use sim or native")
        sets = [*sets, f"engine.kind={engine}"]
    if resume is not None:
        if out is not None and out != resume:
            _fail("--resume DIR writes into DIR: leave out --out")
        journal, info = Journal.resume(resume)
        if config is None:
            if sets:
                _fail("--set/--engine change the config: give the CONFIG again to resume with them")
            config = Path(str(info.get("config_file") or "config"))
            sets = list(info.get("overrides") or [])
            plan = cfgmod.plan(config, [], raw=info["config"])
        else:
            plan = cfgmod.plan(config, sets)
            check_same_config(info, plan.config_hash, resume)
        folder = resume
    else:
        config = config or Path("configs/default.toml")
        plan = cfgmod.plan(config, sets)
        folder = out or results.default_dir(plan.name)
        n_rows = sum(len(p.models) for p in plan.points)
        info = {
            "config_file": str(config),
            "config": plan.raw,
            "config_hash": plan.config_hash,
            "overrides": sets,
            "name": plan.name,
            "created": results.now(),
        }
        journal = Journal.start(folder, info, n_rows)
    try:
        _sweep(plan, config, sets, folder, journal, resume, jobs, verify, quiet)
    except (KeyboardInterrupt, Interrupted) as e:  # while compiling: nothing ran yet
        _fail(
            f"interrupted before any point ran: resume with vbench run --resume {folder}",
            _interrupt_code(e),
        )


def _sweep(
    plan: Any,
    config: Path,
    sets: list[str],
    folder: Path,
    journal: Any,
    resume: Path | None,
    jobs: int,
    verify: bool,
    quiet: bool,
) -> None:
    """Compile, run every point through the journal, write the table, report."""  # noqa: ANN001
    from vbench import results, sweep
    from vbench.journal import signals_held
    from vbench.render import summary_table

    err = _stderr()
    start = results.now()
    n_runs = sum(len(p.models) for p in plan.points)
    if journal.skipped_lines:
        err.print(
            f"[yellow]note:[/] {journal.skipped_lines} journal line(s) cut short were ignored: "
            "those points run again"
        )
    if not quiet:
        err.print(
            f"[bold]{plan.name}[/]: {len(plan.points)} points × models = {n_runs} runs, {jobs} job(s)"
            + (f", resuming {folder}" if resume else "")
        )
    with (
        err.status("compiling / loading the jitted models…", spinner="dots")
        if not quiet
        else contextlib.nullcontext()
    ):
        sweep.warm_up(plan, jobs)
    outcome = _run_with_progress(plan, jobs, quiet, journal, verify)
    meta = sweep.meta_of(plan, config, sets, outcome, start, results.now())
    if outcome.rows:
        with signals_held():
            results.write(folder, outcome.rows, meta)
    if not quiet and outcome.rows and not outcome.interrupted:
        _stdout().print(
            summary_table(
                outcome.rows, plan.swept, f"{plan.name} ({plan.raw.get('preset', 'kvm-modern')})"
            )
        )
    err.print(f"results: {folder}")
    done = len({r["point"] for r in outcome.rows})
    resume_hint = f"resume with: vbench run --resume {folder}"
    if outcome.interrupted:
        _fail(
            f"interrupted: {done} of {len(plan.points)} points saved in {folder}; {resume_hint}",
            outcome.interrupted,
        )
    if outcome.write_error:
        _fail(f"{outcome.write_error}; {done} points saved; {resume_hint}", 1)
    if outcome.failures:
        f = outcome.failures[0]
        code = 3 if any(x.kind in ("invariant", "verify") for x in outcome.failures) else 1
        _fail(
            f"{len(outcome.failures)} point(s) failed (first, point {f.point}): {f.message}; "
            f"the rest are in {folder}",
            code,
        )
    if verify and not quiet:
        err.print(f"verified: every point ran twice with the same event sequence ({done} points)")


def _run_with_progress(plan: Any, jobs: int, quiet: bool, journal: Any, verify: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vbench import sweep

    if quiet:
        return sweep.run_plan(plan, jobs, None, journal, verify)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_stderr(),
        transient=False,
    ) as prog:
        task = prog.add_task("points", total=len(plan.points))

        def tick(_idx: int, _failure: Any) -> None:
            prog.advance(task)

        return sweep.run_plan(plan, jobs, tick, journal, verify)


@app.command()
@friendly
def layout(
    model: Annotated[str, typer.Argument(help="model name, e.g. virtio-split or vbus-ioq")],
    queue_size: Annotated[
        int, typer.Option("--queue-size", "-n", help="descriptors in the ring")
    ] = 256,
    segments: Annotated[
        int,
        typer.Option(
            "--segments", help="largest scatter/gather list (sizes indirect tables / sg pools)"
        ),
    ] = 1,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
) -> None:
    """Print every field's offset and size of a model's shared memory, and the total."""
    from pydantic import ValidationError

    from vbench.config import pydantic_line
    from vbench.models import get_model
    from vbench.models.interface import Needs

    if fmt not in ("table", "json"):
        _fail(f"--format {fmt!r}: use table or json")
    if segments < 1:
        _fail("--segments must be at least 1")
    mdef = get_model(model)
    try:
        opts = mdef.options(queue_size=queue_size)
    except ValidationError as e:
        raise VbenchError(pydantic_line(e, f"--queue-size {queue_size}", mdef.options)) from None
    needs = Needs(max_segments=segments, max_size=max(segments, 1500))
    problem = mdef.check(opts, needs, 1)
    if problem:
        _fail(problem)
    d = mdef.layout(opts, needs).as_dict()
    if fmt == "json":
        sys.stdout.write(json.dumps(d, indent=2) + "\n")
    else:
        from vbench.render import layout_table

        _stdout().print(layout_table(d))


@app.command()
@friendly
def models() -> None:
    """List the models and their options with defaults."""
    from rich.table import Table

    from vbench.models import registry

    t = Table(title="models", header_style="bold")
    for c in ("model", "option", "default", "what"):
        t.add_column(c)
    for name, mdef in registry().items():
        t.add_row(name, "", "", mdef.summary)
        for fname, f in mdef.options.model_fields.items():
            t.add_row("", fname, repr(f.default), f.description or "")
    _stdout().print(t)


@app.command()
@friendly
def presets(
    name: Annotated[
        str | None, typer.Argument(help="a preset to show (default: list them)")
    ] = None,
) -> None:
    """List the cost presets, or show one with every figure's provenance."""
    from rich.table import Table

    from vbench.costs import builtin_presets, load_preset

    names = [name] if name else builtin_presets()
    for n in names:
        p = load_preset(n)
        t = Table(title=f"{p.name}: {p.description}", header_style="bold")
        for c in ("figure", "value", "tag", "source"):
            t.add_column(c, overflow="fold")
        for fname, v in p.provenance().items():
            t.add_row(fname, f"{v['value']:g}", v["tag"], v["source"])
        _stdout().print(t)
    _stderr().print("tags: M measured and published, D derived, E engineering estimate")


FORMATS = ("table", "markdown", "json", "csv", "gab-json")


@app.command()
@friendly
def compare(
    results_: Annotated[
        list[Path],
        typer.Argument(
            metavar="RESULTS [CURRENT]",
            help="one results folder (models side by side) or BASELINE CURRENT (changes)",
        ),
    ],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="metric column(s) to show (repeat or comma-separate)"),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where", "-w", help="row filter KEY=VALUE (or !=, <, <=, >, >=); repeatable"
        ),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option("--ref", help="reference model label (default: the first virtio model)"),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, markdown, json, csv or gab-json")
    ] = "table",
    rtol: Annotated[
        float, typer.Option("--rtol", min=0.0, help="modeled metrics: relative tolerance")
    ] = 0.0,
    noise_floor: Annotated[
        float, typer.Option("--noise-floor", min=0.0, help="timing metrics: noise floor")
    ] = 0.05,
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail/--no-fail", help="exit 1 when any metric got worse (BASELINE CURRENT only)"
        ),
    ] = True,
    engines: Annotated[
        bool | None,
        typer.Option(
            "--engines/--models",
            help="one set: the simulation beside the native measurement, or models side by "
            "side (default: --engines when the set holds both engines)",
        ),
    ] = None,
) -> None:
    """Compare models side by side in one result set, or a baseline with a current result set.

    Exit codes (two sets): 0 nothing worse, 1 a metric got worse (unless --no-fail), 2 usage
    error. Verdicts follow each column's kind: exact counts by equality, modeled times within
    --rtol, timings only on the same machine, by a significance test and a noise floor.
    """
    from vbench import compare as C
    from vbench import results

    if fmt not in FORMATS:
        _fail(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if len(results_) not in (1, 2):
        _fail("compare takes one results folder, or two: BASELINE CURRENT")
    if engines and len(results_) == 2:
        _fail("--engines shows one result set: vbench compare RESULTS --engines")
    sets = [results.load(p) for p in results_]
    if len(sets) == 1:
        rs = sets[0]
        if fmt == "gab-json":
            sys.stdout.write(json.dumps(C.gab_json(rs, metric), indent=2) + "\n")
            return
        if engines or (engines is None and C.has_both_engines(rs)):
            df = C.sim_vs_native(rs, metric, where)
            if fmt == "json":
                sys.stdout.write(json.dumps(C.sim_vs_native_json(df, rs), indent=2) + "\n")
                return
            _emit(df, fmt, f"{rs.name}: simulation (sim) against native measurement")
            return
        df = C.side_by_side(rs, metric, ref, where)
        if fmt == "json":
            sys.stdout.write(json.dumps(C.side_by_side_json(df, rs), indent=2) + "\n")
            return
        _emit(df, fmt, f"{rs.name}: models side by side (ratios to {df.attrs['ref']})")
        return
    if fmt == "gab-json":
        _fail("--format gab-json exports one result set: vbench compare RESULTS --format gab-json")
    base, cur = sets
    policy = C.Policy(rtol=rtol, noise_floor=noise_floor)
    cmp = C.compare_sets(base, cur, metric, where, policy)
    for note in cmp.notes:
        _stderr().print(f"[yellow]note:[/] {note}")
    if fmt == "json":
        sys.stdout.write(json.dumps(C.to_json(cmp, base, cur, policy), indent=2) + "\n")
    else:
        _emit(cmp.table, fmt, f"{base.name} → {cur.name}", verdicts=True)
    counts = cmp.counts()
    _stderr().print(", ".join(f"{n} {v}" for v, n in counts.items() if n))
    if fail_on_regression and counts["worse"]:
        raise typer.Exit(1)


def _emit(df: Any, fmt: str, title: str, verdicts: bool = False) -> None:
    """A table in the requested format on stdout."""
    if fmt == "csv":
        sys.stdout.write(df.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(df.to_json(orient="records", indent=2) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(_markdown(df) + "\n")
    else:
        from vbench.render import frame_table

        _stdout().print(frame_table(df, title, verdicts))


def _markdown(df: Any) -> str:
    from vbench.render import cell

    cols = list(df.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for rec in df.itertuples(index=False):
        out.append("| " + " | ".join(cell(v) for v in rec) + " |")
    return "\n".join(out)


@app.command()
@friendly
def plot(
    results_: Annotated[Path, typer.Argument(metavar="RESULTS", help="a results folder")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="figure folder (default RESULTS/figures)")
    ] = None,
    x: Annotated[str | None, typer.Option("--x", help="column on the x axis")] = None,
    y: Annotated[str | None, typer.Option("--y", help="metric on the y axis")] = None,
    hue: Annotated[
        str | None, typer.Option("--hue", help="one series per value (default: the model label)")
    ] = None,
    facet: Annotated[str | None, typer.Option("--facet", help="one panel per value")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="line, heatmap, cdf or bar")
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option("--where", "-w", help="row filter KEY=VALUE (or !=, <, <=, >, >=)"),
    ] = None,
    ref: Annotated[
        str | None, typer.Option("--ref", help="draw differences from this model label")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="png, svg or pdf, comma-separated")
    ] = "png,svg",
) -> None:
    """Draw figures from a results folder: the default set chosen from the sweep's own
    dimensions, or one custom figure (--x/--y/--hue/--facet/--kind). Headless; prints the files
    written."""
    from vbench import plot as P
    from vbench import results

    rs = results.load(results_)
    folder = out or P.default_out_dir(rs)
    custom = any(v is not None for v in (x, y, facet, kind, ref)) or bool(where) or hue is not None
    with _stderr().status("drawing…", spinner="dots"):
        if custom:
            paths = P.custom_figure(
                rs,
                folder,
                x=x,
                y=y,
                hue=hue if hue is not None else "label",
                facet=facet,
                kind=kind or "line",
                formats=fmt,
                where=where,
                ref=ref,
            )
        else:
            paths = P.default_figures(rs, folder, fmt)
    for path in paths:
        print(path)
    _stderr().print(f"{len(paths)} file(s) in {folder}")


@app.command()
@friendly
def check(
    config: Annotated[Path, typer.Option("--config", "-c", help="the gate's sweep config")] = Path(
        "configs/ci.toml"
    ),
    results_dir: Annotated[
        Path | None,
        typer.Option("--results", help="judge this results folder instead of running the sweep"),
    ] = None,
    baseline: Annotated[
        Path, typer.Option("--baseline", "-b", help="the committed baseline folder")
    ] = Path("results/baseline"),
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="where check.md and check.json go (default: the run's folder)"
        ),
    ] = None,
    rtol: Annotated[
        float, typer.Option("--rtol", min=0.0, help="modeled metrics: relative tolerance")
    ] = 0.01,
    noise_floor: Annotated[
        float, typer.Option("--noise-floor", min=0.0, help="timing metrics: noise floor")
    ] = 0.05,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=0, help="parallel processes (0: all cores)")
    ] = 0,
    update_baseline: Annotated[
        bool,
        typer.Option("--update-baseline", help="rewrite the baseline from this run, on purpose"),
    ] = False,
    rerun: Annotated[
        bool, typer.Option("--rerun/--no-rerun", help="run twice; the rerun must be bit-identical")
    ] = True,
) -> None:
    """The CI regression gate: run configs/ci.toml (or judge --results) against the baseline.

    Exit codes: 0 no regression; 1 regression (an exact count changed, even for the better, or a
    modeled figure moved beyond --rtol, or a timing on the same machine got worse); 2 usage or
    configuration error; 3 invariant violation, or a rerun that is not bit-identical; 4 baseline
    missing or incomparable (made from a different config). A Markdown summary and a JSON
    report are always written (and the Markdown appended to $GITHUB_STEP_SUMMARY when set).
    """
    from vbench import check as K
    from vbench import compare as C
    from vbench import results

    policy = C.Policy(rtol=rtol, noise_floor=noise_floor)
    err = _stderr()
    second = None
    jobs = jobs or (os.cpu_count() or 1)
    if results_dir is not None:
        cur = results.load(results_dir)
    else:
        try:
            with err.status(f"running {config}…", spinner="dots"):
                folder = K.run_config(config, jobs, results.default_dir("check"))
                cur = results.load(folder)
                if rerun:
                    second = results.load(K.run_config(config, jobs, folder / "rerun"))
        except InvariantError as e:
            res = K.CheckResult(K.EXIT_INVARIANT, f"invariant violation: {e}")
            K.write_reports(res, report or results.default_dir("check"), None, None, policy)
            _fail(res.headline, K.EXIT_INVARIANT)
        except KeyboardInterrupt:
            _fail("interrupted: nothing was judged; run vbench check again", 130)
    out_dir = report or cur.path
    if update_baseline:
        if second is not None:
            res = K.judge(cur, cur, policy, second)  # determinism first
            if res.code == K.EXIT_INVARIANT:
                K.write_reports(res, out_dir, None, cur, policy)
                _fail(res.headline, res.code)
        for line in K.update_baseline(cur, baseline):
            err.print(line)
        err.print(
            f"baseline written: {baseline} (commit it with the change that caused it)",
            soft_wrap=True,
        )
        return
    try:
        base = K.load_baseline(baseline)
    except K.BaselineMissing as e:
        res = K.CheckResult(K.EXIT_BASELINE, str(e))
        K.write_reports(res, out_dir, None, cur, policy)
        _fail(str(e), K.EXIT_BASELINE)
    res = K.judge(base, cur, policy, second)
    md, js = K.write_reports(res, out_dir, base, cur, policy)
    if res.comparison is not None and len(res.failing):
        from vbench.render import frame_table

        show = res.failing[
            [*res.comparison.keys, "metric", "kind", "old", "new", "change_pct", "verdict"]
        ]
        _stdout().print(frame_table(show.head(40), "failing values", True))
    err.print(f"report: {md} and {js}", soft_wrap=True)
    if res.code != K.EXIT_OK:
        _fail(res.headline, res.code)
    err.print(f"vbench check: {res.headline}")


@app.command()
@friendly
def calibrate(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="preset file to write (default: where preset 'calibrated' is found)"
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="fewer, shorter repetitions (seconds; noisier)")
    ] = False,
) -> None:
    """Measure this machine (cache-line transfer, eventfd costs, wake-up latency, TSC rate) and
    write the 'calibrated' cost preset, every figure with its provenance."""
    from rich.table import Table

    from vbench.native import calibrate as K

    err = _stderr()
    cal = K.calibrate(quick=quick, progress=lambda msg: err.print(f"calibrate: {msg}"))
    path = K.write(cal, out)
    t = Table(title=f"measured on {cal.fingerprint}, {cal.date}", header_style="bold")
    for c in ("measurement", "median", "min", "max", "unit"):
        t.add_column(c, justify="left" if c in ("measurement", "unit") else "right")
    for m in cal.measurements.values():
        t.add_row(m.what, f"{m.median:.4g}", f"{m.lo:.4g}", f"{m.hi:.4g}", m.unit)
    _stdout().print(t)
    p = cal.preset()
    t = Table(title="preset 'calibrated'", header_style="bold")
    for c in ("figure", "value", "tag", "source"):
        t.add_column(c, overflow="fold")
    for fname, v in p.provenance().items():
        t.add_row(fname, f"{v['value']:.4g}", v["tag"], v["source"])
    _stdout().print(t)
    err.print(f'vbench calibrate: wrote {path}; use it with preset = "calibrated"')


def main() -> None:
    """The console entry point. Click's own usage errors (a missing argument, an out-of-range
    option, an unknown command) become one line and exit 2, like every other user error."""
    usage_error, click_exception = _CLICK["UsageError"], _CLICK["ClickException"]
    try:
        rc = app(standalone_mode=False)
    except usage_error as e:
        hint = f" (see vbench {e.ctx.info_name} --help)" if e.ctx and e.ctx.parent else ""
        if e.ctx and not e.ctx.parent:
            hint = " (see vbench --help)"
        _print_error(f"{e.format_message()}{hint}")
        sys.exit(2)
    except click_exception as e:
        _print_error(e.format_message())
        sys.exit(e.exit_code)
    except typer.Abort:
        _print_error("interrupted")
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


def _print_error(msg: str) -> None:
    from vbench.errors import one_line

    print(f"vbench: error: {one_line(msg, limit=2000)}", file=sys.stderr)


if __name__ == "__main__":
    main()
