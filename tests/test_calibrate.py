"""vbench calibrate and the simulation-against-measurement view.

The calibration runs for real (``--quick``: a few seconds) and must write a preset that
``preset = "calibrated"`` finds, every figure with its provenance. The view is tested on a
hand-made result set where every value, and so every median and ratio, is known: no native
run is needed for it.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from test_cli import vbench

from vbench import compare, results
from vbench.costs import COST_FIELDS, calibrated_path, load_preset
from vbench.errors import ConfigError, VbenchError
from vbench.native.modes import Mode


# --- calibrate ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One quick `vbench calibrate` into a private XDG config dir, shared by the tests below."""
    home = tmp_path_factory.mktemp("xdg")
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "NO_COLOR": "1"}
    r = vbench("calibrate", "--quick", env=env)
    assert r.returncode == 0, r.stderr
    return home, r


def test_calibrate_writes_a_preset_that_loads_by_name(
    calibrated: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, r = calibrated
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    path = calibrated_path()
    assert path == home / "vbench" / "presets" / "calibrated.toml"
    assert path.is_file()
    assert str(path) in r.stderr  # says where it wrote
    p = load_preset("calibrated")
    assert p.name == "calibrated"
    assert list(p.figures) == list(COST_FIELDS)


def test_every_figure_has_provenance_and_a_sane_value(
    calibrated: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, _ = calibrated
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    p = load_preset("calibrated")
    from vbench.results import fingerprint

    for name, f in p.figures.items():
        assert f.source.startswith("vbench calibrate "), name
        assert fingerprint() in f.source, name  # the machine it describes
        if f.tag == "M":
            assert f.value > 0, name
            assert "median of 3 runs" in f.source, name  # the spread travels with it
    # what cannot be measured is derived from the native engine's definition, never copied
    tags = {n: f.tag for n, f in p.figures.items()}
    assert tags["exit_ns"] == "D" and "500 + 500" in p.figures["exit_ns"].source
    assert tags["irq_exits"] == "D" and p.value("irq_exits") == 0.0
    assert tags["user_space_exit_factor"] == "D" and p.value("user_space_exit_factor") == 1.0
    for measured in ("line_transfer_ns", "wake_ns", "vcpu_wake_ns", "full_barrier_ns"):
        assert tags[measured] == "M"
    for derived in ("irq_send_ns", "irq_handler_ns"):
        assert tags[derived] == "D"
    # a native kick and a native call are the same notify: 1000 emulated cycles and an eventfd
    # write, so more than the cycles alone (irq_handler_ns) at any TSC rate
    assert p.value("irq_send_ns") == p.value("exit_ns")
    assert p.value("exit_ns") > p.value("irq_handler_ns") > 1000 / 10.0
    # a wake-up crosses the scheduler: slower than the write alone
    assert p.value("wake_ns") > p.value("exit_ns") - p.value("irq_handler_ns")


def test_calibrate_prints_the_figures_on_stdout(calibrated: tuple[Path, Any]) -> None:
    _, r = calibrated
    for what in ("cache-line ping-pong", "eventfd write", "eventfd wake-up", "TSC rate"):
        assert what in r.stdout
    assert "measuring" in r.stderr and "measuring" not in r.stdout  # progress on stderr


def test_calibrate_reports_the_line_transfer_modes(
    calibrated: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, r = calibrated
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    assert re.search(
        r"calibrate: line transfer: [12] modes?: \S+ ns \(\d+ % of samples\)", r.stderr
    )
    p = load_preset("calibrated")
    for name in ("line_transfer_ns", "line_invalidate_ns"):
        f = p.figures[name]
        assert f.has_range and f.low <= f.value <= f.high, name
        assert "mode" in f.range_source, name
    assert "# Line transfer, " in calibrated_path().read_text()


def hand_made(modes: tuple[Any, ...] = ()) -> Any:
    """A Calibration with known measurements (each median the value given) and line modes."""
    from vbench.native import calibrate

    cal = calibrate.Calibration(
        date="2030-01-02",
        fingerprint="abc",
        cpus=(0, 1),
        exit_cycles=500,
        entry_cycles=500,
        line_modes=modes,
    )
    for name, unit, v in (
        ("tsc_cycles_per_ns", "cycles/ns", 2.0),
        ("clock_ns", "ns", 20.0),
        ("full_barrier_ns", "ns", 5.0),
        ("copy_ns_per_byte", "ns/byte", 0.05),
        ("efd_write_ns", "ns", 300.0),
        ("efd_read_ns", "ns", 250.0),
        ("line_transfer_ns", "ns", 60.0),
        ("wake_ns", "ns", 9000.0),
    ):
        cal.measurements[name] = calibrate.Measurement(name, unit, name, (v * 0.9, v, v * 1.5))
    return cal


def test_calibrate_out_writes_elsewhere(tmp_path: Path) -> None:
    from vbench.native import calibrate

    out = calibrate.write(hand_made(), tmp_path / "sub" / "mine.toml")
    p = load_preset(str(out))
    # the derivation, checked by hand: 1000 cycles / 2 cycles per ns + 300 ns write
    assert p.value("exit_ns") == pytest.approx(800.0)
    assert p.value("line_transfer_ns") == 60.0  # the median, not the mean or the max
    assert "min 54, max 90 ns" in p.figures["line_transfer_ns"].source
    assert p.value("vcpu_wake_ns") == p.value("wake_ns") == 9000.0
    assert p.value("irq_handler_ns") == pytest.approx(500.0)  # 1000 cycles at 2 per ns
    assert p.value("irq_send_ns") == pytest.approx(800.0)
    assert not p.figures["line_transfer_ns"].has_range  # no modes found: no range claimed


TWO_MODES = (Mode(30.0, 0.62, 28.0, 34.0, 620), Mode(185.0, 0.38, 170.0, 200.0, 380))


def test_the_most_common_mode_is_the_figure_and_the_modes_its_range() -> None:
    p = hand_made(TWO_MODES).preset()  # a Preset: validated (low <= value <= high)
    line = p.figures["line_transfer_ns"]
    assert (line.value, line.low, line.high) == (30.0, 30.0, 185.0)  # not the median, 60
    assert line.tag == "M"
    assert "30 ns (62 % of samples), 185 ns (38 %)" in line.source
    assert "median of 3 runs" in line.source  # the per-run spread still travels with it
    assert "2 modes: 30 ns (62 % of samples), 185 ns (38 %)" in line.range_source
    invalidate = p.figures["line_invalidate_ns"]
    assert invalidate.tag == "E"
    assert (invalidate.value, invalidate.low, invalidate.high) == (30.0, 30.0, 185.0)
    assert invalidate.range_source == line.range_source
    # the larger share wins wherever it lies: here the slow mode
    slow_first = (Mode(30.0, 0.3, 28.0, 34.0, 300), Mode(185.0, 0.7, 170.0, 200.0, 700))
    line = hand_made(slow_first).preset().figures["line_transfer_ns"]
    assert (line.value, line.low, line.high) == (185.0, 30.0, 185.0)


def test_one_mode_spans_its_own_percentiles() -> None:
    one = (Mode(31.0, 1.0, 27.0, 40.0, 1000),)
    line = hand_made(one).preset().figures["line_transfer_ns"]
    assert (line.value, line.low, line.high) == (31.0, 27.0, 40.0)
    assert "1 mode: 31 ns (100 % of samples)" in line.range_source
    assert "5th to 95th percentile" in line.range_source


def test_the_range_and_the_modes_survive_the_toml_file(tmp_path: Path) -> None:
    from vbench.native import calibrate

    cal = hand_made(TWO_MODES)
    out = calibrate.write(cal, tmp_path / "mine.toml")
    text = out.read_text()
    assert "# Line transfer, 2 modes: 30 ns (62 % of samples), 185 ns (38 %)" in text
    assert "#   185 ns: 380 samples (38.0 %), 5th-95th percentile 170 to 200 ns" in text
    loaded = load_preset(str(out))
    assert loaded == cal.preset()  # every figure, range and source as written
    assert loaded.figures["line_transfer_ns"].high == 185.0
    assert not loaded.figures["wake_ns"].has_range  # only the line figures state one


def test_line_probe_is_short_and_in_the_range_of_a_transfer() -> None:
    from vbench.native import calibrate, sysio

    pair = sysio.cpu_pair()
    if pair is None:
        pytest.skip("one CPU: there is no pair to probe")
    ns_per_cycle = 1.0 / calibrate.tsc_rate(5_000_000)
    calibrate.line_probe_ns(pair, ns_per_cycle)  # loads the kernels
    start = time.perf_counter()
    probe = calibrate.line_probe_ns(pair, ns_per_cycle)
    took = time.perf_counter() - start
    assert 1.0 < probe < 5_000.0  # one-way ns: more than an L1 hit, less than a preemption
    assert took < 0.05


def test_native_rows_say_which_mode_they_ran_in() -> None:
    from test_native import _eng, _models, _wl

    from vbench.native import runner, sysio

    if sysio.cpu_pair() is None:
        pytest.skip("one CPU: the probe is skipped")
    rows = runner.run_point(_models("virtio-split"), _wl(500), _eng("poll"), None)
    assert [r["rep"] for r in rows] == [0, 1]
    for r in rows:
        for column in ("line_probe_before_ns", "line_probe_after_ns"):
            assert 1.0 < r[column] < 5_000.0, column


def test_unpinned_run_is_not_probed_and_the_probe_columns_are_timings() -> None:
    from vbench.metrics import describe
    from vbench.native import runner
    from vbench.simulation import NativeSpec

    assert math.isnan(runner.line_probe(NativeSpec(pin=False), 1.0))
    for column in ("line_probe_before_ns", "line_probe_after_ns"):
        assert describe(column).kind == "timing"  # never a sweep parameter nor a baseline
        assert describe(column).unit == "ns"


def test_missing_calibrated_preset_says_run_calibrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="run vbench calibrate"):
        load_preset("calibrated")
    r = vbench("presets", "calibrated", env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)})
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("vbench: error: preset 'calibrated'")
    assert "Traceback" not in r.stderr


