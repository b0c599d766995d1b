"""Figures from a result folder: the default set a sweep's own dimensions call for, or one custom.

Every figure is drawn from the tidy table (and ``histograms.parquet`` for latency CDFs), so what
is plotted is exactly what ``results.csv`` says. Conventions kept across all figures, so that
figures of one run (and of runs with the same models) can be read side by side:

- each model label keeps one colour (and marker) everywhere: colours come from the Okabe-Ito
  palette, which stays distinguishable under the common colour-vision deficiencies, and are
  assigned by the *sorted* label names (:func:`colour_of`), never by drawing order or by which
  labels survive a ``where`` filter;
- axes carry units (:func:`vbench.metrics.label`); titles name the run, the cost preset and the
  workload, because a figure copied into a report loses its folder name;
- a sweep parameter is numeric (drawn to scale, log-scaled when it spans a decade) or else
  categorical (a list such as ``[0.9, 0.1]`` arrives as a string, drawn in sweep order);
- rows a figure does not separate (other swept parameters, replicates) are averaged, and the
  title says so, rather than silently drawn on top of each other.

Rendering is headless: figures are built on matplotlib's Agg canvas directly (no pyplot, no
display, no global backend switch), and matplotlib is imported only when a figure is drawn, so
importing this module (or ``vbench --help``) stays fast. Every user mistake (unknown column,
impossible combination, unwritable folder) is a :class:`~vbench.errors.VbenchError` with one line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vbench.counters import CAUSES
from vbench.errors import VbenchError, did_you_mean
from vbench.metrics import describe
from vbench.metrics import label as axis_label
from vbench.results import ResultSet

if TYPE_CHECKING:  # pragma: no cover - typing only; matplotlib is imported lazily
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design": distinguishable under protanopia, deuteranopia
# and tritanopia. Ordered so that the first colours (the common case of 2 to 5 models) are the
# most mutually distinct and the pale yellow, hard to see on white, comes late.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#000000",  # black
    "#F0E442",  # yellow
    "#56B4E9",  # sky blue: last, being the colour nearest another (blue)
)
# Beyond len(PALETTE) labels the colours repeat; marker and line style then still tell them apart.
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
# Causes of modeled time get a palette of their own (matplotlib's tableau-colorblind10), so a
# stacked bar segment is never mistaken for a model.
# Reordered so that neighbouring causes (adjacent segments of a stack) come from different
# families (blue, orange, grey) and the three greys never touch.
CAUSE_PALETTE: tuple[str, ...] = (
    "#006BA4",
    "#FF800E",
    "#ABABAB",
    "#595959",
    "#5F9ED1",
    "#C85200",
    "#A2C8EC",
    "#FFBC79",
    "#898989",
    "#CFCFCF",
)
HEATMAP_CMAP = "viridis"  # perceptually uniform and colour-blind safe
DIFF_CMAP = "PuOr"  # diverging, colour-blind safe; oriented so that purple is always "better"

KINDS: tuple[str, ...] = ("line", "heatmap", "cdf", "bar")
FIGURES_DIR = "figures"  # the subfolder of a result folder that figures go to by default
FORMATS: tuple[str, ...] = ("png", "svg", "pdf")
# The headline metrics of the default figures, in this order, where the table has them.
DEFAULT_METRICS: tuple[str, ...] = (
    "kicks_per_req",
    "interrupts_per_req",
    "lines_per_req",
    "lat_p99_ns",
    "requests_per_s",
)
# Heatmaps (and model-difference heatmaps) are drawn for fewer metrics: one per question.
HEATMAP_METRICS: tuple[str, ...] = ("lat_p99_ns", "requests_per_s")

DPI = 100
PANEL_W, PANEL_H = 3.8, 2.9  # inches per facet panel
MIN_WIDTH = 7.0  # inches: room for the title lines
MAX_PANELS = 24  # more would be unreadable: the user is asked to filter instead
MAX_SERIES = 24
MAX_HEAT_VALUES = 40  # distinct values per heatmap axis
ANNOTATE_CELLS = 64  # heatmap cells per panel up to which every cell gets its value written


# --- colours ----------------------------------------------------------------------------------
def _order(labels: Sequence[Any]) -> list[str]:
    return sorted({str(v) for v in labels})


def colour_of(label: Any, labels: Sequence[Any]) -> str:
    """The colour of ``label`` among ``labels``: fixed by the label's rank among the *sorted*
    distinct names, so it does not depend on drawing order, on the order the caller lists
    them in, or on which figure (or ``where`` filter) is being drawn."""
    order = _order(labels)
    name = str(label)
    if name not in order:
        raise VbenchError(f"no label {name!r} among {', '.join(order)}")
    return PALETTE[order.index(name) % len(PALETTE)]


def style_of(label: Any, labels: Sequence[Any]) -> tuple[str, str, str]:
    """Colour, marker and line style of ``label``: the marker doubles the colour (for print and
    for readers who cannot tell two colours apart); the line style changes only once the
    palette has been used up, so labels that share a colour still differ."""
    order = _order(labels)
    i = order.index(str(label)) if str(label) in order else 0
    return (
        PALETTE[i % len(PALETTE)],
        MARKERS[i % len(MARKERS)],
        LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)],
    )


def _series_styles(rs: ResultSet, hue: str | None, values: list[Any]) -> dict[Any, tuple]:
    """Styles per hue value: model labels (and model names) by their global rank in the whole
    result set, anything else (a swept parameter) by its rank among the values shown."""
    if hue in ("label", "model") and hue in rs.table.columns:
        universe = list(rs.table[hue].astype(str).unique())
        return {v: style_of(v, universe) for v in values}
    return {
        v: (
            PALETTE[i % len(PALETTE)],
            MARKERS[i % len(MARKERS)],
            LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)],
        )
        for i, v in enumerate(values)
    }


# --- small helpers ----------------------------------------------------------------------------
def _slug(text: str) -> str:
    """A file-name-safe form of a column name or condition (dots kept: ``engine.batch``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "x"


def _fmt_num(v: Any, k_from: float = 1e4) -> str:
    """A compact tick or cell label: 1.6M, 250k, 16, 0.25 (thousands from ``k_from`` up)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        try:
            v = float(v)
        except (TypeError, ValueError):
            return str(v)
    if isinstance(v, float) and math.isnan(v):
        return "–"
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.3g}G"
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= k_from:
        return f"{v / 1e3:.3g}k"
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3g}"


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _values(df: pd.DataFrame, col: str) -> list[Any]:
    """Distinct values of a column in reading order: numbers ascending, anything else in sweep
    order (the order the config listed them in, i.e. by point)."""
    s = df[col].dropna()
    if _is_numeric(s):
        return sorted(s.unique().tolist())
    if "point" in df.columns:
        s = df.sort_values("point", kind="stable")[col].dropna()
    return list(dict.fromkeys(s.tolist()))


def _ordered(rs: ResultSet, df: pd.DataFrame, col: str | None) -> list[Any]:
    """:func:`_values`, except model labels, which keep the config's order (legend, panels
    and bars list the models the way the config does)."""
    if col is None:
        return [None]
    vals = _values(df, col)
    if col != "label":
        return vals
    present = set(map(str, vals))
    first = [lbl for lbl in _labels(rs) if lbl in present]
    return first + [v for v in vals if v not in first]


def _check_column(df: pd.DataFrame, name: str, option: str, extra: Sequence[str] = ()) -> None:
    options = [*map(str, df.columns), *extra]
    if name not in options:
        raise VbenchError(
            f"{option} {name!r}: no such column{did_you_mean(name, options)}: "
            "pass a column of results.csv"
        )


def _check_metric(df: pd.DataFrame, name: str, option: str) -> None:
    _check_column(df, name, option)
    if not _is_numeric(df[name]):
        raise VbenchError(
            f"{option} {name!r} is not numeric: pass a metric such as lat_p99_ns or kicks_per_req"
        )
    if df[name].isna().all():
        raise VbenchError(f"{option} {name!r} has no values in the selected rows: pick another")


def _labels(rs: ResultSet) -> list[str]:
    """Model labels in the config's order (legend order)."""
    return rs.labels


