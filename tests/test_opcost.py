"""The ring operations' CPU cost per model, and the native harness's per-request work, timed
on one thread (:mod:`vbench.native.opcost`; issue 13, item 2).

Small runs (a few thousand requests, three repetitions): seconds once the loops are compiled.
Compiling them from a cold numba cache takes minutes on a 2-core machine (vbus-ioq's and
vbus-prio's operations are the slowest to compile); ``vbench calibrate`` compiles the same
loops, so whichever runs first pays.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from vbench.models import get_model, registry
from vbench.native import opcost

#: the figures' sum over the unstamped loop: exact per repetition by construction (each phase
#: is scaled to its unstamped time), off only by taking medians over the repetitions; seen
#: 0.997 to 1.011 on the development machine (2 vCPUs, load 3-5)
SUM_TOLERANCE = 0.10
REQUESTS = 2_048
BATCH = 32


@pytest.fixture(scope="module")
def measured() -> dict[str, opcost.ModelCosts]:
    """Every registered model with its defaults, timed once for the tests below."""
    return opcost.measure_models(repetitions=3, requests=REQUESTS, batch=BATCH)


def test_every_model_and_operation_has_a_positive_finite_cost(
    measured: dict[str, opcost.ModelCosts],
) -> None:
    assert set(measured) == set(registry())
    for label, costs in measured.items():
        assert list(costs.ops) == list(opcost.OP_NAMES), label
        for op, timing in costs.ops.items():
            for value in (timing.median_ns, timing.low_ns, timing.high_ns, timing.serialized_ns):
                assert math.isfinite(value) and value > 0, (label, op, timing)
            assert timing.low_ns <= timing.median_ns <= timing.high_ns, (label, op)
        assert costs.stamp_ns > 0, label


def test_the_loop_runs_the_protocols_cycle(measured: dict[str, opcost.ModelCosts]) -> None:
    """Per batch: an add and a kick decision per request, a pop per request and an empty one,
    an interrupt decision after each, a reap per request and the one that finds nothing, and
    each re-enable once (every model's re-check finds the ring quiet on one thread)."""
    cycles = REQUESTS // BATCH
    for label, costs in measured.items():
        calls = {op: timing.calls for op, timing in costs.ops.items()}
        assert calls["add"] == calls["kick_needed"] == REQUESTS, label
        assert calls["push_used"] == REQUESTS, label
        assert calls["pop"] == calls["interrupt_needed"] == REQUESTS + cycles, label
        assert calls["reap"] == REQUESTS + cycles, label
        for op in ("disable_kicks", "enable_kicks", "disable_interrupts", "enable_interrupts"):
            assert calls[op] == cycles, (label, op)


def test_costs_are_per_model(measured: dict[str, opcost.ModelCosts]) -> None:
    """virtio-mq decides on an interrupt after every completion (used_batch 1: a fence each
    time), virtio-split once per flush of 64: counted exactly, and the time follows."""
    split = measured["virtio-split"].ops["interrupt_needed"]
    mq = measured["virtio-mq"].ops["interrupt_needed"]
    assert mq.fences > 0.9 and split.fences < 0.1
    assert mq.serialized_ns > 1.5 * split.serialized_ns
    assert mq.median_ns > split.median_ns
    tables = {label: tuple(t.median_ns for t in c.ops.values()) for label, c in measured.items()}
    assert len(set(tables.values())) == len(tables)  # no two models share a table


def test_the_figures_add_up_to_the_loop(measured: dict[str, opcost.ModelCosts]) -> None:
    for label, costs in measured.items():
        check = costs.check
        assert abs(check.ratio - 1.0) <= SUM_TOLERANCE, (label, check.words())
        # serialized stamps keep the core from overlapping operations: more than the loop
        assert check.serialized_ratio > 1.0, (label, check.words())
        assert set(check.factors) == set(opcost.PHASE_NAMES)
        assert all(0.0 < f <= 1.5 for f in check.factors.values()), (label, check.words())


def test_harness_costs_are_positive_and_the_driver_does_more() -> None:
    harness = opcost.measure_harness_costs(repetitions=3, requests=REQUESTS)
    assert set(harness) == {"driver_ns", "device_ns"}
    for key, timing in harness.items():
        assert math.isfinite(timing.median_ns) and timing.median_ns > 0, key
        assert timing.calls == REQUESTS
    # the driver fills, checksums and stamps the payload and checks the completion (two TSC
    # reads); the device only verifies and stamps
    assert harness["driver_ns"].median_ns > harness["device_ns"].median_ns


def test_a_tiny_run_is_quick(measured: dict[str, opcost.ModelCosts]) -> None:
    """Once compiled (the fixture did), a small measurement takes well under a second."""
    mdef = get_model("virtio-split")
    started = time.monotonic()
    costs = opcost.measure_model("virtio-split", mdef, mdef.options(), 1, 256, BATCH)
    assert time.monotonic() - started < 5.0
    assert costs.ops["add"].calls == 256


def test_op_costs_of_a_native_refusal_are_refused() -> None:
    """What the native engine refuses, the one-thread loop refuses too, with its line."""
    from vbench.errors import ConfigError

    with pytest.raises(ConfigError, match="transport"):
        opcost.measure_models({"call": ("vbus-ioq", {"transport": "call"})}, 1, 64)


def test_calibration_carries_and_shows_them(measured: dict[str, opcost.ModelCosts]) -> None:
    from vbench.native.calibrate import Calibration

    cal = Calibration("2026-12-07", "machine", None, 500, 500)
    cal.op_costs = {label: costs.ops for label, costs in measured.items()}
    cal.op_checks = {label: costs.check for label, costs in measured.items()}
    timing = opcost.OpTiming.of([40.0, 38.0, 41.0], REQUESTS)
    cal.harness = {"driver_ns": timing, "device_ns": opcost.OpTiming.of([5.0], REQUESTS)}
    rows = cal.op_cost_rows()
    assert rows[0] == ["model", *opcost.OP_NAMES, "sum check"]
    assert [row[0] for row in rows[1:]] == list(measured)
    lines = cal.op_cost_lines()
    assert lines[0].startswith("virtio-") or lines[0].startswith("vbus-")
    assert lines[-1] == "native harness per request: driver 40 ns [38-41], device 5 ns [5-5]"


# --- the calibrated preset ------------------------------------------------------------------------
def _calibration(measured: dict[str, opcost.ModelCosts]) -> Any:
    """test_calibrate's hand-made calibration, with this module's measured table and a
    hand-made harness."""
    from test_calibrate import hand_made

    cal = hand_made()
    cal.op_costs = {label: costs.ops for label, costs in measured.items()}
    cal.op_checks = {label: costs.check for label, costs in measured.items()}
    cal.harness = {
        "driver_ns": opcost.OpTiming.of([40.0, 38.0, 41.0], REQUESTS),
        "device_ns": opcost.OpTiming.of([5.0, 4.5, 6.0], REQUESTS),
    }
    return cal


def test_the_calibrated_preset_carries_the_table_and_the_harness(
    measured: dict[str, opcost.ModelCosts],
) -> None:
    p = _calibration(measured).preset()  # a Preset: validated
    table = p.op_costs
    assert table is not None and table.tag == "M"
    assert "vbench calibrate 2030-01-02, machine abc" in table.source
    assert "median of 3 runs" in table.source
    assert set(table.ns) == set(registry())
    for model, ops in table.ns.items():
        # the fences an operation executes are priced by full_barrier_ns, not twice
        for op, t in measured[model].ops.items():
            if t.fences == 0:
                assert ops[op] == t.median_ns
            else:
                assert 0.1 * t.median_ns <= ops[op] < t.median_ns
    assert any(t.fences > 0 for t in measured["virtio-split"].ops.values())
    assert "minus the full fences" in table.source
    assert 0.5 <= table.low_factor <= 1.0 <= table.high_factor <= 2.0
    assert "clamped to [0.5, 2]" in table.range_source
    driver = p.harness["driver_ns"]
    assert (driver.value, driver.low, driver.high, driver.tag) == (40.0, 38.0, 41.0, "M")
    assert p.harness["device_ns"].value == 5.0


def test_the_range_factor_is_the_spread_of_the_runs_clamped() -> None:
    from test_calibrate import hand_made

    cal = hand_made()
    steady = opcost.OpTiming.of([10.0, 9.0, 11.0], 100)
    cal.op_costs = {"virtio-split": {op: steady for op in opcost.OP_NAMES}}
    table = cal.preset().op_costs
    assert (table.low_factor, table.high_factor) == (0.9, 1.1)
    wild = opcost.OpTiming.of([10.0, 1.0, 100.0], 100)
    cal.op_costs["virtio-split"] = {**cal.op_costs["virtio-split"], "pop": wild}
    table = cal.preset().op_costs
    assert (table.low_factor, table.high_factor) == (0.5, 2.0)


def test_the_table_and_the_harness_survive_the_toml_file(
    measured: dict[str, opcost.ModelCosts], tmp_path: Path
) -> None:
    from vbench.costs import load_preset
    from vbench.native import calibrate

    cal = _calibration(measured)
    text = calibrate.write(cal, tmp_path / "mine.toml").read_text()
    assert '[op_costs.ns."virtio-split"]' in text
    assert "[harness.driver_ns]" in text and "[harness.device_ns]" in text
    assert "# Ring operations, ns per call on one thread" in text
    assert load_preset(str(tmp_path / "mine.toml")) == cal.preset()
