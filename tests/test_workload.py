"""Tests for the shared workload: deterministic, independent streams, right distributions."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbench.errors import ConfigError
from vbench.workload import (
    DEVICE_READS,
    DEVICE_WRITES,
    ArrivalSpec,
    PrioritySpec,
    SegmentsSpec,
    SizeSpec,
    Workload,
    WorkloadSpec,
    generate,
)

FIELDS = ("arrival_ns", "size", "segments", "prio", "direction")


def _spec(**kw: Any) -> WorkloadSpec:
    return WorkloadSpec.model_validate(kw)


RICH = _spec(
    requests=5000,
    arrival={"kind": "poisson", "rate": 2e5},
    size={"kind": "uniform", "low": 10, "high": 9000},
    segments={"kind": "range", "low": 1, "high": 8},
    priority={"classes": 3, "shares": [0.2, 0.3, 0.5]},
    write_share=0.3,
)


def _same(a: Workload, b: Workload, fields: tuple[str, ...] = FIELDS) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in fields)


# --- determinism and stream independence -------------------------------------------------------


def test_same_seed_gives_identical_arrays() -> None:
    a, b = generate(RICH, 7), generate(RICH, 7)
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype
        assert x.tobytes() == y.tobytes(), f
    assert a.fingerprint() == b.fingerprint()


def test_different_seed_differs_in_every_random_field() -> None:
    a, b = generate(RICH, 7), generate(RICH, 8)
    for f in FIELDS:
        assert not np.array_equal(getattr(a, f), getattr(b, f)), f
    assert a.fingerprint() != b.fingerprint()


def test_all_fixed_closed_spec_does_not_depend_on_seed() -> None:
    spec = _spec(requests=100)
    assert generate(spec, 1).fingerprint() == generate(spec, 2).fingerprint()


def test_changing_size_spec_leaves_other_fields_identical() -> None:
    other = RICH.model_copy(
        update={"size": SizeSpec(kind="mix", values=[64, 4096], weights=[1, 1])}
    )
    a, b = generate(RICH, 3), generate(other, 3)
    assert not np.array_equal(a.size, b.size)
    # segments are clamped to the size, so compare where both sizes allow the full range
    assert _same(a, b, ("arrival_ns", "prio", "direction"))
    room = (a.size >= 8) & (b.size >= 8)
    assert np.array_equal(a.segments[room], b.segments[room])


def test_changing_arrival_and_priority_leaves_sizes_identical() -> None:
    other = RICH.model_copy(
        update={
            "arrival": ArrivalSpec(kind="onoff", rate=1e6),
            "priority": PrioritySpec(classes=2, shares=[1, 1]),
        }
    )
    a, b = generate(RICH, 3), generate(other, 3)
    assert not np.array_equal(a.arrival_ns, b.arrival_ns)
    assert _same(a, b, ("size", "segments", "direction"))


def test_fingerprint_covers_cap_and_classes() -> None:
    a = generate(_spec(requests=10, arrival={"in_flight": 4}), 0)
    b = generate(_spec(requests=10, arrival={"in_flight": 5}), 0)
    assert _same(a, b)
    assert a.fingerprint() != b.fingerprint()


def test_arrays_are_read_only() -> None:
    wl = generate(RICH, 0)
    for f in FIELDS:
        with pytest.raises(ValueError):
            getattr(wl, f)[0] = 1


def test_negative_seed_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        generate(RICH, -1)


# --- arrivals -----------------------------------------------------------------------------------


def test_closed_loop_is_all_zero_with_cap() -> None:
    wl = generate(_spec(requests=1000, arrival={"kind": "closed", "in_flight": 17}), 5)
    assert wl.arrival_ns.dtype == np.float64
    assert np.all(wl.arrival_ns == 0.0)
    assert wl.in_flight_cap == 17


def test_open_loops_have_no_cap() -> None:
    for kind in ("poisson", "onoff"):
        wl = generate(_spec(requests=10, arrival={"kind": kind, "in_flight": 3}), 0)
        assert wl.in_flight_cap == 0


def test_poisson_mean_rate_and_exponential_gaps() -> None:
    rate = 2e6
    n = 200_000
    wl = generate(_spec(requests=n, arrival={"kind": "poisson", "rate": rate}), 11)
    t = wl.arrival_ns
    assert t[0] > 0.0
    assert np.all(np.diff(t) >= 0)
    measured = n / (t[-1] * 1e-9)
    assert measured == pytest.approx(rate, rel=0.02)
    gaps = np.diff(t)
    # exponential: coefficient of variation 1
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.02)


def test_onoff_rate_is_duty_cycle_scaled_and_gaps_heavy_tailed() -> None:
    rate, on_us, off_us = 1e6, 50.0, 200.0
    n = 200_000
    spec = _spec(
        requests=n, arrival={"kind": "onoff", "rate": rate, "on_us": on_us, "off_us": off_us}
    )
    t = generate(spec, 21).arrival_ns
    assert np.all(np.diff(t) >= 0)
    expected = rate * on_us / (on_us + off_us)
    measured = n / (t[-1] * 1e-9)
    assert measured == pytest.approx(expected, rel=0.05)
    gaps = np.diff(t)
    mean_on_gap = 1e9 / rate
    # OFF periods (mean 200 us) show up as gaps hundreds of times the ON-period gap (1 us);
    # a plain Poisson source at the same rate would essentially never produce one.
    assert gaps.max() > 100 * mean_on_gap
    # about one OFF period per ON period, i.e. n / (rate * on) long gaps
    n_periods = n / (rate * on_us * 1e-6)
    long_gaps = int((gaps > 20 * mean_on_gap).sum())
    assert 0.8 * n_periods < long_gaps < 1.1 * n_periods
    # most gaps stay within a burst
    assert np.median(gaps) < 2 * mean_on_gap


def test_onoff_with_zero_off_is_poisson_rate() -> None:
    n = 100_000
    spec = _spec(requests=n, arrival={"kind": "onoff", "rate": 1e6, "off_us": 0.0})
    t = generate(spec, 2).arrival_ns
    assert n / (t[-1] * 1e-9) == pytest.approx(1e6, rel=0.03)


def test_onoff_pathological_periods_stay_fast() -> None:
    # ~1e9 ON periods in total: must not materialise them
    spec = _spec(
        requests=100_000, arrival={"kind": "onoff", "rate": 1e3, "on_us": 0.1, "off_us": 0.1}
    )
    start = time.perf_counter()
    t = generate(spec, 0).arrival_ns
    assert time.perf_counter() - start < 2.0
    assert len(t) / (t[-1] * 1e-9) == pytest.approx(500.0, rel=0.03)


# --- sizes, segments, priorities, direction -----------------------------------------------------


def test_mix_frequencies_match_weights() -> None:
    values, weights = [64, 576, 1500, 9000], [5.0, 1.0, 4.0, 0.0]
    wl = generate(
        _spec(requests=100_000, size={"kind": "mix", "values": values, "weights": weights}), 4
    )
    assert wl.size.dtype == np.int64
    p = np.asarray(weights) / sum(weights)
    for v, share in zip(values, p, strict=True):
        assert np.mean(wl.size == v) == pytest.approx(share, abs=0.01)
    assert not np.any(wl.size == 9000)


def test_uniform_sizes_cover_inclusive_range() -> None:
    wl = generate(_spec(requests=50_000, size={"kind": "uniform", "low": 100, "high": 110}), 4)
    assert wl.size.min() == 100
    assert wl.size.max() == 110
    counts = np.bincount(wl.size - 100)
    assert counts.min() > 0.8 * 50_000 / 11
    assert wl.max_size == 110
    assert wl.total_bytes == int(wl.size.sum())


def test_fixed_size() -> None:
    wl = generate(_spec(requests=10, size={"kind": "fixed", "bytes": 4096}), 0)
    assert np.all(wl.size == 4096)
    assert wl.total_bytes == 40960


def test_segments_range_and_clamp_to_size() -> None:
    spec = _spec(
        requests=50_000,
        size={"kind": "uniform", "low": 1, "high": 6},
        segments={"kind": "range", "low": 2, "high": 5},
    )
    wl = generate(spec, 9)
    assert wl.segments.dtype == np.int64
    assert np.all(wl.segments >= 1)
    assert np.all(wl.segments <= wl.size)
    big = wl.size >= 5
    assert wl.segments[big].min() == 2
    assert wl.segments[big].max() == 5
    assert np.all(wl.segments[wl.size == 1] == 1)
    assert wl.max_segments == 5


def test_fixed_segments_clamped() -> None:
    spec = _spec(
        requests=100,
        size={"kind": "mix", "values": [2, 100], "weights": [1, 1]},
        segments={"kind": "fixed", "count": 3},
    )
    wl = generate(spec, 1)
    assert np.array_equal(wl.segments, np.minimum(3, wl.size))
    assert set(np.unique(wl.segments)) == {2, 3}


def test_priority_shares() -> None:
    shares = [0.1, 0.0, 0.6, 0.3]
    wl = generate(_spec(requests=100_000, priority={"classes": 4, "shares": shares}), 6)
    assert wl.prio.dtype == np.int64
    assert wl.classes == 4
    freq = np.bincount(wl.prio, minlength=4) / len(wl)
    assert freq == pytest.approx(shares, abs=0.01)
    assert freq[1] == 0.0


def test_single_class_is_all_zero() -> None:
    wl = generate(RICH.model_copy(update={"priority": PrioritySpec()}), 0)
    assert wl.classes == 1
    assert np.all(wl.prio == 0)


def test_direction_constant_and_write_share() -> None:
    reads = generate(_spec(requests=100), 0)
    assert reads.direction.dtype == np.int8
    assert np.all(reads.direction == DEVICE_READS)
    writes = generate(_spec(requests=100, direction="device-writes"), 0)
    assert np.all(writes.direction == DEVICE_WRITES)
    mixed = generate(_spec(requests=100_000, direction="device-writes", write_share=0.25), 0)
    assert np.mean(mixed.direction == DEVICE_WRITES) == pytest.approx(0.25, abs=0.01)
    assert set(np.unique(mixed.direction)) == {DEVICE_READS, DEVICE_WRITES}


def test_million_requests_generate_fast() -> None:
    spec = RICH.model_copy(update={"requests": 1_000_000, "arrival": ArrivalSpec(kind="onoff")})
    start = time.perf_counter()
    wl = generate(spec, 0)
    assert time.perf_counter() - start < 1.0
    assert len(wl) == 1_000_000


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"requets": 10},  # typo: extra key
        {"arrival": {"kind": "poisson", "rat": 1.0}},
        {"size": {"kind": "fixed", "byte": 10}},
        {"priority": {"classes": 2, "shares": [1.0]}},  # shares length != classes
        {"priority": {"classes": 9, "shares": [1.0] * 9}},
        {"priority": {"classes": 0, "shares": []}},
        {"priority": {"classes": 2, "shares": [0.0, 0.0]}},
        {"priority": {"classes": 2, "shares": [1.0, -0.5]}},
        {"size": {"kind": "mix", "values": [64, 128], "weights": [1.0]}},
        {"size": {"kind": "mix", "values": [0, 128], "weights": [1.0, 1.0]}},
        {"size": {"kind": "uniform", "low": 200, "high": 100}},
        {"size": {"kind": "fixed", "bytes": 0}},
        {"segments": {"kind": "range", "low": 5, "high": 2}},
        {"segments": {"kind": "fixed", "count": 0}},
        {"arrival": {"kind": "poisson", "rate": 0.0}},
        {"arrival": {"kind": "onoff", "on_us": 0.0}},
        {"arrival": {"kind": "onoff", "off_us": -1.0}},
        {"arrival": {"kind": "closed", "in_flight": 0}},
        {"arrival": {"kind": "burst"}},
        {"requests": 0},
        {"write_share": 1.5},
        {"direction": "both"},
    ],
)
def test_invalid_specs_rejected(raw: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        WorkloadSpec.model_validate(raw)


def test_validation_messages_name_the_problem() -> None:
    with pytest.raises(pydantic.ValidationError, match="one share per class"):
        PrioritySpec(classes=3, shares=[1, 1])
    with pytest.raises(pydantic.ValidationError, match="one weight per value"):
        SizeSpec(kind="mix", values=[1, 2, 3], weights=[1, 1])
    with pytest.raises(pydantic.ValidationError, match="must not exceed"):
        SegmentsSpec(kind="range", low=3, high=1)


# --- property test ------------------------------------------------------------------------------

_sizes = st.one_of(
    st.builds(lambda b: {"kind": "fixed", "bytes": b}, st.integers(1, 70_000)),
    st.tuples(st.integers(1, 70_000), st.integers(0, 5000)).map(
        lambda t: {"kind": "uniform", "low": t[0], "high": t[0] + t[1]}
    ),
    st.lists(st.tuples(st.integers(1, 70_000), st.floats(0.0, 10.0)), min_size=1, max_size=6)
    .filter(lambda vw: sum(w for _, w in vw) > 0)
    .map(lambda vw: {"kind": "mix", "values": [v for v, _ in vw], "weights": [w for _, w in vw]}),
)
_segments = st.one_of(
    st.builds(lambda c: {"kind": "fixed", "count": c}, st.integers(1, 64)),
    st.tuples(st.integers(1, 64), st.integers(0, 64)).map(
        lambda t: {"kind": "range", "low": t[0], "high": t[0] + t[1]}
    ),
)
_arrivals = st.one_of(
    st.builds(lambda k: {"kind": "closed", "in_flight": k}, st.integers(1, 1024)),
    st.builds(lambda r: {"kind": "poisson", "rate": r}, st.floats(1.0, 1e9)),
    st.builds(
        lambda r, on, off: {"kind": "onoff", "rate": r, "on_us": on, "off_us": off},
        st.floats(1.0, 1e9),
        st.floats(0.01, 1e4),
        st.floats(0.0, 1e4),
    ),
)
_priorities = (
    st.integers(1, 8)
    .flatmap(lambda k: st.lists(st.floats(0.0, 5.0), min_size=k, max_size=k))
    .filter(lambda s: sum(s) > 0)
    .map(lambda s: {"classes": len(s), "shares": s})
)


@settings(max_examples=150, deadline=None)
@given(
    requests=st.integers(1, 3000),
    arrival=_arrivals,
    size=_sizes,
    segments=_segments,
    priority=_priorities,
    direction=st.sampled_from(["device-reads", "device-writes"]),
    write_share=st.one_of(st.none(), st.floats(0.0, 1.0)),
    seed=st.integers(0, 2**63),
)
def test_generated_arrays_are_well_formed(
    requests: int,
    arrival: dict[str, Any],
    size: dict[str, Any],
    segments: dict[str, Any],
    priority: dict[str, Any],
    direction: str,
    write_share: float | None,
    seed: int,
) -> None:
    spec = _spec(
        requests=requests,
        arrival=arrival,
        size=size,
        segments=segments,
        priority=priority,
        direction=direction,
        write_share=write_share,
    )
    wl = generate(spec, seed)
    assert len(wl) == requests
    expected = {
        "arrival_ns": np.float64,
        "size": np.int64,
        "segments": np.int64,
        "prio": np.int64,
        "direction": np.int8,
    }
    for f, dt in expected.items():
        a = getattr(wl, f)
        assert a.dtype == dt, f
        assert a.shape == (requests,), f
    assert np.all(np.isfinite(wl.arrival_ns))
    assert np.all(wl.arrival_ns >= 0)
    assert np.all(np.diff(wl.arrival_ns) >= 0)
    assert np.all(wl.size >= 1)
    assert np.all(wl.segments >= 1)
    assert np.all(wl.segments <= wl.size)
    assert np.all((wl.prio >= 0) & (wl.prio < wl.classes))
    assert np.all(np.asarray(priority["shares"])[wl.prio] > 0)  # zero-share classes never drawn
    assert np.all((wl.direction == DEVICE_READS) | (wl.direction == DEVICE_WRITES))
    assert wl.classes == priority["classes"]
    assert wl.in_flight_cap == (arrival["in_flight"] if arrival["kind"] == "closed" else 0)
    if arrival["kind"] == "closed":
        assert np.all(wl.arrival_ns == 0.0)
    assert wl.max_size == int(wl.size.max())
    assert wl.max_segments == int(wl.segments.max())