def _varying(rs: ResultSet, df: pd.DataFrame) -> list[str]:
    """The swept parameters that take more than one value in ``df``."""
    return [p for p in rs.swept if p in df.columns and df[p].nunique(dropna=True) > 1]


def figure_axes(rs: ResultSet) -> list[str]:
    """The swept parameters the default figures draw along: those that vary and change some
    model's figures (an axis no model uses would only repeat the same lines)."""
    metrics = default_metrics(rs)
    return [p for p in _varying(rs, rs.table) if _changes_something(rs, rs.table, p, metrics)]


def _changes_something(rs: ResultSet, df: pd.DataFrame, param: str, metrics: list[str]) -> bool:
    """False when every model gives the same figures whatever ``param``'s value, the other
    swept values held (an axis no model uses: the figures along it would be duplicates)."""
    others = [p for p in rs.swept if p != param and p in df.columns]
    cols = [m for m in metrics if m in df.columns]
    # a class's figures move with the mix even where no model treats classes differently
    cols = [m for m in cols if not re.match(r"c\d+_", m)] or cols
    if not cols:
        return True
    grouped = df.groupby(["label", *others], dropna=False)[cols]
    return bool((grouped.nunique(dropna=False) > 1).any().any())


def _check_formats(formats: Sequence[str] | str) -> tuple[str, ...]:
    """The formats asked for, normalised: ``"png,svg"``, ``(".PNG", "svg")`` both work, so a
    CLI can pass its option through as typed."""
    if isinstance(formats, str):
        formats = (formats,)
    parts = (p.strip().lower().lstrip(".") for f in formats for p in str(f).split(","))
    out = tuple(dict.fromkeys(p for p in parts if p))
    if not out:
        raise VbenchError(f"no figure format given: pass one or more of {', '.join(FORMATS)}")
    for f in out:
        if f not in FORMATS:
            raise VbenchError(
                f"figure format {f!r} is not supported{did_you_mean(f, FORMATS)}: "
                f"use {', '.join(FORMATS)}"
            )
    return out


def _filter(table: pd.DataFrame, where: list[str] | None) -> pd.DataFrame:
    """Rows matching every ``where`` condition (the rules of ``vbench compare --where``)."""
    from vbench.compare import select

    return select(table, where) if where else table


# --- titles -----------------------------------------------------------------------------------
def context(rs: ResultSet) -> str:
    """One line naming the run, the cost preset and the workload, for figure titles.

    Workload settings the sweep varies are named as swept rather than shown with the base
    value, which no point of the figure might have."""
    cfg = rs.meta.get("config") or {}
    preset = cfg.get("preset", "kvm-modern")
    wl = cfg.get("workload") or {}
    swept = {p.split(".")[1] for p in rs.swept if p.startswith("workload.") and p.count(".") >= 1}
    parts: list[str] = []
    arrival = wl.get("arrival")
    if "arrival" in swept:
        kind = arrival.get("kind", "?") if isinstance(arrival, dict) else "?"
        parts.append(f"{kind} arrivals (swept)")
    elif isinstance(arrival, dict):
        text = f"{arrival.get('kind', '?')} arrivals"
        if "rate" in arrival:
            text += f" {_fmt_num(arrival['rate'])} req/s"
        if "in_flight" in arrival:
            text += f", {arrival['in_flight']} in flight"
        parts.append(text)
    size = wl.get("size")
    if "size" in swept:
        parts.append("size swept")
    elif isinstance(size, dict):
        vals = size.get("values")
        parts.append(
            f"size {size.get('kind', '')} {'/'.join(map(str, vals))} B".replace("  ", " ")
            if vals
            else f"size {size.get('kind', '?')}"
        )
    elif size is not None:
        parts.append(f"{size} B")
    if "segments" in swept:
        parts.append("segments swept")
    elif wl.get("segments") is not None:
        parts.append(f"{wl['segments']} seg/req")
    prio = wl.get("priority")
    if isinstance(prio, dict) and prio.get("classes", 1) > 1:
        shares = "shares swept" if "priority" in swept else f"shares {prio.get('shares', '?')}"
        parts.append(f"{prio['classes']} classes, {shares}")
    if wl.get("requests") is not None:
        parts.append(f"{_fmt_num(wl['requests'])} requests")
    what = ", ".join(parts) if parts else "workload as configured"
    return f"{rs.name} · preset {preset} · workload: {what}"


def _title(fig: Figure, rs: ResultSet, headline: str, notes: list[str]) -> None:
    """Headline, run context and notes, wrapped to the figure's width so none is clipped."""
    import textwrap

    width = max(40, int(fig.get_figwidth() * 14))  # characters of 9 pt text per inch, roughly
    lines = [headline, context(rs), *(["; ".join(notes)] if notes else [])]
    wrapped = [w for line in lines for w in textwrap.wrap(line, width, break_on_hyphens=False)]
    fig.suptitle("\n".join(wrapped), fontsize=9)


def _what(column: str) -> str:
    d = describe(column)
    return f"{column}: {d.what}" if d is not None else column


def _better_note(column: str) -> str:
    d = describe(column)
    return f"{d.better} is better" if d is not None and d.better != "none" else ""


