"""The ring operations' own CPU work (a preset's ``op_costs``): counted per operation, priced
per model, charged to the side that ran the operation, and nothing else.

The exactness tests use costs that are small whole numbers of nanoseconds, so every sum of them
is exact in float64 and "exactly the counted operations times their costs" can be asserted with
``==``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import counters

from vbench.costs import OP_COSTS_FACTOR, OpCosts, load_preset, override
from vbench.counters import CAUSES, COUNTERS, OPS, T_OPS
from vbench.errors import ConfigError
from vbench.models import get_model, registry
from vbench.simulation import EngineSpec, engine_params, run_model
from vbench.workload import WorkloadSpec, generate

#: operation k costs 2**k ns: any mix-up of two operations' counts or costs shows in the sum
WHOLE_NS = {op: float(2**k) for k, op in enumerate(OPS)}
ONE_IN_FLIGHT = {"requests": 400, "arrival": {"kind": "closed", "in_flight": 1}}
BUSY = {
    "requests": 3000,
    "arrival": {"kind": "onoff", "rate": 2e7, "on_us": 5.0, "off_us": 60.0},
    "size": {"kind": "mix", "values": [64, 1500], "weights": [0.5, 0.5]},
    "segments": {"kind": "range", "low": 1, "high": 3},
}


def _priced(model: str, table: dict[str, float] | None, preset: str = "kvm-modern"):
    """The preset with ``table`` as the model's operation costs (None: none priced)."""
    base = load_preset(preset)
    if table is None:
        return base.model_copy(update={"op_costs": None})
    costs = OpCosts(
        tag="E",
        source="test: whole nanoseconds",
        low_factor=0.5,
        high_factor=2.0,
        range_source="test",
        ns={model: table},
    )
    return base.model_copy(update={"op_costs": costs})


def _run(model, opts, workload, engine, preset):
    mdef = get_model(model)
    wl = generate(WorkloadSpec.model_validate(workload), 1)
    return run_model(model, mdef, mdef.options(**opts), wl, EngineSpec(**engine), preset)


def _op_counts(run) -> np.ndarray:
    c = counters(run)
    return np.array([c[f"ops_{op}"] for op in OPS], dtype=np.float64)


CASES = [
    ("virtio-split", {}, {"batch": 1}),
    ("virtio-packed", {}, {"batch": 1}),
    ("virtio-mq", {}, {"batch": 1}),
    ("vbus-ioq", {}, {"batch": 1}),
    ("vbus-prio", {}, {"batch": 1}),
    ("vbus-ioq", {"transport": "call"}, {"batch": 1}),
]


@pytest.mark.parametrize("model,opts,engine", CASES)
def test_one_in_flight_op_costs_add_exactly_their_counts_times_costs(model, opts, engine):
    """One request in flight: what each side does does not depend on how long it takes, so the
    priced run counts exactly what the free run counts, and its modelled time is the free
    run's plus the counted operations times their costs, to the nanosecond, all of it in the
    ``ops`` cause."""
    free = _run(model, opts, ONE_IN_FLIGHT, engine, _priced(model, None))
    priced = _run(model, opts, ONE_IN_FLIGHT, engine, _priced(model, WHOLE_NS))
    assert counters(priced) == counters(free)
    ops = _op_counts(priced)
    assert ops[OPS.index("add")] >= ONE_IN_FLIGHT["requests"]
    expected = float(ops @ np.array([WHOLE_NS[op] for op in OPS]))
    assert priced.causes[T_OPS] == expected
    assert free.causes[T_OPS] == 0.0
    others = [i for i in range(len(CAUSES)) if i != T_OPS]
    assert list(priced.causes[others]) == list(free.causes[others])
    assert priced.causes.sum() - free.causes.sum() == expected


@pytest.mark.parametrize("model", ["virtio-split", "vbus-ioq"])
def test_one_in_flight_latency_grows_by_the_operations_on_its_path(model):
    """Ping-pong, both sides sleeping, only ``pop`` priced: each request's path holds two pops,
    the one that takes it and the one that finds the ring empty after it, since both designs
    notify when the device runs dry at their defaults (vhost's used-ring batch is flushed then,
    ``vhost_net.c::handle_tx``; venet's ``txmitigation`` signals then, ``venetdev_rx``). So
    every latency, and the run's end, grows by exactly two pops per request."""
    free = _run(model, {}, ONE_IN_FLIGHT, {"batch": 1}, _priced(model, None))
    table = dict.fromkeys(OPS, 0.0) | {"pop": 8.0}
    priced = _run(model, {}, ONE_IN_FLIGHT, {"batch": 1}, _priced(model, table))
    n = ONE_IN_FLIGHT["requests"]
    assert priced.lat_max[0] == free.lat_max[0] + 16.0
    assert priced.state["last_done"][0] == free.state["last_done"][0] + n * 16.0
    assert counters(priced)["ops_pop"] == 2 * n