# --- the simulation against the measurement -----------------------------------------------------
def sim_row(label: str, batch: int, device: str, **m: Any) -> dict[str, Any]:
    model = {"split": "virtio-split", "ioq": "vbus-ioq"}[label]
    base = {
        "point": 0,
        "engine.kind": "sim",
        "engine": "sim",
        "engine.batch": batch,
        "engine.device": device,
        # a model option swept for one model only: NaN on the other model's rows
        "models.split.event_idx": True if label == "split" else float("nan"),
        "label": label,
        "model": model,
        "requests_per_s": 1e6,
        "kicks_per_req": 0.5,
        "interrupts_per_req": 0.25,
        "lat_p50_ns": 1000.0,
        "lat_p99_ns": 4000.0,
    }
    base.update(m)
    return base


def native_row(label: str, batch: int, device: str, rep: int, **m: Any) -> dict[str, Any]:
    model = {"split": "virtio-split", "ioq": "vbus-ioq"}[label]
    base = {
        "point": 1,
        "engine.kind": "native",
        "engine": "native",
        "engine.batch": batch,
        "engine.device": device,
        "models.split.event_idx": True if label == "split" else float("nan"),
        "label": label,
        "model": model,
        "rep": rep,
        "measured_requests_per_s": 1e6,
        "measured_kicks_per_req": 0.5,
        "measured_interrupts_per_req": 0.25,
        "measured_lat_p50_ns": 1000.0,
        "measured_lat_p99_ns": 4000.0,
    }
    base.update(m)
    return base