# --- matplotlib plumbing ----------------------------------------------------------------------
def _figure(nrows: int, ncols: int, extra_w: float = 1.6) -> tuple[Figure, Any]:
    """A figure on the Agg canvas (headless, no pyplot state, nothing left open)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - a declared dependency
        raise VbenchError("matplotlib is not installed: pip install matplotlib") from None
    fig = Figure(
        figsize=(max(MIN_WIDTH, PANEL_W * ncols + extra_w), PANEL_H * nrows + 1.0),
        dpi=DPI,
        layout="constrained",
    )
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    return fig, axes


def _save(fig: Figure, out_dir: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    """Write the figure once per format. SVG and PDF carry no date and a fixed id salt, so the
    same results give byte-identical vector files (diffable, cacheable)."""
    from matplotlib import rc_context

    # lay the figure out once, not once per format (the layout costs as much as a render)
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        _declutter_x(fig)
        engine.execute(fig)
        fig.set_layout_engine("none")
    written = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        meta: dict[str, Any] = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
        try:
            with rc_context({"svg.hashsalt": "vbench", "svg.fonttype": "none"}):
                fig.savefig(path, format=fmt, dpi=DPI, metadata=meta)
        except OSError as e:
            raise VbenchError(
                f"cannot write {path}: {e.strerror or e}: pass a writable output folder"
            ) from None
        written.append(path)
    caption = fig.get_suptitle().replace("\n", " ") if hasattr(fig, "get_suptitle") else ""
    write_index(out_dir, {stem: {"caption": caption, "files": [p.name for p in written]}})
    return written


INDEX = "index"  # index.json (the record), index.md and index.html: every figure, its caption


def write_index(out_dir: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Add figures (stem -> caption and files) to the folder's index and rewrite index.md and
    index.html from it: every figure of the folder with its caption, in the order drawn."""
    import html
    import json

    record = out_dir / f"{INDEX}.json"
    try:
        known = json.loads(record.read_text()) if record.is_file() else {}
    except (OSError, ValueError):
        known = {}
    known = {**(known if isinstance(known, dict) else {}), **entries}
    md, body = ["# Figures", ""], []
    for stem, e in known.items():
        files = e.get("files") or []
        image = next((f for f in files if f.endswith((".svg", ".png"))), None)
        md += [f"## {stem}", "", str(e.get("caption", "")), ""]
        md += [f"![{stem}]({image})" if image else "", ", ".join(f"[{f}]({f})" for f in files), ""]
        links = ", ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in files)
        img = f'<img src="{html.escape(image)}" alt="{html.escape(stem)}">' if image else ""
        body.append(
            f'<figure id="{html.escape(stem)}">{img}<figcaption><b>{html.escape(stem)}</b>: '
            f"{html.escape(str(e.get('caption', '')))} ({links})</figcaption></figure>"
        )
    page = (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>figures</title>'
        "<style>img{max-width:100%}figure{margin:2em 0}</style></head><body>\n"
        f"<h1>Figures ({len(known)})</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    try:
        record.write_text(json.dumps(known, indent=1) + "\n")
        (out_dir / f"{INDEX}.md").write_text("\n".join(md))
        (out_dir / f"{INDEX}.html").write_text(page)
    except OSError as e:
        raise VbenchError(
            f"cannot write the figure index in {out_dir}: {e.strerror or e}"
        ) from None


def _prepare_out(out_dir: Path | str) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise VbenchError(f"{out} is not a folder: pass a folder for the figures")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VbenchError(
            f"cannot create the figure folder {out}: {e.strerror or e}: pass another folder"
        ) from None
    return out


def _axis_positions(values: list[Any], numeric: bool) -> dict[Any, float]:
    return {v: (float(v) if numeric else float(i)) for i, v in enumerate(values)}


def _style_x(ax: Axes, values: list[Any], numeric: bool, name: str, bottom: bool) -> None:
    """Ticks at the swept values; log scale when a positive numeric axis spans a decade
    (batch 1..64 is then evenly spread, as its doubling steps deserve)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    pos = list(_axis_positions(values, numeric).values())
    if numeric and values and min(values) > 0 and max(values) / min(values) >= 10:
        ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(pos))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([_fmt_num(v) if numeric else str(v) for v in values])
    if not numeric and len(values) > 1:
        ax.set_xlim(-0.5, len(values) - 0.5)
    if len(values) > 6 or (not numeric and max((len(str(v)) for v in values), default=0) > 10):
        for t in ax.get_xticklabels():
            t.set_rotation(30)
            t.set_horizontalalignment("right")
    if bottom:
        ax.set_xlabel(axis_label(name))
        ax.xaxis.set_tick_params(labelbottom=True)  # sharex hid them above an empty panel


def _log_ns_axis(ax: Axes) -> None:
    """A log latency axis labelled 1k, 2k, 5k, 10k...: a CDF often spans less than a decade,
    where matplotlib's default labels every minor tick in scientific notation on top of each
    other."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _fmt_num(v, k_from=1e3)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _y_axis(y: str, values: pd.Series, label: str, absolute: bool) -> tuple[float, str, bool]:
    """How a line figure's y axis shows ``y``: a latency (ns) in µs; a log scale when the
    positive values span more than a decade (the low lines are not flattened on the floor);
    differences (``absolute`` false) stay linear."""
    d = describe(y)
    scale = 1e-3 if d is not None and d.unit == "ns" else 1.0
    if scale != 1.0:
        label = label.replace("[ns]", "[µs]")
    v = values.to_numpy(dtype=float)
    v = v[(v > 0) & np.isfinite(v)] if absolute else v[:0]
    return scale, label, bool(v.size and v.max() / v.min() > 10)


def _log_y_axis(ax: Axes) -> None:
    """A log y axis labelled with plain numbers at 1, 2, 5 of each decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _fmt_num(v, k_from=1e3)))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _declutter_x(fig: Figure) -> None:
    """Tick labels that overlap (many or long values in a narrow panel) are turned 40°; if
    turned labels still crowd each other, only every k-th is kept."""
    import math as _m

    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        boxes = [t.get_window_extent(renderer) for t in labels]
        if not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:], strict=False)):
            continue
        for t in labels:
            t.set_rotation(40)
            t.set_horizontalalignment("right")
            t.set_rotation_mode("anchor")
        # turned text needs, between neighbours, its line height over sin(40°)
        need = max(b.height for b in boxes) / _m.sin(_m.radians(40))
        xs = [b.x1 for b in boxes]
        gap = min((b - a for a, b in zip(xs, xs[1:], strict=False)), default=need)
        k = max(1, _m.ceil(need / gap)) if gap > 0 else len(labels)
        for i, t in enumerate(labels):
            t.set_visible(i % k == 0)


def _legend(fig: Figure, handles: dict[Any, Any], title: str | None) -> None:
    if handles:
        fig.legend(
            list(handles.values()),
            [str(k) for k in handles],
            loc="outside right center",
            title=title,
            fontsize=8,
            title_fontsize=8,
        )


# --- data shaping -----------------------------------------------------------------------------
def _leftover_note(rs: ResultSet, df: pd.DataFrame, used: Sequence[str | None]) -> list[str]:
    """What the figure averages over: varying swept parameters it does not show, and rows
    (replicates) sharing every shown key."""
    used_set = {u for u in used if u}
    rest = [p for p in _varying(rs, df) if p not in used_set]
    notes = []
    if rest:
        notes.append("mean over " + ", ".join(f"{p} ({df[p].nunique()} values)" for p in rest))
    keys = [c for c in used_set if c in df.columns]
    if not rest and keys and df.duplicated(keys).any():
        notes.append(f"mean of {int(df.groupby(keys).size().max())} rows per point")
    return notes


def _with_ref(
    df: pd.DataFrame, metric: str, ref: str, relative: bool = False
) -> tuple[pd.DataFrame, bool]:
    """Each label's ``metric`` minus the reference label's at the same point (rows are paired
    by point: one point shares one workload across models); with ``relative``, in percent of
    the reference wherever that is possible (a reference of 0 anywhere falls back to absolute
    differences; the flag returned says which was drawn)."""
    labels = df["label"].astype(str)
    if ref not in set(labels):
        present = list(dict.fromkeys(labels))
        raise VbenchError(
            f"--ref {ref!r}: no such model label in the selected rows{did_you_mean(ref, present)}"
            f" (labels: {', '.join(present)})"
        )
    base = df[labels == ref].groupby("point")[metric].mean()
    out = df[labels != ref].copy()
    if out.empty:
        raise VbenchError(f"--ref {ref!r} is the only label in the selected rows: nothing to diff")
    ref_values = out["point"].map(base).to_numpy(dtype=float)
    diff = out[metric].to_numpy(dtype=float) - ref_values
    finite = ref_values[~pd.isna(ref_values)]
    relative = relative and finite.size > 0 and bool((finite != 0).all())
    out[metric] = 100.0 * diff / ref_values if relative else diff
    return out, relative


def _check_series(df: pd.DataFrame, col: str | None, option: str, limit: int) -> None:
    if col is not None and df[col].nunique(dropna=True) > limit:
        raise VbenchError(
            f"{option} {col!r} has {df[col].nunique()} values (at most {limit} fit): "
            "pick a column with fewer values or narrow the rows with --where"
        )


def _grid_pair(df: pd.DataFrame, params: list[str]) -> tuple[str, str] | None:
    """The first two parameters that form a full grid (every combination present): a zipped
    sweep varies them together and has no grid to draw."""
    for i, a in enumerate(params):
        for b in params[i + 1 :]:
            na, nb = df[a].nunique(), df[b].nunique()
            if na < 2 or nb < 2 or na > MAX_HEAT_VALUES or nb > MAX_HEAT_VALUES:
                continue
            if len(df[[a, b]].drop_duplicates()) == na * nb:
                # the axis with more (or numeric) values goes along x, where there is room
                if (nb > na) or (_is_numeric(df[b]) and not _is_numeric(df[a])):
                    return b, a
                return a, b
    return None


def _panels(
    rs: ResultSet, df: pd.DataFrame, facet: str | None, row: str | None
) -> tuple[list, list]:
    return _ordered(rs, df, row), _ordered(rs, df, facet)


def _subset(df: pd.DataFrame, facet: str | None, fv: Any, row: str | None, rv: Any):
    sub = df
    if facet is not None:
        sub = sub[sub[facet] == fv]
    if row is not None:
        sub = sub[sub[row] == rv]
    return sub


def _panel_title(facet: str | None, fv: Any, row: str | None, rv: Any) -> str:
    parts = []
    if row is not None:
        parts.append(f"{row}={_fmt_num(rv) if isinstance(rv, int | float) else rv}")
    if facet is not None:
        parts.append(f"{facet}={_fmt_num(fv) if isinstance(fv, int | float) else fv}")
    return " · ".join(parts)


def _layout(n_rows: int, n_cols: int, wrap: bool) -> tuple[int, int]:
    if wrap and n_rows == 1 and n_cols > 4:
        return math.ceil(n_cols / 4), 4
    return n_rows, n_cols


# --- figure kinds -----------------------------------------------------------------------------
class _Grid:
    """A figure's panels (``row`` x ``facet`` values) and, in each, the rows of every ``hue``
    series: the walk the line and CDF figures share. Unused axes are hidden."""

    def __init__(
        self, rs: ResultSet, agg: pd.DataFrame, facet: str | None, row: str | None, hue: str | None
    ) -> None:
        self.agg, self.facet, self.row, self.hue = agg, facet, row, hue
        self.hvals = _ordered(rs, agg, hue)
        self.styles = _series_styles(rs, hue, self.hvals)
        rows, cols = _panels(rs, agg, facet, row)
        nr, self.nc = _layout(len(rows), len(cols), wrap=row is None)
        self.fig, self.axes = _figure(nr, self.nc)
        self.cells = [(rv, fv) for rv in rows for fv in cols]

    def panels(self) -> Any:
        """(index, axes, row value, facet value, [(n, hue value, rows)]) per visible panel."""
        for k, ax in enumerate(self.axes.flat):
            if k >= len(self.cells):
                ax.set_visible(False)
                continue
            rv, fv = self.cells[k]
            sub = _subset(self.agg, self.facet, fv, self.row, rv)
            series = [
                (n, hv, sub if self.hue is None else sub[sub[self.hue] == hv])
                for n, hv in enumerate(self.hvals)
            ]
            yield k, ax, rv, fv, series


def _line_figure(
    rs: ResultSet,
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None,
    facet: str | None,
    row: str | None,
    ref: str | None = None,
) -> Figure:
    """``y`` against ``x``, one line per ``hue`` value, a panel per ``facet`` (× ``row``)
    value, panels sharing both axes so that they compare at a glance; with ``ref``, each
    label's difference from that label at the same point."""
    notes = _leftover_note(rs, df, [x, hue, facet, row])
    ylabel = axis_label(y)
    if ref is not None:
        df, _ = _with_ref(df, y, ref)
        ylabel = f"Δ {ylabel} vs {ref}"
    keys = [c for c in (row, facet, hue, x) if c]
    agg = df.groupby(keys, sort=False, dropna=False)[y].mean().reset_index()
    scale, ylabel, logy = _y_axis(y, agg[y], ylabel, ref is None)
    agg[y] = agg[y] * scale
    xnum = _is_numeric(df[x])
    xvals = _ordered(rs, df, x)
    pos = _axis_positions(xvals, xnum)
    grid = _Grid(rs, agg, facet, row, hue)
    fig, nc, cells, styles = grid.fig, grid.nc, grid.cells, grid.styles
    handles: dict[Any, Any] = {}
    for k, ax, rv, fv, series in grid.panels():
        for n, hv, s in series:
            s = s.dropna(subset=[y])
            if s.empty:
                continue
            s = s.assign(_pos=s[x].map(pos)).sort_values("_pos")
            colour, marker, ls = styles[hv] if hue else (PALETTE[0], MARKERS[0], "-")
            # where lines coincide, the later (thinner, hollow-marked) one leaves the earlier
            # one's edges and marker showing
            (line,) = ax.plot(
                s["_pos"],
                s[y],
                color=colour,
                marker=marker,
                linestyle=ls,
                markersize=5.5 - 0.3 * (n % 4),
                lw=max(1.0, 2.4 - 0.3 * n),
                markerfacecolor="white" if n % 2 else colour,
                zorder=2 + n * 0.01,
            )
            line.set_gid(f"series-{_slug(str(hv))}-{k}-{n}")
            handles.setdefault(hv, line)
        if ref is not None:
            ax.axhline(0.0, color="#555555", lw=0.8, zorder=0)
        ax.grid(True, alpha=0.3)
        title = _panel_title(facet, fv, row, rv)
        if title:
            ax.set_title(title, fontsize=8)
        _style_x(ax, xvals, xnum, x, bottom=k + nc >= len(cells))
        if logy:
            _log_y_axis(ax)
        if k % nc == 0:
            ax.set_ylabel(ylabel)
    if hue is not None:
        _legend(fig, handles, hue)
    head = f"{_what(y)} vs {x}" + (f" (difference from {ref})" if ref else "")
    better = _better_note(y)
    _title(fig, rs, head + (f" ({better})" if better else ""), notes)
    return fig


def _heatmap_figure(
    rs: ResultSet,
    df: pd.DataFrame,
    x: str,
    y: str,
    metric: str,
    facet: str | None,
    row: str | None,
    ref: str | None = None,
) -> Figure:
    """One panel per ``facet`` value (by default per model), all on one colour scale; with
    ``ref``, each label's difference from the reference on a diverging scale centred at 0."""
    import matplotlib
    import numpy as np

    notes = _leftover_note(rs, df, [x, y, facet, row])
    cbar_label = axis_label(metric)
    cmap_name = HEATMAP_CMAP
    d = describe(metric)
    relative = False
    if ref is not None:
        df, relative = _with_ref(df, metric, ref, relative=True)
        cbar_label = f"Δ {metric} vs {ref} [%]" if relative else f"Δ {cbar_label}: label − {ref}"
        cmap_name = DIFF_CMAP if d is not None and d.better == "higher" else f"{DIFF_CMAP}_r"
        if d is not None and d.better != "none":
            notes.append(f"purple: better than {ref}")
    xvals, yvals = _ordered(rs, df, x), _ordered(rs, df, y)
    rows, cols = _panels(rs, df, facet, row)
    grids = {}
    for rv in rows:
        for fv in cols:
            sub = _subset(df, facet, fv, row, rv)
            grid = sub.pivot_table(index=y, columns=x, values=metric, aggfunc="mean")
            grids[(rv, fv)] = grid.reindex(index=yvals, columns=xvals).to_numpy(dtype=float)
    norm = _heatmap_norm(list(grids.values()), centred=ref is not None)
    cmap = matplotlib.colormaps[cmap_name].with_extremes(bad="#d9d9d9")
    nr, nc = _layout(len(rows), len(cols), wrap=row is None)
    fig, axes = _figure(nr, nc, extra_w=1.2)
    image = None
    cells = list(grids)
    for k, ax in enumerate(axes.flat):
        if k >= len(cells):
            ax.set_visible(False)
            continue
        rv, fv = cells[k]
        g = grids[(rv, fv)]
        image = ax.imshow(
            np.ma.masked_invalid(g), origin="lower", aspect="auto", cmap=cmap, norm=norm
        )
        ax.set_xticks(range(len(xvals)), [_fmt_num(v) for v in xvals])
        ax.set_yticks(range(len(yvals)), [_fmt_num(v) for v in yvals])
        if g.size <= ANNOTATE_CELLS:
            kind = "relative" if relative else "difference" if ref is not None else "value"
            _annotate_cells(ax, g, (cmap, norm), kind)
        title = _panel_title(facet, fv, row, rv)
        if title:
            ax.set_title(title, fontsize=8)
        if k + nc >= len(cells):
            ax.set_xlabel(axis_label(x))
            ax.xaxis.set_tick_params(labelbottom=True)  # sharex hid them above an empty panel
        if k % nc == 0:
            ax.set_ylabel(axis_label(y))
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label=cbar_label, shrink=0.9)
    better = _better_note(metric)
    head = f"{_what(metric)} over {x} × {y}" + (f" ({better})" if better else "")
    if ref is not None:
        head = f"{metric}: difference from {ref} over {x} × {y}"
    _title(fig, rs, head, notes)
    return fig


