"""The ``vbench`` command line: parse, call the library, render. No logic of its own.

Heavy imports (numba, numpy, pandas) happen inside the commands so that ``vbench --help`` is
instant. Every user error ends with one line on stderr and exit code 2; data goes to stdout,
progress and diagnostics to stderr; NO_COLOR is honoured (rich reads it).
"""

from __future__ import annotations

import contextlib
import json
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
    print(f"vbench: error: {msg}", file=sys.stderr)
    raise typer.Exit(code)


def friendly(fn):
    """Turn user errors into one line and exit code 2; bugs (invariants) into exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VbenchError as e:
            _fail(str(e), 2)
        except InvariantError as e:
            _fail(f"internal invariant broken (a vbench bug, please report): {e}", 1)

    return wrapper


@app.command()
@friendly
def run(
    config: Annotated[Path, typer.Argument(help="sweep config (TOML)")] = Path(
        "configs/default.toml"
    ),
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
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="no progress bar and no table")
    ] = False,
) -> None:
    """Run a sweep: every point, every model over one shared workload; write the results."""
    from vbench import config as cfgmod
    from vbench import results, sweep
    from vbench.render import summary_table

    plan = cfgmod.plan(config, set_ or [])
    err = _stderr()
    start = results.now()
    n_runs = sum(len(p.models) for p in plan.points)
    if not quiet:
        err.print(
            f"[bold]{plan.name}[/]: {len(plan.points)} points × models = {n_runs} runs, {jobs} job(s)"
        )
    with (
        err.status("compiling / loading the jitted models…", spinner="dots")
        if not quiet
        else contextlib.nullcontext()
    ):
        sweep.warm_up(plan)
    outcome = _run_with_progress(plan, jobs, quiet)
    end = results.now()
    status = (
        "interrupted" if outcome.interrupted else ("failed" if outcome.failures else "complete")
    )
    meta = {
        "name": plan.name,
        "config_file": str(config),
        "config": plan.raw,
        "config_hash": plan.config_hash,
        "overrides": set_ or [],
        "seed": plan.raw.get("seed", 1),
        "swept": plan.swept,
        "points": len(plan.points),
        "status": status,
        "failures": [{"point": i, "error": e} for i, e in outcome.failures],
        "started": start,
        "finished": end,
        "versions": results.versions(),
        "git": results.git_commit(),
        "machine": results.machine(),
        "presets": {p.preset.name: p.preset.provenance() for p in plan.points[:1]},
        "columns_doc": "see README: Result columns",
    }
    folder = out or results.default_dir(plan.name)
    if outcome.rows or outcome.failures:
        results.write(folder, outcome.rows, meta)
    if not quiet and outcome.rows:
        _stdout().print(
            summary_table(
                outcome.rows, plan.swept, f"{plan.name} ({plan.raw.get('preset', 'kvm-modern')})"
            )
        )
    err.print(f"results: {folder}")
    if outcome.interrupted:
        _fail(f"interrupted: {len(outcome.rows)} rows written to {folder}", 130)
    if outcome.failures:
        i, e = outcome.failures[0]
        _fail(
            f"{len(outcome.failures)} point(s) failed (first, point {i}): {e}; the rest are in {folder}",
            1,
        )


def _run_with_progress(plan: Any, jobs: int, quiet: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vbench import sweep

    if quiet:
        return sweep.run_plan(plan, jobs)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_stderr(),
        transient=False,
    ) as prog:
        task = prog.add_task("points", total=len(plan.points))

        def tick(_idx: int, _err: str | None) -> None:
            prog.advance(task)

        return sweep.run_plan(plan, jobs, tick)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