def test_zero_costs_change_nothing_bit_for_bit():
    """A table of zeros is the same run as no table: every counter, cause and the digest."""
    model = "virtio-split"
    free = _run(model, {}, BUSY, {"batch": 4}, _priced(model, None))
    zeros = _run(model, {}, BUSY, {"batch": 4}, _priced(model, dict.fromkeys(OPS, 0.0)))
    assert counters(zeros) == counters(free)
    assert list(zeros.causes) == list(free.causes)
    assert zeros.digest == free.digest


@pytest.mark.parametrize(
    "model,engine",
    [
        ("vbus-ioq", {"batch": 8}),
        ("virtio-split", {"batch": 8, "device": "poll", "driver": "poll"}),
    ],
)
def test_busy_run_charges_every_counted_operation(model, engine):
    """Under a bursty load, or polling (how many empty polls fit depends on how long each
    takes), timing feeds back into the counts; but whatever was counted is what was charged:
    the ``ops`` cause is the counts times the costs."""
    run = _run(model, {}, BUSY, engine, _priced(model, WHOLE_NS))
    expected = float(_op_counts(run) @ np.array([WHOLE_NS[op] for op in OPS]))
    assert run.causes[T_OPS] == expected > 0


@pytest.mark.parametrize("preset", ["kvm-modern", "kvm-2009"])
def test_shipped_presets_price_every_operation_of_every_model(preset):
    """Every registered model has its ten figures, each positive and finite, with provenance
    and a range around 1x; and the models do differ (the table is per model, not one row)."""
    p = load_preset(preset)
    assert p.op_costs is not None and p.op_costs.source.strip()
    assert p.op_costs.low_factor < 1.0 < p.op_costs.high_factor
    assert set(p.op_costs.ns) == set(registry())
    for model in registry():
        vector = p.op_vector(model)
        assert vector.shape == (len(OPS),)
        assert all(math.isfinite(v) and v > 0 for v in vector), model
    rows = {tuple(p.op_vector(m)) for m in registry()}
    assert len(rows) > 1


def test_a_table_without_the_model_is_a_one_line_error():
    preset = _priced("virtio-split", WHOLE_NS)
    with pytest.raises(ConfigError, match=r'add an \[op_costs\.ns\."vbus-ioq"\] table'):
        preset.op_vector("vbus-ioq")


def test_a_table_must_list_exactly_the_ten_operations():
    with pytest.raises(ValueError, match="missing or unknown"):
        OpCosts(
            tag="E",
            source="s",
            low_factor=0.5,
            high_factor=2.0,
            range_source="r",
            ns={"virtio-split": {"add": 1.0}},
        )


def test_the_factor_scales_the_whole_table():
    preset = _priced("virtio-split", WHOLE_NS)
    doubled = override(preset, OP_COSTS_FACTOR, 2.0)
    assert list(doubled.op_vector("virtio-split")) == [2 * WHOLE_NS[op] for op in OPS]
    with pytest.raises(ConfigError, match="prices no ring operations"):
        override(_priced("virtio-split", None), OP_COSTS_FACTOR, 2.0)


def test_native_harness_adds_the_measured_per_request_work():
    """``engine.native_harness``: the preset's harness figures join the guest's and the
    device's own per-request work; without them in the preset, a one-line error."""
    from vbench.costs import Figure

    wl = generate(WorkloadSpec.model_validate({"requests": 10}), 1)
    eng = EngineSpec(native_harness=True, driver_ns=10.0, service_ns=20.0)
    figure = {"tag": "M", "source": "test"}
    harness = {
        "driver_ns": Figure(value=3.0, **figure),
        "device_ns": Figure(value=5.0, **figure),
    }
    preset = load_preset("kvm-modern").model_copy(update={"harness": harness})
    params = engine_params(eng, wl, preset)
    assert params["driver_ns"][0] == 13.0 and params["service_ns"][0] == 25.0
    with pytest.raises(ConfigError, match="run vbench calibrate"):
        engine_params(eng, wl, load_preset("kvm-modern"))


def test_op_counters_follow_the_interface():
    """The counters' operation names are the interface's, in its order (one source)."""
    from vbench.models.interface import OPS as INTERFACE_OPS

    assert tuple(INTERFACE_OPS) == OPS
    assert [c for c in COUNTERS if c.startswith("ops_")] == [f"ops_{op}" for op in OPS]