def make_set(tmp: Path, rows: list[dict[str, Any]]) -> results.ResultSet:
    meta = {
        "name": "validate",
        "config": {"models": [{"model": "virtio-split", "label": "split"}]},
        "swept": ["engine.kind", "engine.batch", "engine.device", "models.split.event_idx"],
        "machine_fingerprint": "m1",
    }
    return results.load(results.write(tmp / "v", rows, meta))


def cell(df: Any, label: str, batch: int, metric: str, col: str) -> Any:
    sel = df[(df["label"] == label) & (df["engine.batch"] == batch) & (df["metric"] == metric)]
    assert len(sel) == 1, sel
    return sel[col].iloc[0]


@pytest.fixture
def mixed(tmp_path: Path) -> results.ResultSet:
    rows = [
        sim_row("split", 1, "poll", requests_per_s=2e6, kicks_per_req=0.0),
        sim_row("ioq", 1, "poll", requests_per_s=3e6),
        sim_row("split", 32, "poll", requests_per_s=5e6),  # no native run of this point
    ]
    # split, batch 1: three repetitions, out of order, median 1e6 (min 0.8e6, max 4e6)
    for rep, rps in ((2, 4e6), (0, 1e6), (1, 0.8e6)):
        rows.append(native_row("split", 1, "poll", rep, measured_requests_per_s=rps))
    rows.append(native_row("ioq", 1, "poll", 0, measured_requests_per_s=2e6))
    rows.append(native_row("ioq", 1, "poll", 1, measured_requests_per_s=4e6))
    rows.append(native_row("split", 1, "poll", 3, measured_kicks_per_req=0.0))
    return make_set(tmp_path, rows)


