"""Tests for the streaming latency histogram: bucket bounds, accuracy and fixed memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbench.histogram import (
    N_BUCKETS,
    SUB_BITS,
    bucket_of,
    bucket_upper,
    merge,
    new_hist,
    percentiles,
    record,
)

TOP = float(2**44 - 1)  # highest value with its own bucket
REL = 1 / 64  # the promised resolution: 2**-6, independent of how the module spells it


def _lower_bound(b: int) -> float:
    """Values in bucket b are strictly above this (the edge: bucket 0 holds exactly 0)."""
    return -math.inf if b == 0 else bucket_upper(b - 1)


def _fill(samples: np.ndarray, classes: int = 1, cls: int = 0) -> np.ndarray:
    hist = new_hist(classes)
    for v in samples:
        record(hist, cls, float(v))
    return hist


def test_bucket_of_is_monotone_over_sorted_sample() -> None:
    rng = np.random.default_rng(1)
    # log-uniform over the whole covered range plus dense small values and exact powers of two
    sample = np.concatenate(
        [
            np.exp(rng.uniform(0.0, math.log(TOP), 200_000)),
            rng.uniform(0.0, 300.0, 20_000),
            2.0 ** np.arange(45),
            2.0 ** np.arange(45) - 1.0,
        ]
    )
    sample.sort()
    buckets = np.array([bucket_of(float(v)) for v in sample])
    assert np.all(np.diff(buckets) >= 0)
    assert buckets.min() >= 0 and buckets.max() <= N_BUCKETS - 1


def test_bucket_of_follows_the_documented_formula() -> None:
    """The module docstring's mapping, computed with Python's exact integers (bit_length is
    floor(log2) + 1), at every power of two of the range and its neighbours, and at random."""
    rng = np.random.default_rng(3)
    ints = [2**e + d for e in range(45) for d in (-1, 0, 1)]
    ints += [int(v) for v in rng.integers(1, 2**44, 20_000)]
    for n in ints:
        if n < 1 or n > 2**44 - 1:
            continue
        if n < 2**SUB_BITS:
            expected = n
        else:
            shift = n.bit_length() - 1 - SUB_BITS
            expected = (shift << SUB_BITS) + (n >> shift)
        assert bucket_of(float(n)) == expected, n
        assert bucket_of(n - 0.5) == expected, n  # rounded up to n first


def test_every_value_lies_within_its_bucket_bounds() -> None:
    rng = np.random.default_rng(2)
    sample = np.concatenate(
        [np.exp(rng.uniform(-3.0, math.log(TOP), 100_000)), [0.0, 0.5, 1.0, 63.5, 64.0, TOP]]
    )
    for v in sample:
        b = bucket_of(float(v))
        assert _lower_bound(b) < v <= bucket_upper(b), (v, b)


def test_bucket_upper_is_strictly_increasing_and_maps_back() -> None:
    uppers = np.array([bucket_upper(b) for b in range(N_BUCKETS)])
    assert np.all(np.diff(uppers) > 0)
    assert uppers[-1] == TOP
    for b in range(N_BUCKETS):
        assert bucket_of(uppers[b]) == b


def test_small_values_get_exact_integer_buckets() -> None:
    for n in range(2**SUB_BITS):
        assert bucket_upper(bucket_of(float(n))) == float(n)


def test_bucket_width_keeps_relative_error_below_one_sub_bucket() -> None:
    for b in range(1, N_BUCKETS):
        lo, hi = bucket_upper(b - 1), bucket_upper(b)
        assert hi - lo <= max(1.0, hi * REL)


def test_values_above_range_are_clamped_into_top_bucket() -> None:
    for v in (TOP + 0.5, 2.0**44, 1e30, math.inf):
        assert bucket_of(v) == N_BUCKETS - 1


def test_negative_and_nan_values_are_rejected() -> None:
    with pytest.raises(ValueError):
        bucket_of(-1.0)
    with pytest.raises(ValueError):
        bucket_of(math.nan)


@settings(max_examples=500, deadline=None)
@given(st.floats(min_value=0.0, max_value=TOP, allow_nan=False, allow_infinity=False))
def test_bucket_bounds_property(v: float) -> None:
    b = bucket_of(v)
    assert 0 <= b < N_BUCKETS
    assert _lower_bound(b) < v <= bucket_upper(b)
    # the reported bound overshoots by at most one sub-bucket (or 1 ns in the exact range)
    assert bucket_upper(b) - v <= v * REL + 1.0


def test_percentiles_match_numpy_within_resolution() -> None:
    rng = np.random.default_rng(3)
    samples = rng.lognormal(mean=math.log(5_000.0), sigma=1.5, size=100_000)
    hist = _fill(samples)
    qs = [0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0]
    got = percentiles(hist[0], qs)
    want = np.percentile(samples, qs, method="inverted_cdf")
    for q, g, w in zip(qs, got, want, strict=True):
        assert abs(g - w) <= w * REL + 1.0, (q, g, w)


def test_percentiles_pick_the_nearest_rank_sample_exactly_for_integers() -> None:
    # distinct integers below 2**SUB_BITS have exact buckets, so answers must equal numpy's
    # exactly; 64 samples make most ranks q/100*64 fractional, which exposes rounding mistakes
    rng = np.random.default_rng(4)
    samples = rng.permutation(np.arange(2**SUB_BITS)).astype(np.float64)
    hist = _fill(samples)
    qs = list(np.linspace(0.0, 100.0, 401)) + [7.0, 33.3, 57.0, 99.9]
    got = percentiles(hist[0], qs)
    want = np.percentile(samples, qs, method="inverted_cdf")
    assert got == list(want)


def test_percentiles_of_empty_histogram_are_nan() -> None:
    got = percentiles(new_hist(1)[0], [50.0, 99.0])
    assert len(got) == 2 and all(math.isnan(g) for g in got)


def test_percentiles_cap_at_exact_max() -> None:
    hist = _fill(np.array([1e20, 5.0]))
    assert percentiles(hist[0], [100.0]) == [TOP]
    assert percentiles(hist[0], [100.0], max_ns=1e20) == [1e20]
    assert percentiles(hist[0], [0.0], max_ns=1e20) == [5.0]


def test_percentiles_reject_out_of_range_q() -> None:
    hist = _fill(np.array([1.0]))
    with pytest.raises(ValueError):
        percentiles(hist[0], [101.0])


def test_memory_does_not_grow_with_sample_count() -> None:
    rng = np.random.default_rng(5)
    small = _fill(rng.lognormal(8.0, 2.0, 10), classes=2)
    large = _fill(rng.lognormal(8.0, 2.0, 200_000), classes=2)
    assert small.shape == large.shape == (2, N_BUCKETS)
    assert small.nbytes == large.nbytes
    assert large[0].sum() == 200_000 and large[1].sum() == 0


def test_record_counts_into_the_right_class() -> None:
    hist = new_hist(3)
    record(hist, 2, 100.0)
    record(hist, 2, 100.0)
    record(hist, 0, 7.0)
    assert hist[2, bucket_of(100.0)] == 2
    assert hist[0, 7] == 1
    assert hist.sum() == 3


def test_merge_is_elementwise_sum() -> None:
    rng = np.random.default_rng(6)
    a_s, b_s = rng.lognormal(7.0, 1.0, 1_000), rng.lognormal(9.0, 1.0, 1_000)
    merged = merge(_fill(a_s), _fill(b_s))
    np.testing.assert_array_equal(merged, _fill(np.concatenate([a_s, b_s])))
    with pytest.raises(ValueError):
        merge(new_hist(1), new_hist(2))
