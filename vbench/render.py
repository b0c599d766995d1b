"""What people see: rich tables (the models side by side per sweep point, layouts, presets,
comparisons), the other output formats of a table (Markdown, CSV, JSON), and a sweep's
progress on stderr.

Only presentation lives here; every figure comes from the library (the tidy result rows, a
:class:`~vbench.compare.Report`, a layout dict). Data goes to stdout, progress and notes to
stderr; rich honours NO_COLOR.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vbench.commands import OnPoint, SweepDisplay


def stdout_console() -> Console:
    """The console for data: as wide as the terminal, or unbounded when piped (a wide table
    written to a file or a pager must not be crushed to 80 columns)."""
    return Console() if sys.stdout.isatty() else Console(width=100_000)


def stderr_console() -> Console:
    """The console for progress, notes and diagnostics."""
    return Console(stderr=True)


def write_json(document: Any) -> None:
    """A JSON document on stdout, indented, with a final newline."""
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _measure(table: Table) -> int:
    """The width ``table`` takes when nothing constrains it."""
    return Console(width=100_000).measure(table).maximum


def _broken(label: str) -> str:
    """A label broken after each hyphen: a narrower column header."""
    return label.replace("-", "-\n")


def _points_table(s: Any, title: str, columns: list[tuple[str, str]], header: Any) -> Table:
    """Sweep points down, the given (label, metric) columns across."""
    from rich.markup import escape

    from vbench.summary import short_key

    t = Table(title=escape(title), header_style="bold")
    t.add_column("#", justify="right")
    for k in s.keys:
        t.add_column(escape(short_key(k)), justify="right")
    for lbl, m in columns:
        t.add_column(escape(header(lbl, m)), justify="right")
    for p in s.points:
        cells = [str(p), *(s.params[p][k] for k in s.keys)]
        cells += [s.cells.get((p, lbl, m), "–") for lbl, m in columns]
        t.add_row(*map(escape, cells))
    return t


#: what ``vbench run --format`` takes: auto is a table on a terminal, CSV when piped
RUN_FORMATS = ("auto", "table", "csv", "tsv", "markdown", "json")


def show_summary(
    rows: list[dict[str, Any]], swept: list[str], raw: dict[str, Any], title: str, fmt: str = "auto"
) -> None:
    """A run's summary on stdout: on a terminal (or ``--format table``), tables that fit its
    width (``$COLUMNS`` when piped), the columns the same at every point said once above them
    and the kind of load in the caption; piped (or csv, tsv, markdown, json), every summary
    figure of every point and model, full width, in its own unit."""
    from vbench import summary as S

    tty = sys.stdout.isatty()
    fmt = ("table" if tty else "csv") if fmt == "auto" else fmt
    if fmt != "table":
        emit_frame(S.frame(rows, swept, raw), fmt, title)
        return
    s = S.summarise(rows, swept, raw)
    width = table_width()
    out = Console(width=width) if width else stdout_console()
    for note in s.notes():
        out.print(note, markup=False, highlight=False)
    for t in summary_tables(s, title, width):
        out.print(t)
    out.print(s.caption, markup=False, highlight=False)


def table_width() -> int | None:
    """The width tables for people must fit: the terminal's, or ``$COLUMNS`` when stdout is
    piped (None without it: as wide as they need, for a file or a pager)."""
    import os

    if sys.stdout.isatty():
        return stdout_console().width
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def summary_tables(s: Any, title: str, width: int | None) -> list[Table]:
    """The run summary (:class:`vbench.summary.Summary`) as tables no wider than ``width``
    (None: one table, as wide as it needs): the models side by side with every headline
    metric if that fits, else one table per metric, the models side by side, headers broken
    at hyphens, and the models split over several tables if even that is too wide."""
    from vbench.summary import short_name

    def fits(t: Table) -> bool:
        return width is None or _measure(t) <= width

    tables = []
    for header in (
        lambda lbl, m: f"{lbl}\n{short_name(m)}",
        lambda lbl, m: f"{_broken(lbl)}\n{short_name(m)}",
    ):
        t = _points_table(s, title, s.columns(), header)
        if fits(t):
            return [t]
    for m in s.metrics:
        labels = [lbl for lbl in s.labels if (lbl, m) not in s.constant_cells]
        name = f"{title}: {short_name(m)}"
        plain, broken = (lambda lbl, _m: lbl), (lambda lbl, _m: _broken(lbl))
        chunk: list[str] = []
        for lbl in labels:
            trial = [(x, m) for x in [*chunk, lbl]]
            if chunk and not fits(_points_table(s, name, trial, broken)):
                tables.append(_fitted(s, name, [(x, m) for x in chunk], plain, broken, fits))
                chunk = []
            chunk.append(lbl)
        if chunk:
            tables.append(_fitted(s, name, [(x, m) for x in chunk], plain, broken, fits))
    return tables


def _fitted(s: Any, name: str, cols: list[tuple[str, str]], plain: Any, broken: Any, fits: Any):
    """The table of ``cols`` with whole labels as headers if it fits, else broken ones."""
    t = _points_table(s, name, cols, plain)
    return t if fits(t) else _points_table(s, name, cols, broken)


def layout_table(d: dict[str, Any]) -> Table:
    """Every field of every area with its absolute offset and size, then the total."""
    t = Table(
        title=f"{d['model']} layout, queue size {d['queue_size']}",
        caption=f"total {d['total_bytes']} bytes = {d['total_lines']} lines of {d['line_bytes']}",
        header_style="bold",
    )
    for c in ("area", "field", "type", "offset", "size", "count", "lines", "writer"):
        t.add_column(c, justify="right" if c in ("offset", "size", "count", "lines") else "left")
    line = d["line_bytes"]
    for a in d["areas"]:
        for f in a["fields"]:
            first, last = f["offset"] // line, (f["offset"] + max(f["size"], 1) - 1) // line
            lines = f"{first}" if first == last else f"{first}–{last}"
            t.add_row(
                a["name"],
                f["name"],
                f["type"],
                str(f["offset"]),
                str(f["size"]),
                str(f["count"]),
                lines,
                a["writer"],
            )
    for name, s in d["structs"].items():
        for f in s["fields"]:
            t.add_row(
                f"struct {name}",
                f["name"],
                f["type"],
                f"+{f['offset']}",
                str(f["size"]),
                str(f["count"]),
                "",
                "",
            )
    return t


VERDICT_STYLE = {
    "same": "dim",
    "better": "green",
    "worse": "bold red",
    "changed": "yellow",
    "incomparable": "magenta",
}


def cell(v: Any) -> str:
    """One value as text: integers as integers, floats to 6 significant digits, NaN as –."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6g}"
    try:  # numpy scalars
        return cell(v.item())
    except AttributeError:
        return str(v)