def test_engines_are_paired_by_point_and_label(mixed: results.ResultSet) -> None:
    assert compare.has_both_engines(mixed)
    df = compare.sim_vs_native(mixed)
    body = df[df["label"] != "geomean"]
    assert "engine.kind" not in df.columns  # the engine is what is compared, not a key
    assert set(body["metric"]) == {p[0] for p in compare.ENGINE_PAIRS}
    # split batch 1 (4 native reps: 4e6, 1e6, 0.8e6, 1e6 -> median 1e6)
    assert cell(df, "split", 1, "requests_per_s", "sim") == 2e6
    assert cell(df, "split", 1, "requests_per_s", "native") == 1e6
    assert cell(df, "split", 1, "requests_per_s", "native_min") == 0.8e6
    assert cell(df, "split", 1, "requests_per_s", "native_max") == 4e6
    assert cell(df, "split", 1, "requests_per_s", "reps") == 4
    assert cell(df, "split", 1, "requests_per_s", "sim/native") == pytest.approx(2.0)
    # ioq batch 1: median of two reps is their mean, 3e6: sim 3e6 -> ratio 1
    assert cell(df, "ioq", 1, "requests_per_s", "native") == 3e6
    assert cell(df, "ioq", 1, "requests_per_s", "sim/native") == pytest.approx(1.0)
    assert cell(df, "ioq", 1, "requests_per_s", "model") == "vbus-ioq"
    # split batch 1 kicks: sim 0, native median of (0.5, 0.5, 0.5, 0) = 0.5: ratio 0
    assert cell(df, "split", 1, "kicks_per_req", "sim/native") == 0.0
    # a point only the simulation ran: its native side is empty, not borrowed from elsewhere
    assert cell(df, "split", 32, "requests_per_s", "sim") == 5e6
    assert math.isnan(cell(df, "split", 32, "requests_per_s", "native"))
    assert math.isnan(cell(df, "split", 32, "requests_per_s", "sim/native"))
    assert cell(df, "split", 32, "requests_per_s", "reps") == 0


def test_geomean_row_and_within_30_percent_count(mixed: results.ResultSet) -> None:
    df = compare.sim_vs_native(mixed)
    g = df[(df["label"] == "geomean") & (df["metric"] == "requests_per_s")]
    assert len(g) == 1
    assert g["sim/native"].iloc[0] == pytest.approx(math.sqrt(2.0 * 1.0))
    assert g["reps"].iloc[0] == 1  # only ioq's ratio (1.0) lies within +-30 %


def test_metric_selection_by_either_name(mixed: results.ResultSet) -> None:
    df = compare.sim_vs_native(mixed, ["measured_lat_p99_ns,kicks_per_req"])
    assert list(dict.fromkeys(df["metric"])) == ["lat_p99_ns", "kicks_per_req"]
    with pytest.raises(VbenchError, match="no simulated/measured pair"):
        compare.sim_vs_native(mixed, ["lines_per_req"])


def test_where_filters_before_pairing(mixed: results.ResultSet) -> None:
    df = compare.sim_vs_native(mixed, ["requests_per_s"], ["label=ioq"])
    assert set(df["label"]) == {"ioq", "geomean"}


def test_one_engine_only_is_a_user_error(tmp_path: Path) -> None:
    rs = make_set(tmp_path, [sim_row("split", 1, "poll")])
    assert not compare.has_both_engines(rs)
    with pytest.raises(VbenchError, match="both engines"):
        compare.sim_vs_native(rs)


def test_cli_shows_engines_by_default_and_as_json(mixed: results.ResultSet) -> None:
    r = vbench("compare", str(mixed.path), "--format", "csv")
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0].split(",")
    assert {"sim", "native", "native_min", "native_max", "reps", "sim/native"} <= set(header)
    r = vbench("compare", str(mixed.path), "--engines", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["schema"] == compare.ENGINES_SCHEMA
    assert "engine.kind" not in d["keys"]
    row = next(
        x
        for x in d["rows"]
        if x["label"] == "split" and x["engine.batch"] == 1 and x["metric"] == "requests_per_s"
    )
    assert row["sim/native"] == pytest.approx(2.0)
    r = vbench("compare", str(mixed.path), str(mixed.path), "--engines")
    assert r.returncode == 2 and "--engines shows one result set" in r.stderr
