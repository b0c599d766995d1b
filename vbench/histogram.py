"""Streaming latency histogram (log-linear, HDR style) that the jitted engine fills per request.

A run may complete hundreds of millions of requests; keeping every latency would make memory
grow with run length. Instead each latency lands in one of a fixed number of buckets whose width
grows with the value, so the relative error of any reported percentile stays below
``2**-SUB_BITS`` (1/64) whatever the sample count.

Bucket layout (values in ns, float64, >= 0). A value ``v`` is first rounded *up* to the integer
``n = ceil(v)``, so that every bucket's upper bound is an exact integer and a sample never lies
above the bound reported for it:

* ``n < 2**SUB_BITS``: bucket ``n`` (exact integer buckets; bucket ``b`` holds ``(b-1, b]``).
* otherwise, with ``e = floor(log2(n))`` and ``s = e - SUB_BITS``, the octave ``[2**e, 2**(e+1))``
  is split into ``2**SUB_BITS`` sub-buckets of width ``2**s``:
  bucket ``(s << SUB_BITS) + (n >> s)``. The first octave above the exact range has width 1, so
  the mapping is continuous and monotone.

Values above ``2**MAX_EXP - 1`` ns (about 4.9 hours) are clamped into the top bucket; the caller
keeps the exact maximum separately and may pass it to :func:`percentiles`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

#: Sub-buckets per power-of-two octave, as a power of two: relative error <= 2**-SUB_BITS.
SUB_BITS: int = 6
#: Values up to 2**MAX_EXP - 1 ns get their own bucket; larger ones are clamped into the top one.
MAX_EXP: int = 44
#: Number of buckets: one exact range of 2**SUB_BITS, then one block per octave up to MAX_EXP.
N_BUCKETS: int = (MAX_EXP - SUB_BITS + 1) << SUB_BITS

_SUB_COUNT = 1 << SUB_BITS
_TOP_VALUE = float((1 << MAX_EXP) - 1)  # the highest value with a bucket of its own


def new_hist(classes: int) -> np.ndarray:
    """An empty histogram: one row of int64 counts per request class, fixed size."""
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    return np.zeros((classes, N_BUCKETS), dtype=np.int64)


@njit  # not cached on its own: inlined into the cached engine (see vbench/jit.py)
def bucket_of(value_ns: float) -> int:
    """Bucket index of a latency in ns; values above the covered range go to the top bucket."""
    if not value_ns >= 0.0:  # also catches NaN, which would otherwise index at random
        raise ValueError("histogram value must be a number >= 0")
    if value_ns > _TOP_VALUE:
        return N_BUCKETS - 1
    n = np.int64(math.ceil(value_ns))
    if n < _SUB_COUNT:
        return n
    # floor(log2(n)) is 63 less n's leading zeros: one instruction (lzcnt), where math.frexp
    # was a call into the C library on both engines' per-completion path
    s = np.int64(63) - np.int64(leading_zeros(np.uint64(n))) - SUB_BITS
    return (s << SUB_BITS) + (n >> s)


@njit(cache=True)
def bucket_upper(b: int) -> float:
    """Highest value that maps to bucket ``b`` (HDR's "highest equivalent value")."""
    if b < _SUB_COUNT:
        return float(b)
    s = (np.int64(b) >> SUB_BITS) - 1
    m = np.int64(b) - (s << SUB_BITS)  # mantissa in [2**SUB_BITS, 2**(SUB_BITS+1))
    return float(((m + 1) << s) - 1)


@njit  # not cached on its own: inlined into the cached engine (see vbench/jit.py)
def record(hist: np.ndarray, cls: int, value_ns: float) -> None:
    """Count one latency for request class ``cls``; O(1), no allocation, for the hot loop."""
    hist[cls, bucket_of(value_ns)] += 1


def _uppers() -> np.ndarray:
    """Upper bound of every bucket, computed once so percentile queries stay vectorised."""
    return np.array([bucket_upper(b) for b in range(N_BUCKETS)], dtype=np.float64)


_UPPERS: np.ndarray | None = None


def upper_bounds() -> np.ndarray:
    """Every bucket's upper bound in ns (computed once, then shared; do not modify)."""
    global _UPPERS
    if _UPPERS is None:
        _UPPERS = _uppers()
    return _UPPERS


def percentiles(
    counts_1d: np.ndarray, qs: Sequence[float], max_ns: float | None = None
) -> list[float]:
    """Nearest-rank percentiles (q in [0, 100]) of one histogram row.

    Each answer is the upper bound of the bucket holding the q-th sample, i.e. the same sample
    ``numpy.percentile(..., method="inverted_cdf")`` picks, rounded up by at most 1/64 (+1 ns).
    ``max_ns``, the exact maximum if the caller tracked it, caps the answers (so q=100 is exact)
    and stands in for the bound of the top bucket, which also holds the values clamped into it.
    An empty histogram gives NaN.
    """
    counts = np.asarray(counts_1d)
    if counts.shape != (N_BUCKETS,):
        raise ValueError(f"expected one histogram row of {N_BUCKETS} counts, got {counts.shape}")
    total = int(counts.sum())
    if total == 0:
        return [math.nan for _ in qs]
    uppers = upper_bounds()
    cum = np.cumsum(counts)
    out: list[float] = []
    for q in qs:
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {q}")
        # Same arithmetic as numpy's inverted_cdf (quantile first, then times n) so the rank
        # agrees with it even where q/100*n is not exact in floating point.
        rank = min(max(math.ceil(total * (q / 100.0)), 1), total)
        b = int(np.searchsorted(cum, rank, side="left"))
        v = float(uppers[b])
        if max_ns is not None:
            # The top bucket also holds clamped values above its bound: only the max bounds them.
            v = float(max_ns) if b == N_BUCKETS - 1 else min(v, float(max_ns))
        out.append(v)
    return out


def merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise sum of two histograms of the same shape (e.g. from parallel runs)."""
    if a.shape != b.shape:
        raise ValueError(f"cannot merge histograms of shapes {a.shape} and {b.shape}")
    return a + b
