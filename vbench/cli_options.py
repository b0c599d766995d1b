"""The command line's arguments and options: each one's flags, bounds and help text, declared
once, so that a command in :mod:`vbench.cli` reads as what it takes and what it does.

Defaults stay with the commands (``jobs: opt.RunJobs = 1``): the same flag may default
differently per command. Options shared by commands with one meaning (``--rtol``,
``--noise-floor``) are declared once for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# --- shared ---------------------------------------------------------------------------------------
Debug = Annotated[
    bool, typer.Option("--debug", help="on an error, show the Python traceback, not one line")
]
Rtol = Annotated[float, typer.Option("--rtol", min=0.0, help="modeled metrics: relative tolerance")]
NoiseFloor = Annotated[
    float, typer.Option("--noise-floor", min=0.0, help="timing metrics: noise floor")
]

# --- run --------------------------------------------------------------------------------------------
RunConfig = Annotated[
    Path | None, typer.Argument(help="sweep config (TOML); default configs/default.toml")
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="override a value: key=value (repeatable), e.g. engine.batch=32",
    ),
]
RunJobs = Annotated[
    int, typer.Option("--jobs", "-j", min=1, help="points run in parallel processes")
]
RunCluster = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        metavar="ADDRESS",
        help="run the points on a Dask cluster: tcp://HOST:8786 (a running scheduler) or "
        "local:N (N worker processes started for the run); none: here, despite a config's "
        "\\[cluster]. Needs pip install -e '.\\[cluster]'",  # \\[: not rich markup
    ),
]
RunOut = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="results folder (default results/runs/<name>-<time>)"),
]
Resume = Annotated[
    Path | None,
    typer.Option(
        "--resume",
        help="finish an interrupted run in this results folder: its finished points are kept",
    ),
]
Verify = Annotated[
    bool,
    typer.Option("--verify", help="run every point twice; a different event sequence exits 3"),
]
Engine = Annotated[
    str | None,
    typer.Option(
        "--engine", help="sim (the deterministic simulation) or native (two real threads)"
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar and no table")]
RunFormat = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        help="summary: table, csv, tsv, markdown or json (auto: table on a "
        "terminal, csv when piped)",
    ),
]

# --- layout, presets ------------------------------------------------------------------------------
Model = Annotated[str, typer.Argument(help="model name, e.g. virtio-split or vbus-ioq")]
QueueSize = Annotated[int, typer.Option("--queue-size", "-n", help="descriptors in the ring")]
Segments = Annotated[
    int,
    typer.Option(
        "--segments", help="largest scatter/gather list (sizes indirect tables / sg pools)"
    ),
]
LayoutFormat = Annotated[str, typer.Option("--format", "-f", help="table or json")]
PresetName = Annotated[str | None, typer.Argument(help="a preset to show (default: list them)")]

# --- compare --------------------------------------------------------------------------------------
CompareResults = Annotated[
    list[Path],
    typer.Argument(
        metavar="RESULTS [CURRENT]",
        help="one results folder (models side by side) or BASELINE CURRENT (changes)",
    ),
]
Metrics = Annotated[
    list[str] | None,
    typer.Option("--metric", "-m", help="metric column(s) to show (repeat or comma-separate)"),
]
CompareWhere = Annotated[
    list[str] | None,
    typer.Option("--where", "-w", help="row filter KEY=VALUE (or !=, <, <=, >, >=); repeatable"),
]
CompareRef = Annotated[
    str | None,
    typer.Option("--ref", help="reference model label (default: the first virtio model)"),
]
CompareFormat = Annotated[
    str, typer.Option("--format", "-f", help="table, markdown, json, csv or gab-json")
]
ShowAll = Annotated[
    bool, typer.Option("--all", help="BASELINE CURRENT: every row, not only the changed ones")
]
FailOnRegression = Annotated[
    bool,
    typer.Option(
        "--fail/--no-fail", help="exit 1 when any metric got worse (BASELINE CURRENT only)"
    ),
]
Engines = Annotated[
    bool | None,
    typer.Option(
        "--engines/--models",
        help="one set: the simulation beside the native measurement, or models side by "
        "side (default: --engines when the set holds both engines)",
    ),
]

ByMode = Annotated[
    bool,
    typer.Option(
        "--by-mode/--single-price",
        help="--engines: each native repetition against the simulation priced at the "
        "line-transfer mode its probes saw (re-simulated), or all at the preset's figure",
    ),
]

# --- plot -----------------------------------------------------------------------------------------
PlotResults = Annotated[Path, typer.Argument(metavar="RESULTS", help="a results folder")]
PlotOut = Annotated[
    Path | None, typer.Option("--out", "-o", help="figure folder (default RESULTS/figures)")
]
X = Annotated[str | None, typer.Option("--x", help="column on the x axis")]
Y = Annotated[str | None, typer.Option("--y", help="metric on the y axis")]
Hue = Annotated[
    str | None, typer.Option("--hue", help="one series per value (default: the model label)")
]
Facet = Annotated[str | None, typer.Option("--facet", help="one panel per value")]
Kind = Annotated[str | None, typer.Option("--kind", "-k", help="line, heatmap, cdf or bar")]
PlotWhere = Annotated[
    list[str] | None,
    typer.Option("--where", "-w", help="row filter KEY=VALUE (or !=, <, <=, >, >=)"),
]
PlotRef = Annotated[
    str | None, typer.Option("--ref", help="draw differences from this model label")
]
PlotFormat = Annotated[str, typer.Option("--format", "-f", help="png, svg or pdf, comma-separated")]

# --- check ----------------------------------------------------------------------------------------
CheckConfig = Annotated[Path, typer.Option("--config", "-c", help="the gate's sweep config")]
CheckResults = Annotated[
    Path | None,
    typer.Option("--results", help="judge this results folder instead of running the sweep"),
]
Baseline = Annotated[Path, typer.Option("--baseline", "-b", help="the committed baseline folder")]
Report = Annotated[
    Path | None,
    typer.Option("--report", help="where check.md and check.json go (default: the run's folder)"),
]
CheckJobs = Annotated[
    int, typer.Option("--jobs", "-j", min=0, help="parallel processes (0: all cores)")
]
UpdateBaseline = Annotated[
    bool,
    typer.Option("--update-baseline", help="rewrite the baseline from this run, on purpose"),
]
Rerun = Annotated[
    bool, typer.Option("--rerun/--no-rerun", help="run twice; the rerun must be bit-identical")
]

# --- calibrate ------------------------------------------------------------------------------------
PresetOut = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", help="preset file to write (default: where preset 'calibrated' is found)"
    ),
]
Quick = Annotated[
    bool, typer.Option("--quick", help="fewer, shorter repetitions (seconds; noisier)")
]


Figures = Annotated[
    list[str] | None,
    typer.Option(
        "--figure",
        metavar="NAME",
        help="vary only this cost figure (repeatable; default every figure with a stated range)",
    ),
]
SensitivityQuick = Annotated[
    bool, typer.Option("--quick", help="a tenth of the requests per point (at least 2,000)")
]
SensitivityOut = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="folder for cases.csv, findings.csv and the tornado plots"),
]


# --- how --help shows them --------------------------------------------------------------------------
def reflow(doc: str | None) -> str | None:
    """A docstring as --help text: each paragraph one line, for the terminal to wrap (rich
    markup keeps a docstring's line breaks, which cut sentences mid-way on a wider or narrower
    terminal); a paragraph starting with ``\\b`` keeps its lines."""
    if not doc:
        return doc
    import inspect

    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def show_flags_without_a_type() -> None:
    """typer shows every option's value type, a flag's as ``<bool>``; a flag takes no value, so
    it shows none (``--verify``, ``--fail/--no-fail``, ``--help``)."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_vbench", False):
        return

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._vbench = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