def frame_table(df: Any, title: str, verdicts: bool = False) -> Table:
    """Any tidy DataFrame as a rich table; a ``verdict`` column is coloured by its value."""
    from rich.markup import escape

    t = Table(title=escape(title), header_style="bold")
    for c in df.columns:
        t.add_column(escape(str(c)), justify="left" if df[c].dtype == object else "right")
    for rec in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, rec, strict=True):
            text = escape(cell(v))
            if verdicts and c == "verdict":
                text = f"[{VERDICT_STYLE.get(str(v), '')}]{text}[/]"
            cells.append(text)
        t.add_row(*cells)
    return t


def markdown(df: Any) -> str:
    """A DataFrame as a Markdown table, every value through :func:`cell`."""
    cols = list(df.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for rec in df.itertuples(index=False):
        out.append("| " + " | ".join(cell(v) for v in rec) + " |")
    return "\n".join(out)


def emit_frame(df: Any, fmt: str, title: str, verdicts: bool = False) -> None:
    """A table on stdout in ``fmt``: csv, json (records), markdown, else a rich table."""
    if fmt in ("csv", "tsv"):
        sys.stdout.write(df.to_csv(index=False, sep="," if fmt == "csv" else "\t"))
    elif fmt == "json":
        sys.stdout.write(df.to_json(orient="records", indent=2) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(markdown(df) + "\n")
    else:
        stdout_console().print(frame_table(df, title, verdicts))


def spread_cells(df: Any, title: str) -> tuple[Any, str]:
    """A side-by-side table for people: where a model has ``min``, ``max`` and ``n`` columns
    (repetitions of a native run), its cell reads ``median [min-max]`` and the counts go to
    the title when they are all the same."""
    labels = [c.removesuffix(" min") for c in df.columns if str(c).endswith(" min")]
    if not labels:
        return df, title
    df = df.copy()
    counts = set()
    for lbl in labels:
        med, lo, hi = df[lbl], df[f"{lbl} min"], df[f"{lbl} max"]
        df[lbl] = [
            cell(m) if cell(lo_) == "–" or lo_ == hi_ else f"{m:.4g} [{lo_:.4g}-{hi_:.4g}]"
            for m, lo_, hi_ in zip(med, lo, hi, strict=True)
        ]
        counts |= {cell(n) for n in df[f"{lbl} n"] if cell(n) != "–"}
        df = df.drop(columns=[f"{lbl} min", f"{lbl} max"])
    if len(counts) == 1:
        df = df.drop(columns=[f"{lbl} n" for lbl in labels])
        title += f": median [min-max] over {counts.pop()} repetitions"
    else:
        title += ": median [min-max] over n repetitions"
    return df, title


def _compact(v: Any, digits: int) -> str:
    """A figure in ``digits`` significant digits (a median [min-max] text kept as it is)."""
    if isinstance(v, str):
        return v
    text = cell(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return text
    if text == "–" or (f == int(f) and abs(f) < 1e9):
        return text
    if 10 ** (digits - 1) <= abs(f) < 1e9:  # whole units: 123457, not 1.235e+05
        return f"{f:.0f}"
    return f"{f:.{digits}g}"


def side_by_side_tables(df: Any, title: str, width: int | None) -> list[Table]:
    """``vbench compare RESULTS`` (:func:`vbench.compare.side_by_side`) as tables no wider than
    ``width`` (None: one table, as wide as it needs), every cell a number, none cut to "…":
    the values and their ratios to the reference model in one table if that fits (headers
    broken at hyphens if need be), else the values and the ratios in tables of their own,
    each split over several tables by model if still too wide. Values read 4 significant
    digits, ratios 3 (every digit is in ``--format csv``)."""
    from rich.markup import escape

    from vbench.summary import short_key

    ref, labels = df.attrs["ref"], list(df.attrs["labels"])
    df, title = spread_cells(df, title)
    keys = list(df.columns[: list(df.columns).index("metric") + 1])
    geomean = df[keys[0]].astype(str).eq("geomean")  # the keys start with a point key
    ratio = {lbl: f"{lbl}/{ref}" for lbl in labels if lbl != ref}
    n_cols = [c for c in df.columns if str(c).endswith(" n")]

    def table(name: str, cols: list[str], broken: bool, rows: Any) -> Table:
        t = Table(title=escape(name), header_style="bold")
        for k in keys:
            t.add_column(escape(short_key(k) if k != "metric" else k))
        for c in cols:
            # a ratio's header names its reference unless the title does
            head = c.replace("/", "/\n") if c in ratio.values() and name == title else c
            head = head.removesuffix(f"/{ref}") if name.endswith(f"ratios to {ref}") else head
            t.add_column(escape(_broken(head) if broken else head), justify="right")
        for rec in df[rows].itertuples(index=False):
            d = dict(zip(df.columns, rec, strict=True))
            cells = [cell(d[k]) if str(d[k]) != "nan" else "" for k in keys]
            cells += [
                _compact(d[c], 3 if c in ratio.values() else 4) if width else _compact(d[c], 6)
                for c in cols
            ]
            t.add_row(*map(escape, cells))
        return t

    def fits(t: Table) -> bool:
        return width is None or _measure(t) <= width

    values = [x for lbl in labels for x in (lbl, f"{lbl} n") if x in [*labels, *n_cols]]
    everything = values + list(ratio.values())
    all_rows = df["metric"].notna()
    for broken in (False, True):
        t = table(title, everything, broken, all_rows)
        if fits(t):
            return [t]
    out = []
    base = title.replace(f" (ratios to {ref})", "")
    for name, cols, rows in (
        (f"{base}: values", values, ~geomean),
        (f"{base}: ratios to {ref}", list(ratio.values()), all_rows),
    ):
        chunk: list[str] = []
        for c in cols:
            if chunk and not fits(table(name, [*chunk, c], True, rows)):
                out.append(_fit_first(name, chunk, rows, table, fits))
                chunk = []
            chunk.append(c)
        if chunk:
            out.append(_fit_first(name, chunk, rows, table, fits))
    return out


def _fit_first(name: str, cols: list[str], rows: Any, table: Any, fits: Any) -> Table:
    """The table of ``cols`` with whole headers if it fits, else headers broken at hyphens."""
    t = table(name, cols, False, rows)
    return t if fits(t) else table(name, cols, True, rows)


def models_table(models: dict[str, Any]) -> Table:
    """Each model's summary, then its options with their defaults and descriptions."""
    t = Table(title="models", header_style="bold")
    for c in ("model", "option", "default", "what"):
        t.add_column(c)
    for name, definition in models.items():
        t.add_row(name, "", "", definition.summary)
        for option, f in definition.options.model_fields.items():
            t.add_row("", option, repr(f.default), f.description or "")
    return t


def provenance_table(preset: Any, title: str, value_format: str = "g") -> Table:
    """Every figure of a cost preset with its value, its tag (M, D, E) and its source."""
    t = Table(title=title, header_style="bold")
    for c in ("figure", "value", "tag", "source"):
        t.add_column(c, overflow="fold")
    for figure, v in preset.provenance().items():
        if figure == "op_costs":
            continue  # a table, not a figure: its rows follow
        t.add_row(figure, format(v["value"], value_format), v["tag"], v["source"])
    if preset.op_costs is not None:
        table = preset.op_costs
        ops = ", ".join(next(iter(table.ns.values()), {}))
        for i, (model, costs) in enumerate(table.ns.items()):
            values = " ".join(format(x, value_format) for x in costs.values())
            source = (
                f"ns per call of {ops}; {table.source} Range x{table.low_factor:g} to "
                f"x{table.high_factor:g}: {table.range_source}"
                if i == 0
                else "as above"
            )
            t.add_row(f"op_costs {model}", values, table.tag, source)
    return t


def findings_table_view(findings: list[Any]) -> Table:
    """``vbench sensitivity``: for each pair of models and verdict metric, who is ahead at the
    preset's figures, at how many points that holds across every figure's range, and what
    flips it where it does not."""
    from vbench.sensitivity import METRIC_WORDS

    t = Table(title="verdicts across the cost figures' ranges", header_style="bold")
    for c in ("comparison", "ahead at the preset's figures", "holds at", "flipped by"):
        t.add_column(c, overflow="fold")
    for f in findings:
        word = METRIC_WORDS.get(f.metric, f.metric)
        holds = f"{f.robust_points}/{f.points} points" + (" (robust)" if f.robust else "")
        t.add_row(f"{f.first} vs {f.second}, {word}", f.base_words(), holds, f.flip_words())
    return t


def measurements_table(calibration: Any) -> Table:
    """What ``vbench calibrate`` measured: median, min and max of each measurement."""
    t = Table(
        title=f"measured on {calibration.fingerprint}, {calibration.date}", header_style="bold"
    )
    for c in ("measurement", "median", "min", "max", "unit"):
        t.add_column(c, justify="left" if c in ("measurement", "unit") else "right")
    for m in calibration.measurements.values():
        t.add_row(m.what, f"{m.median:.4g}", f"{m.lo:.4g}", f"{m.hi:.4g}", m.unit)
    if getattr(calibration, "line_modes", ()):  # the host may move the vCPUs: say so
        t.caption = f"line transfer, {calibration.line_modes_words()}"
    return t


class SweepView(SweepDisplay):
    """``vbench run`` as a person sees it on stderr: the sweep's size, a spinner while the
    models compile, a progress bar, then the summary table on stdout. ``quiet`` leaves only
    the notes and the results folder."""

    def __init__(self, quiet: bool = False, fmt: str = "auto") -> None:
        self.quiet, self.fmt = quiet, fmt
        self.err = stderr_console()

    def note(self, text: str) -> None:
        self.err.print(f"[yellow]note:[/] {text}")

    def starting(self, plan: Any, runs: int, jobs: int, resuming: Path | None) -> None:
        if not self.quiet:
            self.err.print(
                f"[bold]{plan.name}[/]: {len(plan.points)} points × models = {runs} runs, "
                f"{jobs} job(s)" + (f", resuming {resuming}" if resuming is not None else "")
            )

    def compiling(self) -> contextlib.AbstractContextManager[Any]:
        if self.quiet:
            return contextlib.nullcontext()
        return self.err.status("compiling / loading the jitted models…", spinner="dots")

    @contextlib.contextmanager
    def running(self, points: int) -> Iterator[OnPoint | None]:
        if self.quiet:
            yield None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (TextColumn("[progress.description]{task.description}"), BarColumn())
        with Progress(
            *columns, MofNCompleteColumn(), TimeElapsedColumn(), console=stderr_console()
        ) as progress:
            task = progress.add_task("points", total=points)
            yield lambda _index, _failure: progress.advance(task)

    def finished(self, plan: Any, outcome: Any, folder: Path) -> None:
        if not self.quiet and outcome.rows and not outcome.interrupted:
            title = f"{plan.name} ({plan.raw.get('preset', 'kvm-modern')})"
            show_summary(outcome.rows, plan.swept, plan.raw, title, self.fmt)
        self.err.print(f"results: {folder}")

    def verified(self, points: int) -> None:
        if not self.quiet:
            self.err.print(
                f"verified: every point ran twice with the same event sequence ({points} points)"
            )


def show_report(report: Any, fmt: str) -> None:
    """``vbench compare``'s :class:`~vbench.compare.Report`: the notes on stderr, the document
    or the table on stdout in ``fmt``, then, for two result sets, the verdict counts."""
    err = stderr_console()
    for note in report.notes:
        err.print(f"[yellow]note:[/] {note}")
    if report.document is not None:
        write_json(report.document)
    elif report.verdicts and fmt == "table" and not len(report.table):
        err.print("no value changed")
    elif fmt == "table" and "labels" in report.table.attrs:  # one set: models side by side
        width = table_width()
        out = Console(width=width) if width else stdout_console()
        for t in side_by_side_tables(report.table, report.title, width):
            out.print(t)
    elif fmt == "table":
        table, title = spread_cells(report.table, report.title)
        emit_frame(table, fmt, title, report.verdicts)
    else:
        emit_frame(report.table, fmt, report.title, report.verdicts)
    if report.counts is not None:
        err.print(", ".join(f"{n} {v}" for v, n in report.counts.items() if n))


#: the columns of the failing values ``vbench check`` shows, after the row keys
FAILING_COLUMNS = ("metric", "kind", "old", "new", "change_pct", "verdict")


def show_gate(outcome: Any) -> None:
    """``vbench check``'s :class:`~vbench.check.GateOutcome`: what changed in the baseline, or
    the failing values (stdout) and where the reports are; then, if the gate passed, its
    verdict (a failure's is the caller's one-line error)."""
    err, result = stderr_console(), outcome.result
    for line in outcome.baseline_changes or []:
        err.print(line)
    if outcome.judged:
        if len(result.failing):
            show = result.failing[[*result.comparison.keys, *FAILING_COLUMNS]].head(40)
            stdout_console().print(frame_table(show, "failing values", True))
        markdown_path, json_path = outcome.reports
        err.print(f"report: {markdown_path} and {json_path}", soft_wrap=True)
    if result.code:
        return
    if outcome.baseline_changes is not None:
        err.print(result.headline, soft_wrap=True)
    else:
        err.print(f"vbench check: {result.headline}")
