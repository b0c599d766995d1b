"""Figures from result folders (vbench.plot).

The sweeps are the real configs (configs/default.toml with a third parameter no model uses, the
priority mix, a categorical list parameter: the figures skip it; configs/priority.toml: 2 parameters, 7 models, 2 priority classes) with few
requests, so that every figure kind meets real data while the file stays fast. The default
figures are rendered once per sweep (module fixtures) and every test reads those files.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vbench import plot
from vbench.errors import VbenchError
from vbench.results import ResultSet, load

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = 400
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"


# --- helpers ----------------------------------------------------------------------------------
def sweep(out: Path, config: str | None, raw: dict[str, Any] | None = None) -> ResultSet:
    """Run a config through the library the way ``vbench run`` does and load the folder back.

    meta.json is assembled here rather than by ``sweep.meta_of``, which asks git for the commit:
    the figures need only the name, the config as run and the swept keys."""
    from vbench import config as cfgmod
    from vbench import results, sweep

    plan = cfgmod.plan(config, [f"workload.requests={REQUESTS}"], raw=raw)
    outcome = sweep.run_plan(plan, 1)
    assert not outcome.failures, outcome.failures
    meta = {
        "name": plan.name,
        "config_file": str(config),
        "config": plan.raw,
        "config_hash": plan.config_hash,
        "seed": plan.raw.get("seed", 1),
        "swept": plan.swept,
        "points": len(plan.points),
        "status": "complete",
    }
    results.write(out, outcome.rows, meta)
    return load(out)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name}: not a PNG"
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert chunk == b"IHDR" and length == 13, f"{path.name}: no IHDR chunk first"
    return struct.unpack(">II", data[16:24])


def svg_root(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg", f"{path.name}: root is {root.tag}"
    assert root.get("width") and root.get("height"), f"{path.name}: no width/height"
    return root


def svg_text(path: Path) -> str:
    """All text of an SVG (figures are saved with text as text, not glyph outlines)."""
    return " ".join(t for el in svg_root(path).iter(f"{SVG_NS}text") for t in el.itertext())


def series_colours(path: Path) -> dict[str, set[str]]:
    """Stroke colour of every drawn series, by the label slug in its element id."""
    out: dict[str, set[str]] = {}
    for g in svg_root(path).iter(f"{SVG_NS}g"):
        m = re.fullmatch(r"series-(.+)-\d+-\d+", g.get("id", ""))
        if not m:
            continue
        for p in g.iter(f"{SVG_NS}path"):
            stroke = re.search(r"stroke:\s*(#[0-9a-fA-F]{6})", p.get("style", ""))
            if stroke:
                out.setdefault(m.group(1), set()).add(stroke.group(1).lower())
    return out


def stems(paths: list[Path]) -> set[str]:
    return {p.stem for p in paths}


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_rs(tmp_path_factory) -> ResultSet:
    from vbench.config import read_toml

    raw = read_toml(ROOT / "configs/default.toml")
    raw["workload"]["priority"] = {"classes": 2, "shares": [0.9, 0.1]}
    raw["sweep"]["product"]["workload.priority.shares"] = [[0.9, 0.1], [0.5, 0.5]]
    return sweep(tmp_path_factory.mktemp("default"), str(ROOT / "configs/default.toml"), raw)


@pytest.fixture(scope="module")
def prio_rs(tmp_path_factory) -> ResultSet:
    return sweep(tmp_path_factory.mktemp("priority"), str(ROOT / "configs/priority.toml"))


@pytest.fixture(scope="module")
def default_figs(default_rs, tmp_path_factory) -> list[Path]:
    return plot.default_figures(default_rs, tmp_path_factory.mktemp("figs-default"))


@pytest.fixture(scope="module")
def prio_figs(prio_rs, tmp_path_factory) -> list[Path]:
    return plot.default_figures(prio_rs, tmp_path_factory.mktemp("figs-priority"))


@pytest.fixture
def figs(request) -> tuple[ResultSet, list[Path]]:
    """(results, default figures) of the sweep named by the test's parameter."""
    name = request.param
    return request.getfixturevalue(f"{name}_rs"), request.getfixturevalue(f"{name}_figs")