def _heatmap_norm(grids: list[Any], centred: bool) -> Any:
    """One colour scale for every panel: their finite values' range, or (``centred``, for
    differences) symmetric about 0."""
    from matplotlib.colors import Normalize

    finite = np.concatenate([g[np.isfinite(g)] for g in grids] or [np.array([])])
    if centred:
        lim = float(np.max(np.abs(finite))) if finite.size else 1.0
        lim = lim or 1.0
        return Normalize(-lim, lim)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return Normalize(lo, hi if hi > lo else lo + 1.0)


def _annotate_cells(ax: Any, grid: Any, scale: tuple[Any, Any], kind: str) -> None:
    """Each finite cell's value written on it, in black or white by the cell's brightness.
    ``scale``: (colour map, norm); ``kind``: ``"relative"`` (% differences), ``"difference"``
    (differences, with their sign) or ``"value"``."""
    cmap, norm = scale
    for (i, j), v in np.ndenumerate(grid):
        if not np.isfinite(v):
            continue
        r, g, b, _ = cmap(norm(v))
        ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
        if kind == "relative":
            text = f"{v:+.0f}%" if abs(v) >= 9.5 else f"{v:+.1f}%"
        else:
            text = ("+" if kind == "difference" and v > 0 else "") + _fmt_num(v)
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color=ink)


