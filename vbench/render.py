"""Rich tables for people: the models side by side per sweep point, and layouts.

Only presentation lives here; every figure comes from the tidy result rows.
"""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

# (column title, row key, scale, format) shown per model in the summary
SUMMARY_METRICS: tuple[tuple[str, str, float, str], ...] = (
    ("kicks/req", "kicks_per_req", 1.0, "{:.3f}"),
    ("irqs/req", "interrupts_per_req", 1.0, "{:.3f}"),
    ("exits/req", "vm_exits_per_req", 1.0, "{:.3f}"),
    ("lines/req", "lines_per_req", 1.0, "{:.2f}"),
    ("p99 µs", "lat_p99_ns", 1e-3, "{:.1f}"),
    ("Mreq/s", "requests_per_s", 1e-6, "{:.2f}"),
)


def _fmt(v: Any, scale: float, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return fmt.format(v * scale)


def summary_table(rows: list[dict[str, Any]], swept: list[str], title: str) -> Table:
    """One row per point; for each model label a group of columns (models side by side)."""
    labels: list[str] = []
    for r in rows:
        if r["label"] not in labels:
            labels.append(r["label"])
    t = Table(title=title, show_lines=False, header_style="bold")
    t.add_column("#", justify="right")
    for k in swept:
        t.add_column(k.split(".")[-1], justify="right")
    for lbl in labels:
        for name, _, _, _ in SUMMARY_METRICS:
            t.add_column(f"{lbl}\n{name}", justify="right")
    by_point: dict[int, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_point.setdefault(r["point"], {})[r["label"]] = r
    for p in sorted(by_point):
        models = by_point[p]
        any_row = next(iter(models.values()))
        cells = [str(p)] + [str(any_row.get(k, "")) for k in swept]
        for lbl in labels:
            r = models.get(lbl, {})
            cells += [_fmt(r.get(key), sc, f) for _, key, sc, f in SUMMARY_METRICS]
        t.add_row(*cells)
    return t


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