BOTH = pytest.mark.parametrize("figs", ["default", "prio"], indirect=True)


# --- the default set --------------------------------------------------------------------------
@BOTH
def test_default_figures_cover_the_sweep(figs):
    rs, paths = figs
    names = stems(paths)
    params, metrics = plot.figure_axes(rs), plot.default_metrics(rs)
    assert {"kicks_per_req", "interrupts_per_req", "lines_per_req", "lat_p99_ns"} <= set(metrics)
    assert "c1_lat_p99_ns" in metrics  # both sweeps have 2 priority classes
    # a line figure of every default metric against every swept parameter, faceted by another
    for x in params:
        for m in metrics:
            assert any(n.startswith(f"{m}-vs-{x}-by-") for n in names), (m, x)
    kinds = {n.split("-")[0] for n in names if n.startswith(("heatmap", "diff", "cdf", "time"))}
    assert kinds == {"heatmap", "diff", "cdf", "time"}, names
    assert any(n.startswith("cdf-latency-point") for n in names)
    assert any(n.startswith("time-by-cause") for n in names)
    # every figure in both formats, nothing written twice
    assert len(paths) == len(set(paths)) == 2 * len(names)
    assert {p.suffix for p in paths} == {".png", ".svg"}


def test_default_figure_names_for_the_default_sweep(default_rs, default_figs):
    names = stems(default_figs)
    assert "lat_p99_ns-vs-engine.batch-by-workload.segments" in names
    # the priority mix changes nothing for these two models: no figure along it
    assert plot.figure_axes(default_rs) == ["engine.batch", "workload.segments"]
    assert not any("priority.shares" in n for n in names)
    assert "heatmap-lat_p99_ns-engine.batch-x-workload.segments" in names
    assert "diff-lat_p99_ns-engine.batch-x-workload.segments-vs-virtio-split" in names
    assert "time-by-cause-vs-engine.batch" in names
    # single-point figures are drawn at the config's own point: batch 16, 1 segment, [0.9, 0.1]
    p = plot.base_point(default_rs)
    row = default_rs.table[default_rs.table["point"] == p].iloc[0]
    assert (row["engine.batch"], row["workload.segments"]) == (16, 1)
    assert row["workload.priority.shares"] == "[0.9, 0.1]"
    assert f"cdf-latency-point{p}" in names
    # 6 metrics x 2 parameters of lines, 3 heatmaps and 3 differences, a CDF and the bars
    assert len(names) == 12 + 3 + 3 + 1 + 1


def test_default_figure_names_for_the_priority_sweep(prio_rs, prio_figs):
    names = stems(prio_figs)
    # the list parameter is categorical, the rate numeric: the rate goes along the heatmap's x
    assert "heatmap-c1_lat_p99_ns-workload.arrival.rate-x-workload.priority.shares" in names
    assert (
        "diff-c1_lat_p99_ns-workload.arrival.rate-x-workload.priority.shares-vs-virtio-fifo"
        in names
    )
    assert "c1_lat_p99_ns-vs-workload.priority.shares-by-workload.arrival.rate" in names
    assert "time-by-cause-vs-workload.priority.shares" in names
    assert len(names) == 12 + 3 + 3 + 1 + 1


@BOTH
def test_every_default_figure_is_a_valid_png_and_svg(figs):
    _rs, paths = figs
    for p in paths:
        assert p.is_file() and p.stat().st_size > 1000, p.name
        if p.suffix == ".png":
            w, h = png_size(p)
            assert 300 <= w <= 4000 and 200 <= h <= 4000, (p.name, w, h)
        else:
            root = svg_root(p)
            assert float(re.sub(r"[a-z]+$", "", root.get("width"))) > 100, p.name