def _cdf_figure(
    rs: ResultSet,
    hist: pd.DataFrame,
    hue: str | None,
    facet: str | None,
    row: str | None,
    notes: list[str],
) -> Figure:
    """Latency CDFs from the histogram buckets: the fraction of requests completed within each
    bucket's upper bound (an upper bound, so the curve never flatters a model)."""
    import numpy as np

    keys = [c for c in (row, facet, hue) if c]
    agg = hist.groupby([*keys, "upper_ns"], sort=True)["count"].sum().reset_index()
    grid = _Grid(rs, agg, facet, row, hue)
    fig, nc, cells, styles = grid.fig, grid.nc, grid.cells, grid.styles
    handles: dict[Any, Any] = {}
    for k, ax, rv, fv, series in grid.panels():
        for n, hv, s in series:
            total = float(s["count"].sum())
            if total <= 0:
                continue
            xs = s["upper_ns"].to_numpy(dtype=float)
            ys = np.cumsum(s["count"].to_numpy(dtype=float)) / total
            xs, ys = np.concatenate([[xs[0]], xs]), np.concatenate([[0.0], ys])
            colour, _marker, ls = styles[hv] if hue else (PALETTE[0], "", "-")
            (line,) = ax.plot(xs, ys, color=colour, linestyle=ls, lw=1.6, drawstyle="steps-post")
            line.set_gid(f"series-{_slug(str(hv))}-{k}-{n}")
            handles.setdefault(hv, line)
        for q in (0.5, 0.99):
            ax.axhline(q, color="#999999", lw=0.6, ls=":", zorder=0)
        _log_ns_axis(ax)
        ax.set_ylim(0.0, 1.02)
        ax.grid(True, which="major", alpha=0.3)
        title = _panel_title(facet, fv, row, rv)
        if facet == "class":
            title = title.replace("class=", "class ")
        if title:
            ax.set_title(title, fontsize=8)
        if k + nc >= len(cells):
            ax.set_xlabel("latency [ns]")
            ax.xaxis.set_tick_params(labelbottom=True)
        if k % nc == 0:
            ax.set_ylabel("fraction of requests")
    if hue is not None:
        _legend(fig, handles, hue)
    _title(fig, rs, "latency CDF" + (" per priority class" if facet == "class" else ""), notes)
    return fig


def _cause_columns(df: pd.DataFrame) -> list[str]:
    return [
        f"time_{c}_ns_per_req"
        for c in CAUSES
        if f"time_{c}_ns_per_req" in df.columns and _is_numeric(df[f"time_{c}_ns_per_req"])
    ]


