"""``vbench compare --engines`` by line-transfer mode (issue 13, item 1): each native repetition
is classified by its line probes and held against the simulation re-run at its mode's figure.

The native results are built here by hand (probes and measured figures chosen), so nothing
needs two free CPUs; the simulated side is real, and small (2000 requests).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cli import vbench

from vbench import compare, line_modes, results
from vbench.config import plan
from vbench.sweep import run_point

NAN = float("nan")

RAW: dict[str, Any] = {
    "name": "modes",
    "seed": 1,
    "preset": "kvm-modern",
    "workload": {"requests": 2000, "arrival": {"kind": "closed", "in_flight": 64}, "size": 16},
    "engine": {"batch": 1, "device": "poll", "driver": "poll"},
    "models": [{"model": "virtio-split", "label": "split", "queue_size": 256}],
    "sweep": {"product": {"engine.kind": ["sim", "native"]}},
}


# --- classification ------------------------------------------------------------------------------
def test_bimodal_probes_give_two_modes_and_unimodal_one() -> None:
    rng = np.random.default_rng(3)
    fast = 30 * np.exp(rng.normal(0, 0.05, 300))
    slow = 185 * np.exp(rng.normal(0, 0.05, 200))
    modes = line_modes.probe_modes(np.concatenate([fast, slow]))
    assert [m.value for m in modes] == [pytest.approx(30, rel=0.02), pytest.approx(185, rel=0.02)]
    assert modes[0].share == pytest.approx(0.6)
    assert len(line_modes.probe_modes(fast)) == 1


def test_a_few_probes_split_at_a_wide_gap_only() -> None:
    """A short run has fewer probes than the mode finder's tests need: the widest gap splits
    them where its sides are 1.5x apart or more; NaN probes (unpinned) are left out."""
    two = line_modes.probe_modes(np.array([30.0, 32.0, NAN, 29.0, 190.0, 180.0]))
    assert [m.value for m in two] == [30.0, 185.0]
    assert [m.count for m in two] == [3, 2]
    assert len(line_modes.probe_modes(np.array([30.0, 32.0, 40.0]))) == 1
    assert line_modes.probe_modes(np.array([NAN, NAN])) == []


def test_a_repetition_takes_the_mode_of_its_probes_or_is_mixed() -> None:
    modes = line_modes.probe_modes(np.array([30.0, 31.0, 29.0, 180.0, 185.0, 190.0]))
    fast, slow = modes
    assert line_modes.classify(modes, 31.0, 28.0) == fast
    assert line_modes.classify(modes, 170.0, 200.0) == slow
    assert line_modes.classify(modes, 30.0, 185.0) == line_modes.MIXED  # moved during the run
    assert line_modes.classify(modes, NAN, 175.0) == slow  # one probe decides
    assert line_modes.classify(modes, NAN, NAN) == line_modes.UNPROBED


def test_pricing_scales_the_invalidation_with_the_transfer() -> None:
    preset = plan(None, raw=RAW).points[0].preset
    priced = line_modes.priced_at(preset, 185.0)
    assert priced.value("line_transfer_ns") == 185.0
    ratio = preset.value("line_invalidate_ns") / preset.value("line_transfer_ns")
    assert priced.value("line_invalidate_ns") == pytest.approx(185.0 * ratio)
    rebuilt = line_modes.recorded_preset({"presets": {preset.name: preset.provenance()}})
    assert rebuilt is not None  # what meta.json recorded is the preset the run used
    assert (rebuilt.figures, rebuilt.op_costs) == (preset.figures, preset.op_costs)


# --- per-mode pricing ----------------------------------------------------------------------------
def native_row(rep: int, rps: float, before: float, after: float) -> dict[str, Any]:
    return {
        "point": 1,
        "engine.kind": "native",
        "engine": "native",
        "label": "split",
        "model": "virtio-split",
        "rep": rep,
        "seed": 1,
        "measured_requests_per_s": rps,
        "measured_kicks_per_req": 0.5,
        "measured_interrupts_per_req": 0.0,
        "measured_lat_p50_ns": 1000.0,
        "measured_lat_p99_ns": 4000.0,
        "line_probe_before_ns": before,
        "line_probe_after_ns": after,
    }


def make_set(tmp: Path, natives: list[dict[str, Any]]) -> results.ResultSet:
    """The simulated point of RAW run for real, beside hand-made native repetitions."""
    p = plan(None, raw=copy.deepcopy(RAW))
    sim = run_point(p.points[0])
    meta = {
        "name": "modes",
        "config": RAW,
        "swept": p.swept,
        "presets": {p.points[0].preset.name: p.points[0].preset.provenance()},
        "machine_fingerprint": "m1",
    }
    return results.load(results.write(tmp / "modes", [*sim, *natives], meta))


def simulated_at(line_ns: float) -> float:
    """The point simulated directly with the line at ``line_ns`` (and the invalidation alike)."""
    point = plan(None, raw=copy.deepcopy(RAW)).points[0]
    point.preset = line_modes.priced_at(point.preset, line_ns)
    return float(run_point(point)[0]["requests_per_s"])


def group(df: Any, line: str, col: str) -> Any:
    sel = df[(df["line_mode"] == line) & (df["metric"] == "requests_per_s")]
    assert len(sel) == 1, df
    return sel[col].iloc[0]


def test_each_repetition_is_held_against_the_simulation_at_its_mode(tmp_path: Path) -> None:
    rs = make_set(
        tmp_path,
        [
            native_row(0, 9e6, 30.0, 31.0),
            native_row(1, 2e6, 186.0, 184.0),
            native_row(2, 5e6, 30.0, 185.0),  # the host moved it: mixed
        ],
    )
    df = compare.sim_vs_native(rs, ["requests_per_s"])
    assert df.attrs["line_modes"].startswith("30 ns")
    fast, slow = group(df, "30 ns", "sim"), group(df, "185 ns", "sim")
    assert group(df, "30 ns", "sim_line_ns") == 30.0
    assert group(df, "185 ns", "sim_line_ns") == 185.0
    assert slow < fast  # a dearer line: fewer requests per second
    assert fast == simulated_at(30.0) and slow == simulated_at(185.0)
    assert group(df, "30 ns", "native") == 9e6 and group(df, "185 ns", "native") == 2e6
    assert group(df, "185 ns", "sim/native") == pytest.approx(slow / 2e6)
    assert group(df, "mixed", "native") == 5e6  # shown, but priced at no mode
    assert math.isnan(group(df, "mixed", "sim")) and math.isnan(group(df, "mixed", "sim_line_ns"))
    # the single price: every repetition against the simulation as run (the preset's 50 ns)
    one = compare.sim_vs_native(rs, ["requests_per_s"], by_mode=False)
    stored = float(rs.table.loc[rs.table["engine"] == "sim", "requests_per_s"].iloc[0])
    assert group(one, "all", "sim") == stored and group(one, "all", "sim_line_ns") == 50.0
    assert group(one, "all", "reps") == 3


def test_results_without_probes_compare_as_run(tmp_path: Path) -> None:
    rows = [native_row(k, 4e6, NAN, NAN) for k in range(2)]
    for r in rows:
        del r["line_probe_before_ns"], r["line_probe_after_ns"]
    rs = make_set(tmp_path, rows)
    df = compare.sim_vs_native(rs, ["requests_per_s"])
    assert group(df, "all", "sim_line_ns") == 50.0 and group(df, "all", "reps") == 2
    assert df.attrs["line_modes"] == ""


def test_cli_names_the_line_figure_of_every_simulated_number(tmp_path: Path) -> None:
    rs = make_set(tmp_path, [native_row(0, 9e6, 30.0, 30.0), native_row(1, 2e6, 186.0, 184.0)])
    r = vbench("compare", str(rs.path), "--engines", "--format", "csv", "-m", "requests_per_s")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "line_mode" in lines[0] and "sim_line_ns" in lines[0]
    assert any(",30 ns,30" in line for line in lines) and any(
        ",185 ns,185" in line for line in lines
    )
    r = vbench("compare", str(rs.path), "--single-price", "--format", "csv", "-m", "requests_per_s")
    assert r.returncode == 0, r.stderr
    assert ",all,50" in r.stdout and "185 ns" not in r.stdout
