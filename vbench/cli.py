"""The ``vbench`` command line: parse, call the library, render. No logic of its own.

Each command takes its arguments (declared in :mod:`vbench.cli_options`), calls one library
function (:func:`vbench.commands.run_sweep`, :func:`vbench.check.gate`,
:func:`vbench.compare.run`, ...) and shows what it returns (:mod:`vbench.render`). Heavy
imports (numba, numpy, pandas) happen inside the commands so that ``vbench --help`` is
instant. Every user error ends with one line on stderr and exit code 2; data goes to stdout,
progress and diagnostics to stderr; NO_COLOR is honoured (rich reads it).
"""

from __future__ import annotations

import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer

from vbench import cli_options as opt
from vbench.exits import Stop, explain
from vbench.render import stderr_console, stdout_console

app = typer.Typer(
    name="vbench",
    help="vbus (shm-signal + IOQ) against virtio (virtqueues): measured, not argued.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _status(text: str) -> Any:
    """A spinner on stderr saying ``text``, held while a long step runs."""
    return stderr_console().status(text, spinner="dots")


def _print_error(msg: str) -> None:
    from vbench.errors import one_line

    # one line whatever the message quotes (a key with a newline, a parser's multi-line text)
    print(f"vbench: error: {one_line(msg, limit=2000)}", file=sys.stderr)


def _fail(msg: str, code: int = 2) -> None:
    _print_error(msg)
    raise typer.Exit(code)


# --debug (the app callback below): re-raise instead of printing one line, to see the traceback
_debug = False


@app.callback()
def _options(debug: opt.Debug = False) -> None:
    global _debug
    _debug = debug


# click's exception classes, found through typer's public BadParameter: recent typer releases
# bundle their own click, and a plain `import click` may find none or another one
_CLICK = {c.__name__: c for c in typer.BadParameter.__mro__}


def friendly(fn):
    """Turn user errors into one line and exit code 2; bugs (invariants, and any exception
    nobody expected) into one line and exit code 1 (:func:`vbench.exits.explain`);
    ``--debug`` shows the traceback instead, except for a command's own :class:`Stop`."""
    # typer's own exits, aborts and usage errors (click prints those) pass through
    own = (typer.Exit, typer.Abort, _CLICK["ClickException"])

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except own:
            raise
        except Exception as e:
            if _debug and not isinstance(e, Stop):
                raise
            _fail(*explain(e))

    return wrapper


@app.command()
@friendly
def run(
    config: opt.RunConfig = None,
    set_: opt.Sets = None,
    jobs: opt.RunJobs = 1,
    out: opt.RunOut = None,
    resume: opt.Resume = None,
    verify: opt.Verify = False,
    engine: opt.Engine = None,
    quiet: opt.Quiet = False,
    fmt: opt.RunFormat = "auto",
    cluster: opt.RunCluster = None,
) -> None:
    """Run a sweep: every point, every model over one shared workload; write the results.

    Each finished point is journaled in the results folder at once; after Ctrl-C or SIGTERM
    (exit 130 or 143) or a crash, `vbench run --resume DIR` completes the rest. Exit codes: 0
    done; 1 a point failed or the results could not be written; 2 usage or configuration
    error; 3 an invariant broke or --verify found two runs that differ; 130/143 interrupted.
    """
    from vbench.commands import run_sweep
    from vbench.progress import RunView
    from vbench.render import RUN_FORMATS

    if fmt not in RUN_FORMATS:
        _fail(f"--format {fmt!r}: use one of {', '.join(RUN_FORMATS)}")
    run_sweep(
        config,
        set_ or [],
        jobs=jobs,
        out=out,
        resume=resume,
        verify=verify,
        engine=engine,
        display=RunView(quiet, fmt),
        cluster=cluster,
    )


@app.command()
@friendly
def layout(
    model: opt.Model,
    queue_size: opt.QueueSize = 256,
    segments: opt.Segments = 1,
    fmt: opt.LayoutFormat = "table",
) -> None:
    """Print every field's offset and size of a model's shared memory, and the total."""
    from vbench.commands import model_layout
    from vbench.render import layout_table, write_json

    if fmt not in ("table", "json"):
        _fail(f"--format {fmt!r}: use table or json")
    fields = model_layout(model, queue_size, segments)
    if fmt == "json":
        write_json(fields)
    else:
        stdout_console().print(layout_table(fields))


@app.command()
@friendly
def models() -> None:
    """List the models and their options with defaults."""
    from vbench.models import registry
    from vbench.render import models_table

    stdout_console().print(models_table(registry()))


@app.command()
@friendly
def presets(name: opt.PresetName = None) -> None:
    """List the cost presets, or show one with every figure's provenance."""
    from vbench.costs import builtin_presets, load_preset
    from vbench.render import provenance_table

    for preset in map(load_preset, [name] if name else builtin_presets()):
        stdout_console().print(provenance_table(preset, f"{preset.name}: {preset.description}"))
    stderr_console().print("tags: M measured and published, D derived, E engineering estimate")


@app.command()
@friendly
def compare(
    results_: opt.CompareResults,
    metric: opt.Metrics = None,
    where: opt.CompareWhere = None,
    ref: opt.CompareRef = None,
    fmt: opt.CompareFormat = "table",
    rtol: opt.Rtol = 0.0,
    noise_floor: opt.NoiseFloor = 0.05,
    fail_on_regression: opt.FailOnRegression = True,
    engines: opt.Engines = None,
    show_all: opt.ShowAll = False,
    by_mode: opt.ByMode = True,
) -> None:
    """Compare models side by side in one result set, or a baseline with a current result set.

    Exit codes (two sets): 0 nothing worse, 1 a metric got worse (unless --no-fail), 2 usage
    error, 4 nothing comparable (the sets come from different configs). Verdicts follow each
    column's kind: exact counts by equality, modeled times within --rtol, timings only on the
    same machine, by a significance test and a noise floor.
    """
    from vbench import compare as C
    from vbench.render import show_report

    policy = C.Policy(rtol=rtol, noise_floor=noise_floor)
    report = C.run(results_, metric, where, ref, fmt, policy, engines, show_all, by_mode)
    counts = report.counts or {}
    if sum(counts.values()) and counts.get("incomparable") == sum(counts.values()):
        why = "; ".join(report.notes) or "no value could be judged"
        _fail(
            f"nothing to compare: every value is incomparable ({why}): compare two result sets of one config",
            4,
        )
    show_report(report, fmt)
    if fail_on_regression and report.worse:
        raise typer.Exit(1)


@app.command()
@friendly
def plot(
    results_: opt.PlotResults,
    out: opt.PlotOut = None,
    x: opt.X = None,
    y: opt.Y = None,
    hue: opt.Hue = None,
    facet: opt.Facet = None,
    kind: opt.Kind = None,
    where: opt.PlotWhere = None,
    ref: opt.PlotRef = None,
    fmt: opt.PlotFormat = "png,svg",
) -> None:
    """Draw figures from a results folder: the default set chosen from the sweep's own
    dimensions, or one custom figure (--x/--y/--hue/--facet/--kind). Headless; prints the files
    written."""
    from vbench.commands import draw_figures

    custom = {"x": x, "y": y, "hue": hue, "facet": facet, "kind": kind, "where": where, "ref": ref}
    paths, folder = draw_figures(results_, out, formats=fmt, status=_status, **custom)
    for path in paths:
        print(path)
    stderr_console().print(f"{len(paths)} file(s) in {folder}")


@app.command()
@friendly
def sensitivity(
    config: opt.RunConfig = None,
    set_: opt.Sets = None,
    figure: opt.Figures = None,
    quick: opt.SensitivityQuick = False,
    jobs: opt.RunJobs = 1,
    out: opt.SensitivityOut = None,
) -> None:
    """Does each verdict hold across the cost figures' stated ranges? Runs the config at its
    preset's figures, then with each figure at its low and at its high end (the others left
    alone; every case simulated afresh, since time feeds back into the counts), and says for
    every pair of models, on time per request and on p99 latency, at how many points the verdict
    holds in every case and which figure flips it where not. Writes cases.csv, findings.csv
    and a tornado plot per comparison."""
    from vbench.commands import run_sensitivity
    from vbench.render import findings_table_view

    err = stderr_console()
    findings, folder = run_sensitivity(
        config or Path("configs/default.toml"),
        set_ or [],
        figures=figure,
        quick=quick,
        jobs=jobs,
        out=out,
        say=lambda msg: err.print(f"sensitivity: {msg}"),
    )
    stdout_console().print(findings_table_view(findings))
    err.print(f"vbench sensitivity: wrote {folder}")


@app.command()
@friendly
def check(
    config: opt.CheckConfig = Path("configs/ci.toml"),
    results_dir: opt.CheckResults = None,
    baseline: opt.Baseline = Path("results/baseline"),
    report: opt.Report = None,
    rtol: opt.Rtol = 0.01,
    noise_floor: opt.NoiseFloor = 0.05,
    jobs: opt.CheckJobs = 0,
    update_baseline: opt.UpdateBaseline = False,
    rerun: opt.Rerun = True,
) -> None:
    """The CI regression gate: run configs/ci.toml (or judge --results) against the baseline.

    Exit codes: 0 no regression; 1 regression (an exact count changed, even for the better, or a
    modeled figure moved beyond --rtol, or a timing on the same machine got worse); 2 usage or
    configuration error; 3 invariant violation, or a rerun that is not bit-identical; 4 baseline
    missing or incomparable (made from a different config). A Markdown summary and a JSON
    report are always written (and the Markdown appended to $GITHUB_STEP_SUMMARY when set).
    """
    from vbench import check as K
    from vbench.compare import Policy
    from vbench.render import show_gate

    policy = Policy(rtol=rtol, noise_floor=noise_floor)
    outcome = K.gate(
        config,
        baseline,
        policy,
        results_dir=results_dir,
        report=report,
        jobs=jobs,
        update=update_baseline,
        rerun=rerun,
        status=_status,
    )
    show_gate(outcome)
    if outcome.result.code:
        _fail(outcome.result.headline, outcome.result.code)


@app.command()
@friendly
def calibrate(out: opt.PresetOut = None, quick: opt.Quick = False) -> None:
    """Measure this machine (cache-line transfer, eventfd costs, wake-up latency, TSC rate) and
    write the 'calibrated' cost preset, every figure with its provenance."""
    from vbench.native import calibrate as K
    from vbench.render import measurements_table, provenance_table

    err = stderr_console()
    target = K.writable_target(out)  # refused before minutes of measuring, not after
    calibration = K.calibrate(quick=quick, progress=lambda msg: err.print(f"calibrate: {msg}"))
    path = K.write(calibration, target)
    stdout_console().print(measurements_table(calibration))
    stdout_console().print(provenance_table(calibration.preset(), "preset 'calibrated'", ".4g"))
    err.print(f'vbench calibrate: wrote {path}; use it with preset = "calibrated"')


@app.command()
@friendly
def report(
    quick: Annotated[bool, typer.Option("--quick", help="fewer requests, smaller grids")] = False,
    preset: Annotated[str | None, typer.Option(help="cost preset for all but E7")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="report folder")] = Path(
        "results/runs/report"
    ),
    jobs: opt.RunJobs = 1,
    cluster: opt.RunCluster = None,
) -> None:
    """Answer the 2009 thread's two questions in one report: run the experiments of
    configs/report/ (reusing what --out already holds), then write report.html (self-contained)
    and report.md with every conclusion computed from the results. See docs/report.md."""
    from vbench.report.build import build_report
    from vbench.report.experiments import Sizing

    err = stderr_console()
    sizing = Sizing(quick=quick, preset=preset)
    done = build_report(
        out, sizing, jobs=jobs, cluster=cluster, say=lambda m: err.print(f"report: {m}")
    )
    print(done.html)
    print(done.markdown)
    err.print(f"vbench report: {done.seconds:.0f} s; results in {done.runs}")


# --help: docstrings reflowed to the terminal's width, flags without a value type
for _command in app.registered_commands:
    _command.help = _command.help or opt.reflow(
        _command.callback.__doc__ if _command.callback else None
    )
opt.show_flags_without_a_type()


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


if __name__ == "__main__":
    main()