@BOTH
def test_titles_name_preset_and_workload_and_axes_carry_units(figs):
    rs, paths = figs
    for p in paths:
        if p.suffix != ".svg":
            continue
        text = svg_text(p)
        assert "preset kvm-modern" in text and "workload:" in text, p.name
        assert rs.name in text, p.name
    line = next(p for p in paths if p.name.startswith("lat_p99_ns-vs-") and p.suffix == ".svg")
    assert "lat_p99_ns [µs]" in svg_text(line)  # latency in µs, not raw ns
    bars = next(p for p in paths if p.name.startswith("time-by-cause") and p.suffix == ".svg")
    assert "[ns/request]" in svg_text(bars)


def test_a_rendered_figure_is_not_blank_and_uses_the_model_colours(default_rs, default_figs):
    from matplotlib.image import imread

    png = next(p for p in default_figs if p.name.startswith("lat_p99_ns-vs-engine.batch"))
    img = imread(png)[..., :3]
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    colours = np.unique((img * 255).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # anti-aliased lines, text and markers, not one flat colour
    labels = list(default_rs.table["label"].unique())
    for label in labels:
        rgb = np.array([int(plot.colour_of(label, labels)[i : i + 2], 16) for i in (1, 3, 5)])
        hits = np.all(np.abs((img * 255).round() - rgb) <= 2, axis=-1).sum()
        assert hits > 50, f"{label}'s colour barely appears in {png.name}"


# --- colours ----------------------------------------------------------------------------------
def test_colour_of_is_fixed_by_the_sorted_names():
    labels = ["virtio-split", "vbus-ioq", "virtio-mq"]
    shuffled = ["virtio-mq", "virtio-split", "vbus-ioq", "vbus-ioq"]
    for label in labels:
        assert plot.colour_of(label, labels) == plot.colour_of(label, shuffled)
        assert plot.colour_of(label, labels) in plot.PALETTE
    assert len({plot.colour_of(lbl, labels) for lbl in labels}) == len(labels)
    assert plot.colour_of("vbus-ioq", labels) == plot.PALETTE[0]  # first in sorted order
    many = [f"m{i:02d}" for i in range(12)]  # past the palette: markers still differ
    assert len({plot.style_of(m, many) for m in many}) == len(many)
    with pytest.raises(VbenchError, match="no label 'nope'"):
        plot.colour_of("nope", labels)


@BOTH
def test_each_model_keeps_its_colour_across_figures(figs):
    rs, paths = figs
    labels = list(rs.table["label"].unique())
    expected = {plot._slug(lbl): plot.colour_of(lbl, labels).lower() for lbl in labels}
    svgs = [
        p
        for p in paths
        if p.suffix == ".svg" and (p.name.startswith(("lat_p99_ns-vs", "kicks_per_req-vs", "cdf-")))
    ]
    assert len(svgs) >= 3
    for p in svgs:
        seen = series_colours(p)
        assert set(seen) == set(expected), (p.name, seen)
        for slug, colours in seen.items():
            assert colours == {expected[slug]}, (p.name, slug, colours)


def test_a_filtered_figure_keeps_the_colours(prio_rs, tmp_path):
    """Dropping models with --where must not shift the others' colours."""
    labels = list(prio_rs.table["label"].unique())
    (svg,) = plot.custom_figure(
        prio_rs,
        tmp_path,
        x="workload.arrival.rate",
        y="c1_lat_p99_ns",
        formats=("svg",),
        where=["label!=virtio-fifo", "label!=vbus-shipped", "label!=virtio-mq-rr"],
    )
    seen = series_colours(svg)
    assert set(seen) == {"virtio-lookahead", "virtio-mq", "vbus-designed", "vbus-designed-rr"}
    for slug, colours in seen.items():
        assert colours == {plot.colour_of(slug, labels).lower()}


# --- custom figures ---------------------------------------------------------------------------
CUSTOM = [
    ("default", {"y": "kicks_per_req"}, "kicks_per_req-vs-engine.batch"),
    (
        "default",
        {
            "x": "engine.batch",
            "y": "lat_p99_ns",
            "facet": "workload.segments",
            "where": ["workload.priority.shares=[0.9, 0.1]"],
        },
        "lat_p99_ns-vs-engine.batch-by-workload.segments-where-",
    ),
    (
        "default",
        {"x": "engine.batch", "y": "lat_p99_ns", "hue": "workload.segments", "facet": "label"},
        "lat_p99_ns-vs-engine.batch-by-label-hue-workload.segments",
    ),
    (
        "default",
        {"x": "workload.segments", "y": "lat_p99_ns", "ref": "virtio-split"},
        "lat_p99_ns-vs-workload.segments-vs-virtio-split",
    ),
    ("default", {"kind": "heatmap"}, "heatmap-lat_p99_ns-engine.batch-x-workload.segments"),
    (
        "prio",
        {"kind": "heatmap", "hue": "c1_lat_p99_ns", "ref": "virtio-fifo"},
        "diff-c1_lat_p99_ns-workload.arrival.rate-x-workload.priority.shares-vs-virtio-fifo",
    ),
    ("prio", {"kind": "cdf", "where": ["workload.arrival.rate=2e6"]}, "cdf-latency-where-"),
    (
        "prio",
        {"kind": "cdf", "hue": "workload.arrival.rate", "where": ["label=vbus-designed"]},
        "cdf-latency-hue-workload.arrival.rate-where-label_vbus-designed",
    ),
    ("default", {"kind": "bar"}, "time-by-cause-by-label"),
    ("default", {"kind": "bar", "x": "engine.batch"}, "time-by-cause-by-engine.batch"),
    (
        "prio",
        {"kind": "bar", "x": "workload.arrival.rate", "y": "c1_lat_p99_ns"},
        "c1_lat_p99_ns-by-workload.arrival.rate",
    ),
]


@pytest.mark.parametrize(("which", "kwargs", "stem"), CUSTOM, ids=[c[2][:48] for c in CUSTOM])
def test_custom_figures(request, tmp_path, which, kwargs, stem):
    rs = request.getfixturevalue(f"{which}_rs")
    (png,) = plot.custom_figure(rs, tmp_path, formats=("png",), **kwargs)
    assert png.name.startswith(stem) and png.suffix == ".png"
    w, h = png_size(png)
    assert w > 300 and h > 200


def test_custom_figure_writes_every_format_and_svg_is_reproducible(default_rs, tmp_path):
    a = plot.custom_figure(default_rs, tmp_path / "a", formats=("png", "svg", "pdf"))
    b = plot.custom_figure(default_rs, tmp_path / "b", formats="svg,.SVG")
    assert [p.suffix for p in a] == [".png", ".svg", ".pdf"]
    assert a[2].read_bytes()[:5] == b"%PDF-"
    assert a[1].read_bytes() == b[0].read_bytes()  # no date, fixed ids: diffable figures


def test_custom_line_averages_what_it_does_not_show_and_says_so(default_rs, tmp_path):
    (svg,) = plot.custom_figure(
        default_rs, tmp_path, x="engine.batch", y="kicks_per_req", formats=("svg",)
    )
    text = svg_text(svg)
    assert "mean over workload.segments (3 values), workload.priority.shares (2 values)" in text


ERRORS = [
    ({"x": "engine.btch"}, "--x 'engine.btch': no such column (did you mean 'engine.batch'?)"),
    ({"y": "lat_p99"}, "--y 'lat_p99': no such column (did you mean 'lat_p99_ns'?)"),
    ({"hue": "lable"}, "(did you mean 'label'?)"),
    ({"facet": "workload.segmnts"}, "(did you mean 'workload.segments'?)"),
    ({"y": "label"}, "--y 'label' is not numeric: pass a metric"),
    ({"kind": "heatmp"}, "--kind 'heatmp': unknown (did you mean 'heatmap'?)"),
    ({"formats": ("jpg",)}, "figure format 'jpg' is not supported"),
    ({"formats": ()}, "no figure format given"),
    ({"x": "engine.batch", "facet": "engine.batch"}, "are both 'engine.batch'"),
    (
        {
            "kind": "heatmap",
            "where": ["workload.segments=1", "workload.priority.shares=[0.9, 0.1]"],
        },
        "--kind heatmap needs two axes: pass --x and --y",
    ),
    (
        {
            "kind": "heatmap",
            "x": "engine.batch",
            "y": "workload.segments",
            "where": ["engine.batch=16"],
        },
        "--x 'engine.batch' has 1 value(s)",
    ),
    ({"kind": "heatmap", "x": "engine.batch", "y": "engine.batch"}, "are both 'engine.batch'"),
    ({"kind": "heatmap", "hue": "model"}, "--hue"),
    ({"kind": "cdf", "x": "engine.batch"}, "--kind cdf plots latency from histograms.parquet"),
    ({"kind": "cdf", "facet": "clas"}, "(did you mean 'class'?)"),
    ({"kind": "bar", "ref": "virtio-split"}, "--ref with --kind bar needs --y METRIC"),
    ({"ref": "virtio-splt"}, "(did you mean 'virtio-split'?)"),
    ({"where": ["engine.batch=3"]}, "no rows match"),
    ({"where": ["engin.batch=16"]}, "no column 'engin.batch'"),
    ({"facet": "point", "row": "workload.segments"}, "72 panels"),
]


@pytest.mark.parametrize(("kwargs", "needle"), ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_user_mistakes_are_one_line_vbench_errors(default_rs, tmp_path, kwargs, needle):
    with pytest.raises(VbenchError) as err:
        plot.custom_figure(default_rs, tmp_path, **{"formats": ("png",), **kwargs})
    msg = str(err.value)
    assert needle in msg and "\n" not in msg, msg
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_unwritable_output_folder_is_a_vbench_error(default_rs, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(VbenchError, match="cannot create the figure folder"):
        plot.default_figures(default_rs, blocker / "figs")
    with pytest.raises(VbenchError, match="is not a folder"):
        plot.custom_figure(default_rs, blocker, formats=("png",))


def test_figures_go_inside_the_result_folder_by_default(default_rs):
    assert plot.default_out_dir(default_rs) == default_rs.path / "figures"


def test_cdf_needs_histograms(default_rs, tmp_path):
    import shutil

    copy = tmp_path / "nohist"
    shutil.copytree(default_rs.path, copy)
    (copy / "histograms.parquet").unlink()
    rs = load(copy)
    with pytest.raises(VbenchError, match="no histograms.parquet"):
        plot.custom_figure(rs, tmp_path / "f", kind="cdf", formats=("png",))


# --- sweeps of other shapes -------------------------------------------------------------------
def test_no_swept_parameter_still_gets_bars_and_cdfs(tmp_path):
    from vbench.config import read_toml

    raw = read_toml(ROOT / "configs/default.toml")
    del raw["sweep"]
    rs = sweep(tmp_path / "one", None, raw=raw)
    assert rs.swept == []
    paths = plot.default_figures(rs, tmp_path / "figs", formats=("png",))
    assert stems(paths) == {"cdf-latency-point0", "time-by-cause"}
    for p in paths:
        png_size(p)
    with pytest.raises(VbenchError, match="no swept parameter varies"):
        plot.custom_figure(rs, tmp_path / "figs", formats=("png",))
    (bar,) = plot.custom_figure(rs, tmp_path / "figs", x="label", y="lat_p99_ns", formats=("png",))
    assert bar.name == "lat_p99_ns-vs-label.png"


def test_a_zipped_sweep_has_no_heatmap(tmp_path):
    """Parameters swept together (zip) form a diagonal, not a grid: no heatmap to draw."""
    from vbench.config import read_toml

    raw = read_toml(ROOT / "configs/default.toml")
    raw["sweep"] = {"zip": {"engine.batch": [1, 4, 16], "workload.segments": [1, 2, 4]}}
    rs = sweep(tmp_path / "zip", None, raw=raw)
    assert rs.swept == ["engine.batch", "workload.segments"]
    assert plot._grid_pair(rs.table, rs.swept) is None
    with pytest.raises(VbenchError, match="needs two axes"):
        plot.custom_figure(rs, tmp_path / "figs", kind="heatmap", formats=("png",))
    (png,) = plot.custom_figure(rs, tmp_path / "figs", facet="workload.segments", formats=("png",))
    assert png.name == "lat_p99_ns-vs-engine.batch-by-workload.segments.png"


def test_importing_plot_does_not_import_matplotlib():
    code = "import sys, vbench.plot, vbench.cli; assert 'matplotlib' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_plot_command(prio_rs, tmp_path):
    """Through the CLI: the default set into --out (paths on stdout), a custom figure, and a
    bad name as one line with exit code 2."""
    from typer.testing import CliRunner

    from vbench.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["plot", str(prio_rs.path), "--out", str(tmp_path / "d"), "-f", "png"])
    assert r.exit_code == 0, r.output
    written = [Path(line) for line in r.stdout.splitlines() if line.endswith(".png")]
    assert written and all(p.is_file() and p.stat().st_size > 0 for p in written)
    c = runner.invoke(
        app,
        [
            "plot",
            str(prio_rs.path),
            "--out",
            str(tmp_path / "c"),
            "--kind",
            "cdf",
            "--where",
            "label=virtio-mq",
            "-f",
            "svg",
        ],
    )
    assert c.exit_code == 0, c.output
    assert any(line.endswith(".svg") for line in c.stdout.splitlines())
    bad = runner.invoke(app, ["plot", str(prio_rs.path), "--y", "c1_lat_p99"])
    assert bad.exit_code == 2
    assert "did you mean 'c1_lat_p99_ns'" in bad.output


# --- issue 15: readable figures ------------------------------------------------------------------
@BOTH
def test_index_lists_every_figure_with_its_caption(figs):
    _rs, paths = figs
    folder = paths[0].parent
    html = (folder / "index.html").read_text()
    md = (folder / "index.md").read_text()
    for p in paths:
        assert f'href="{p.name}"' in html and f"({p.name})" in md, p.name
    for stem in stems(paths):
        assert f"## {stem}" in md
    assert "preset kvm-modern" in md and "<figcaption>" in html  # the captions


def test_latency_axis_in_microseconds_on_a_log_scale_past_a_decade():
    import pandas as pd

    scale, label, log = plot._y_axis(
        "lat_p99_ns", pd.Series([2_000.0, 800_000.0]), "lat_p99_ns [ns]", True
    )
    assert (scale, label, log) == (1e-3, "lat_p99_ns [µs]", True)
    assert not plot._y_axis("lat_p99_ns", pd.Series([2e3, 9e3]), "x", True)[2]  # < a decade
    assert not plot._y_axis("lat_p99_ns", pd.Series([2e3, 9e5]), "x", False)[2]  # differences
    assert plot._y_axis("kicks_per_req", pd.Series([0.01, 1.0]), "k", True)[:2] == (1.0, "k")


def test_overlapping_x_labels_are_turned_then_thinned():
    fig, axes = plot._figure(1, 3)
    values = [f"a-long-category-{i}" for i in range(40)]
    for ax in axes[0]:
        ax.plot(range(40), range(40))
        plot._style_x(ax, values, False, "x", bottom=True)
        for t in ax.get_xticklabels():
            t.set_rotation(0)  # as crowded as it gets
    plot._declutter_x(fig)
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    for ax in axes[0]:
        shown = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        assert shown and shown[0].get_rotation() == 40 and len(shown) < 40
        # turned labels: neighbours at least a line height apart across their slant
        xs = [t.get_window_extent(renderer).x1 for t in shown]
        height = shown[0].get_size() * fig.dpi / 72
        assert min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= height


def test_up_to_seven_labels_get_distinct_colours_and_markers_none_near_another():
    labels = [f"m{i}" for i in range(7)]
    styles = [plot.style_of(m, labels) for m in labels]
    assert len({s[0] for s in styles}) == len({s[1] for s in styles}) == 7
    assert "#56B4E9" not in {s[0] for s in styles}  # sky blue, too near blue, comes last