def _bar_figure(
    rs: ResultSet,
    df: pd.DataFrame,
    x: str,
    y: str | None,
    hue: str | None,
    facet: str | None,
    row: str | None,
    notes: list[str],
) -> Figure:
    """Bars per ``x`` value. With ``y``: one metric, ``hue`` values side by side in each group,
    coloured like their model (the legend names them, the ticks name the groups). Without:
    one bar per ``x`` value (per model, by default) with modeled time per request stacked by
    cause, the causes in a palette of their own."""

    if hue == x or y is None:
        hue = None
    metrics = [y] if y else _cause_columns(df)
    if not y:
        # a cause no bar spends time on only clutters the legend
        metrics = [m for m in metrics if df[m].fillna(0).abs().sum() > 0] or metrics[:1]
    keys = [c for c in (row, facet, x, hue) if c]
    agg = df.groupby(keys, sort=False, dropna=False)[metrics].mean().reset_index()
    xvals = _ordered(rs, agg, x)
    hvals = _ordered(rs, agg, hue)
    styles = _series_styles(rs, hue, hvals) if hue else _series_styles(rs, x, xvals)
    rows, cols = _panels(rs, agg, facet, row)
    nr, nc = _layout(len(rows), len(cols), wrap=row is None)
    fig, axes = _figure(nr, nc, extra_w=2.2)
    width = 0.8 / max(len(hvals), 1)
    xnum = _is_numeric(agg[x])
    tick_labels = [_fmt_num(v) if xnum else str(v) for v in xvals]
    handles: dict[Any, Any] = {}
    cells = [(rv, fv) for rv in rows for fv in cols]
    for k, ax in enumerate(axes.flat):
        if k >= len(cells):
            ax.set_visible(False)
            continue
        rv, fv = cells[k]
        series = (x, xvals, hue, hvals, y, metrics, styles)
        _draw_bars(ax, _subset(agg, facet, fv, row, rv), (k, width), series, handles)
        ax.set_xticks(range(len(xvals)), tick_labels, fontsize=8)
        if len(xvals) > 1 and max(len(t) for t in tick_labels) * len(xvals) > 40:
            for t in ax.get_xticklabels():
                t.set_rotation(30)
                t.set_horizontalalignment("right")
        if y and _has_negative(metrics[0], agg):
            ax.axhline(0.0, color="#555555", lw=0.8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        title = _panel_title(facet, fv, row, rv)
        if title:
            ax.set_title(title, fontsize=8)
        if k + nc >= len(cells):
            if x != "label":
                ax.set_xlabel(axis_label(x))
            ax.xaxis.set_tick_params(labelbottom=True)
        if k % nc == 0:
            ax.set_ylabel(axis_label(y) if y else "modeled time per request [ns/request]")
    if not y:  # list causes top to bottom, as they are stacked
        handles = dict(reversed(list(handles.items())))
    _legend(fig, handles, "cause" if not y else hue)
    head = _what(y) if y else "modeled time per request by cause"
    _title(fig, rs, head + (f" by {x}" if x != "label" else ""), notes)
    return fig


def _draw_bars(
    ax: Any, sub: pd.DataFrame, where: tuple[int, float], series: tuple, handles: dict
) -> None:
    """One panel's bars: per ``x`` value, the ``hue`` values side by side, each bar one metric
    or (no ``y``) a stack of the causes; legend entries go into ``handles``. ``where``: the
    panel's index (in each bar's SVG id) and the bars' width; ``series``: (x, its values, hue,
    its values, y, the metrics drawn, the series' styles)."""
    import numpy as np

    k, width = where
    x, xvals, hue, hvals, y, metrics, styles = series
    for i, xv in enumerate(xvals):
        for j, hv in enumerate(hvals):
            s = sub[sub[x] == xv]
            if hue is not None:
                s = s[s[hue] == hv]
            if s.empty:
                continue
            at = i + (j - (len(hvals) - 1) / 2) * width
            bottom = 0.0
            for m_i, m in enumerate(metrics):
                v = float(s[m].iloc[0])
                if not np.isfinite(v):
                    continue
                if y:
                    name = hv if hue is not None else xv
                    colour = styles[name][0]
                else:
                    name = _cause_of(m)
                    colour = CAUSE_PALETTE[CAUSES.index(name) % len(CAUSE_PALETTE)]
                bar = ax.bar(at, v, width * 0.92, bottom=bottom, color=colour, ec="white", lw=0.4)
                bar.patches[0].set_gid(f"bar-{_slug(str(name))}-{k}-{i}-{j}-{m_i}")
                if not y or hue is not None:
                    handles.setdefault(name, bar.patches[0])
                if not y:
                    bottom += v


def _has_negative(metric: str, agg: pd.DataFrame) -> bool:
    """Whether a bar chart needs a zero line: it has negative bars (differences)."""
    return bool((agg[metric] < 0).any())


def _cause_of(column: str) -> str:
    return column[len("time_") : -len("_ns_per_req")]


def default_out_dir(rs: ResultSet) -> Path:
    """Where figures of a result folder go unless told otherwise: inside it, next to the data
    they were drawn from."""
    return rs.path / FIGURES_DIR


# --- the default set --------------------------------------------------------------------------
def _top_class_metric(df: pd.DataFrame) -> str | None:
    """The p99 latency of the highest priority class, when there are several classes: the
    figure that answers "what does priority buy"."""
    classes = sorted(
        int(m.group(1)) for c in df.columns if (m := re.fullmatch(r"c(\d+)_lat_p99_ns", str(c)))
    )
    if len(classes) < 2:
        return None
    col = f"c{classes[-1]}_lat_p99_ns"
    return col if df[col].notna().any() else None


def default_metrics(rs: ResultSet) -> list[str]:
    """The metrics the default figures show: :data:`DEFAULT_METRICS` plus the top priority
    class's p99 latency, those the table has with at least one value."""
    df = rs.table
    out = [m for m in DEFAULT_METRICS if m in df.columns and _is_numeric(df[m])]
    top = _top_class_metric(df)
    if top:
        out.insert(out.index("lat_p99_ns") + 1 if "lat_p99_ns" in out else len(out), top)
    return [m for m in out if df[m].notna().any()]


def _base_values(rs: ResultSet) -> dict[str, Any]:
    """The config's own (unswept) value of each swept parameter, as the table renders it."""
    cfg = rs.meta.get("config") or {}
    out = {}
    for p in rs.swept:
        node: Any = cfg
        for part in p.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            out[p] = node
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return str(a) == str(b)


def base_point(rs: ResultSet) -> int:
    """The sweep point the config itself describes (its unswept values), else the one closest
    to it: the point single-point figures (CDF, bars) are drawn at."""
    df = rs.table
    base = _base_values(rs)
    best, best_score = int(df["point"].min()), -1
    for p, rows in df.groupby("point", sort=True):
        first = rows.iloc[0]
        score = sum(_same(first[k], v) for k, v in base.items() if k in rows.columns)
        if score > best_score:
            best, best_score = int(p), score
    return best


def _point_desc(rs: ResultSet, point: int) -> str:
    row = rs.table[rs.table["point"] == point].iloc[0]
    if not rs.swept:
        return f"point {point}"
    vals = ", ".join(
        f"{p}={_fmt_num(row[p]) if _is_numeric(rs.table[p]) else row[p]}" for p in rs.swept
    )
    return f"point {point}: {vals}"


def default_figures(
    rs: ResultSet, out_dir: Path | str, formats: tuple[str, ...] = ("png", "svg")
) -> list[Path]:
    """Write the default figure set of a result folder; return every file written.

    What is drawn follows the sweep's own dimensions:

    - each default metric against each varying swept parameter, one line per model, faceted
      by the next parameter (and by rows of the one after);
    - where two parameters form a full grid: a heatmap per model, and the difference of each
      model from the reference model (the first virtio one), for :data:`HEATMAP_METRICS`;
    - latency CDFs per priority class at the config's own point (if histograms were written);
    - modeled time per request stacked by cause, per model, across the first parameter.
    """
    formats = _check_formats(formats)
    out = _prepare_out(out_dir)
    df = rs.table
    metrics = default_metrics(rs)
    params = figure_axes(rs)
    labels = _labels(rs)
    written: list[Path] = []

    def emit(fig: Figure, stem: str) -> None:
        written.extend(_save(fig, out, stem, formats))

    for i, x in enumerate(params):
        others = [p for p in params[i + 1 :] + params[:i] if df[p].nunique() <= 8]
        facet = others[0] if others else None
        row = others[1] if len(others) > 1 else None
        for m in metrics:
            stem = f"{m}-vs-{x}" + (f"-by-{facet}" if facet else "")
            emit(_line_figure(rs, df, x, m, "label", facet, row), _slug(stem))

    pair = _grid_pair(df, params)
    if pair:
        a, b = pair
        row = next((p for p in params if p not in pair and df[p].nunique() <= 6), None)
        heat = [m for m in (*HEATMAP_METRICS, _top_class_metric(df)) if m in metrics]
        for m in heat:
            emit(_heatmap_figure(rs, df, a, b, m, "label", row), _slug(f"heatmap-{m}-{a}-x-{b}"))
        if len(labels) >= 2:
            ref = _default_ref(rs)
            for m in heat:
                fig = _heatmap_figure(rs, df, a, b, m, "label", row, ref=ref)
                emit(fig, _slug(f"diff-{m}-{a}-x-{b}-vs-{ref}"))

    hist = rs.histograms()
    if hist is not None and not hist.empty:
        p = base_point(rs)
        h = hist[hist["point"] == p]
        if not h.empty:
            fig = _cdf_figure(rs, h, "label", "class", None, [f"at {_point_desc(rs, p)}"])
            emit(fig, f"cdf-latency-point{p}")

    if _cause_columns(df):
        x = params[0] if params else "label"
        sub, notes = df, []
        if len(params) > 1:
            # the other parameters fixed at the config's own point, not averaged: a stacked
            # bar of means would hide which configuration it is
            row0 = df[df["point"] == base_point(rs)].iloc[0]
            for p in params[1:]:
                sub = sub[sub[p] == row0[p]]
            notes.append(
                "at "
                + ", ".join(
                    f"{p}={_fmt_num(row0[p]) if _is_numeric(df[p]) else row0[p]}"
                    for p in params[1:]
                )
            )
        facet = x if x != "label" else None
        fig = _bar_figure(rs, sub, "label", None, None, facet, None, notes)
        emit(fig, _slug("time-by-cause" + (f"-vs-{x}" if facet else "")))
    return written


def _default_ref(rs: ResultSet) -> str:
    try:
        from vbench.compare import default_ref

        return default_ref(rs)
    except (ImportError, AttributeError):  # pragma: no cover - compare is optional here
        return _labels(rs)[0]


# --- custom figures ---------------------------------------------------------------------------
def custom_figure(
    rs: ResultSet,
    out_dir: Path | str,
    *,
    x: str | None = None,
    y: str | None = None,
    hue: str | None = "label",
    facet: str | None = None,
    kind: str = "line",
    formats: tuple[str, ...] = ("png", "svg"),
    where: list[str] | None = None,
    ref: str | None = None,
    row: str | None = None,
) -> list[Path]:
    """Write one figure of the user's choosing; return the files written.

    - ``line``: ``y`` (a metric, default lat_p99_ns) against ``x`` (default: the first swept
      parameter), one line per ``hue`` value, panels per ``facet`` (and ``row``) value;
    - ``heatmap``: ``x`` and ``y`` are the two axes (default: the first two swept parameters
      that form a grid), ``hue`` the metric coloured (default lat_p99_ns), panels per
      ``facet`` (default: per model label);
    - ``cdf``: latency CDFs from histograms.parquet, one line per ``hue``, panels per ``facet``
      (default: per priority class); rows selected by ``where`` are pooled;
    - ``bar``: bars per ``x`` value (default: per model), ``hue`` side by side; with ``y`` a
      metric, else modeled time per request stacked by cause.

    ``ref`` (a model label) plots each label's difference from it (line, heatmap, bar with
    ``y``). ``where`` keeps rows matching every ``KEY=VALUE`` (or ``!=``, ``<``, ...)
    condition. Rows a figure does not separate are averaged and the title says over what.
    """
    formats = _check_formats(formats)
    if kind not in KINDS:
        raise VbenchError(
            f"--kind {kind!r}: unknown{did_you_mean(kind, KINDS)}: use {', '.join(KINDS)}"
        )
    table = rs.table
    for option, name in (("--x", x), ("--facet", facet), ("--row", row)):
        if name is not None and kind != "cdf":
            _check_column(table, name, option)
    if hue is not None and kind not in ("heatmap", "cdf"):
        _check_column(table, hue, "--hue")
    df = _filter(table, where)
    suffix = "-where-" + "-".join(_slug(w) for w in where) if where else ""
    if kind == "line":
        fig, stem = _custom_line(rs, df, x, y, hue, facet, row, ref)
    elif kind == "heatmap":
        fig, stem = _custom_heatmap(rs, df, x, y, hue, facet, row, ref)
    elif kind == "cdf":
        fig, stem = _custom_cdf(rs, df, x, y, hue, facet, row, ref)
    else:
        fig, stem = _custom_bar(rs, df, x, y, hue, facet, row, ref)
    return _save(fig, _prepare_out(out_dir), _slug(stem + suffix), formats)


def _no_same(pairs: list[tuple[str, str | None]]) -> None:
    seen: dict[str, str] = {}
    for option, name in pairs:
        if name is None:
            continue
        if name in seen:
            raise VbenchError(
                f"{seen[name]} and {option} are both {name!r}: give them different columns"
            )
        seen[name] = option


def _first_param(rs: ResultSet, df: pd.DataFrame, kind: str) -> str:
    params = _varying(rs, df)
    if not params:
        raise VbenchError(
            f"--kind {kind}: no swept parameter varies in the selected rows: pass --x COLUMN "
            "(e.g. --x label)"
        )
    return params[0]


def _custom_line(
    rs: ResultSet,
    df: pd.DataFrame,
    x: str | None,
    y: str | None,
    hue: str | None,
    facet: str | None,
    row: str | None,
    ref: str | None,
) -> tuple[Figure, str]:
    x = x or _first_param(rs, df, "line")
    if hue == x:  # e.g. --x label: the axis already tells the models apart
        hue = None
    y = y or _default_metric(df, "--y")
    _check_metric(df, y, "--y")
    _no_same([("--x", x), ("--y", y), ("--hue", hue), ("--facet", facet), ("--row", row)])
    _check_series(df, hue, "--hue", MAX_SERIES)
    _check_panels(df, facet, row)
    if ref is not None and "label" in (x, facet, row):
        raise VbenchError("--ref compares labels point by point: do not also put label on an axis")
    fig = _line_figure(rs, df, x, y, hue, facet, row, ref)
    stem = f"{y}-vs-{x}" + (f"-by-{facet}" if facet else "") + (f"-vs-{ref}" if ref else "")
    if hue not in (None, "label"):
        stem += f"-hue-{hue}"
    return fig, stem


def _custom_heatmap(
    rs: ResultSet,
    df: pd.DataFrame,
    x: str | None,
    y: str | None,
    hue: str | None,
    facet: str | None,
    row: str | None,
    ref: str | None,
) -> tuple[Figure, str]:
    if x is None or y is None:
        pair = _grid_pair(df, _varying(rs, df))
        if pair is None:
            raise VbenchError(
                "--kind heatmap needs two axes: pass --x and --y as two swept parameters "
                "that form a grid (e.g. --x engine.batch --y workload.segments)"
            )
        x = x or (pair[0] if pair[0] != y else pair[1])
        y = y or (pair[1] if pair[1] != x else pair[0])
    _check_column(df, y, "--y")
    metric = hue if hue not in (None, "label") else _default_metric(df, "--hue")
    _check_metric(df, metric, "--hue")
    facet = facet if facet is not None else "label"
    _no_same([("--x", x), ("--y", y), ("--hue", metric), ("--facet", facet), ("--row", row)])
    for option, name in (("--x", x), ("--y", y)):
        n = df[name].nunique(dropna=True)
        if n < 2 or n > MAX_HEAT_VALUES:
            raise VbenchError(
                f"--kind heatmap: {option} {name!r} has {n} value(s) in the selected rows; "
                f"each axis needs 2 to {MAX_HEAT_VALUES}: pass --x and --y as two swept "
                "parameters (or loosen --where)"
            )
    if ref is not None and facet != "label" and df["label"].nunique() > 2:
        raise VbenchError(
            "--ref with --kind heatmap draws one panel per label: leave --facet unset"
        )
    _check_panels(df, facet, row)
    fig = _heatmap_figure(rs, df, x, y, metric, facet, row, ref)
    stem = f"{'diff' if ref else 'heatmap'}-{metric}-{x}-x-{y}" + (f"-vs-{ref}" if ref else "")
    return fig, stem


def _custom_cdf(
    rs: ResultSet,
    df: pd.DataFrame,
    x: str | None,
    y: str | None,
    hue: str | None,
    facet: str | None,
    row: str | None,
    ref: str | None,
) -> tuple[Figure, str]:
    if x is not None or y is not None:
        raise VbenchError(
            "--kind cdf plots latency from histograms.parquet: drop --x/--y "
            "(choose points with --where, split lines with --hue, panels with --facet)"
        )
    if ref is not None:
        raise VbenchError("--ref does not apply to --kind cdf: drop it")
    hist = rs.histograms()
    if hist is None or hist.empty:
        raise VbenchError(f"{rs.path}: no histograms.parquet: rerun vbench run to get latency CDFs")
    cols = [c for c in rs.table.columns if c not in ("label",)]
    keep = df[["point", "label", *[c for c in cols if c != "point" and c in (hue, facet, row)]]]
    h = hist.merge(keep.drop_duplicates(["point", "label"]), on=["point", "label"])
    if h.empty:
        raise VbenchError("--kind cdf: the selected rows have no histogram: loosen --where")
    facet = facet if facet is not None else "class"
    for option, name in (("--hue", hue), ("--facet", facet), ("--row", row)):
        if name is not None and name not in h.columns:
            _check_column(rs.table, name, option, extra=["class"])
    _no_same([("--hue", hue), ("--facet", facet), ("--row", row)])
    _check_series(h, hue, "--hue", MAX_SERIES)
    _check_panels(h, facet, row)
    used = [c for c in (hue, facet, row) if c]
    per_line = h.groupby(used)["point"].nunique().max() if used else h["point"].nunique()
    notes = []
    if per_line > 1:
        notes.append(f"pooled over up to {int(per_line)} points")
    elif h["point"].nunique() == 1:
        notes.append(f"at {_point_desc(rs, int(h['point'].iloc[0]))}")
    fig = _cdf_figure(rs, h, hue, facet, row, notes)
    stem = "cdf-latency" + (f"-by-{facet}" if facet != "class" else "")
    if hue not in (None, "label"):
        stem += f"-hue-{hue}"
    return fig, stem


def _custom_bar(
    rs: ResultSet,
    df: pd.DataFrame,
    x: str | None,
    y: str | None,
    hue: str | None,
    facet: str | None,
    row: str | None,
    ref: str | None,
) -> tuple[Figure, str]:
    x = x or "label"
    asked_x = x
    if y is not None:
        _check_metric(df, y, "--y")
    elif not _cause_columns(df):
        raise VbenchError("the table has no time_<cause>_ns_per_req columns: pass --y METRIC")
    if ref is not None:
        if y is None:
            raise VbenchError("--ref with --kind bar needs --y METRIC (a stacked bar has no diff)")
        df, _ = _with_ref(df, y, ref)
    _no_same([("--x", x), ("--y", y), ("--facet", facet), ("--row", row)])
    if y is None and x != "label":
        # stacked bars are coloured by cause, so models need the tick labels: the --x values
        # move to panels (and --facet, if given, to rows)
        if row is not None:
            raise VbenchError(
                "stacked bars by cause put --x in panels: pass at most one of --facet/--row, "
                "or pass --y METRIC for grouped bars"
            )
        facet, row, x = x, facet, "label"
    if y is not None and hue is not None and hue in (facet, row):
        raise VbenchError(f"--hue {hue!r} is also a panel column: give them different columns")
    _check_series(df, x, "--x", MAX_SERIES)
    if y is not None:
        _check_series(df, hue, "--hue", MAX_SERIES)
    _check_panels(df, facet, row)
    notes = _leftover_note(rs, df, [x, hue if y is not None else None, facet, row])
    if ref is not None:
        notes.append(f"difference from {ref}")
    fig = _bar_figure(rs, df, x, y, hue, facet, row, notes)
    stem = (f"{y}" if y else "time-by-cause") + (f"-vs-{ref}" if ref else "")
    stem += f"-by-{asked_x}" + (f"-facet-{facet}" if facet and facet != asked_x else "")
    return fig, stem


def _default_metric(df: pd.DataFrame, option: str) -> str:
    for m in ("lat_p99_ns", *DEFAULT_METRICS):
        if m in df.columns and _is_numeric(df[m]) and df[m].notna().any():
            return m
    raise VbenchError(f"no default metric in the table: pass {option} METRIC")


def _check_panels(df: pd.DataFrame, facet: str | None, row: str | None) -> None:
    n = (df[facet].nunique() if facet else 1) * (df[row].nunique() if row else 1)
    if n > MAX_PANELS:
        raise VbenchError(
            f"{n} panels (--facet {facet}{f' × --row {row}' if row else ''}): at most "
            f"{MAX_PANELS} fit: facet by a column with fewer values or narrow with --where"
        )
