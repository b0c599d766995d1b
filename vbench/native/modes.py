"""The modes of a sample of durations: one figure per hump, each with its share of the samples.

Why: on a virtual machine the host moves the vCPUs, so a cache-line transfer between the two
CPUs of a pair takes about 30 ns on some runs and about 185 ns on others (depending on where
the host placed the two vCPUs), and native throughput moves 3-5x with it. The median of such a sample
is a figure no run ever saw, so ``vbench calibrate`` reports every mode and its share instead.

Method (pure numpy, deterministic): on log(samples) (durations spread multiplicatively, and a
mode 6x slower should weigh like one 6x faster), split in two by exact 1-D 2-means (Otsu's
threshold without a histogram: every cut of the sorted sample is scored through cumulative
sums, and only cuts leaving each side at least :data:`MIN_SHARE` are considered, so a few
preempted trips of microseconds cannot claim a cluster of their own). The split is accepted as
two modes only if all of these hold:

- each side holds at least :data:`MIN_SHARE` of the samples;
- the medians are :data:`MIN_RATIO` apart or more;
- Ashman's D (robust: the median and the scaled median absolute deviation of each side, so the
  preempted tail does not blur a mode) exceeds :data:`MIN_ASHMAN_D`;
- a valley: the smoothed density between the two sides' peaks falls below
  :data:`MAX_VALLEY` of the lower peak. This is the test that tells one hump from two: any
  unimodal sample cut in two already gives D of about 2.3 to 2.9 (each half is truncated, so
  its spread is small), but a unimodal density never dips between two of its points.

Otherwise the sample has one mode. Two modes are enough for the machines seen so far.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SHARE = 0.05  # a mode holds at least this fraction of the samples
MIN_RATIO = 1.5  # the two modes' values differ by this factor at least
MIN_ASHMAN_D = 2.0  # Ashman's D above which two components are separated
MAX_VALLEY = 0.5  # the density between the peaks, relative to the lower peak, must fall below
MIN_SAMPLES = 100  # fewer samples are one mode: with 50 a unimodal sample splits 1 time in 50
_BINS_PER_GAP = 20  # histogram resolution for the valley test: bins between the two medians
_MAD_TO_SIGMA = 1.4826  # scales a median absolute deviation to a normal's standard deviation


@dataclass(frozen=True)
class Mode:
    """One hump of a sample: its median (``value``), the fraction of all samples in it
    (``share``), its 5th and 95th percentiles (``low``, ``high``) and how many samples."""

    value: float
    share: float
    low: float
    high: float
    count: int


def find_modes(samples: np.ndarray) -> list[Mode]:
    """The modes of a 1-D sample of positive durations, sorted by value (empty: no valid
    sample). Non-positive and non-finite values are dropped (a duration is > 0)."""
    values = np.asarray(samples, dtype=np.float64).ravel()
    values = np.sort(values[np.isfinite(values) & (values > 0)])
    if values.size == 0:
        return []
    logs = np.log(values)
    cut = _best_cut(logs) if values.size >= MIN_SAMPLES else None
    if cut is None or not _separated(logs, cut):
        return [_mode(values, values.size)]
    return [_mode(values[:cut], values.size), _mode(values[cut:], values.size)]


def _best_cut(logs: np.ndarray) -> int | None:
    """The index splitting the sorted ``logs`` into the two clusters of least within-cluster
    variance (1-D 2-means, exact), among cuts leaving :data:`MIN_SHARE` on each side."""
    n = logs.size
    first = max(1, int(np.ceil(MIN_SHARE * n)))
    last = min(n - 1, int(np.floor((1.0 - MIN_SHARE) * n)))
    if first > last:
        return None
    sums = np.cumsum(logs - logs[0])  # shifted: the scores only need differences of means
    cuts = np.arange(first, last + 1)
    left_mean = sums[cuts - 1] / cuts
    right_mean = (sums[-1] - sums[cuts - 1]) / (n - cuts)
    # the between-cluster variance; maximising it minimises the within-cluster variance
    between = cuts * (n - cuts) * (left_mean - right_mean) ** 2
    return int(cuts[int(np.argmax(between))])


def _separated(logs: np.ndarray, cut: int) -> bool:
    """Whether the two sides of ``cut`` are two modes (the tests of the module docstring)."""
    left, right = logs[:cut], logs[cut:]
    shares_ok = min(left.size, right.size) >= MIN_SHARE * logs.size
    gap = float(np.median(right) - np.median(left))
    if not shares_ok or gap < np.log(MIN_RATIO):
        return False
    spread = np.hypot(_robust_sigma(left), _robust_sigma(right))
    if spread > 0 and np.sqrt(2.0) * gap / spread <= MIN_ASHMAN_D:
        return False
    return _valley_depth(logs, cut, gap) < MAX_VALLEY


def _robust_sigma(logs: np.ndarray) -> float:
    """A normal's sigma from the median absolute deviation: blind to a few far outliers."""
    return float(_MAD_TO_SIGMA * np.median(np.abs(logs - np.median(logs))))


def _valley_depth(logs: np.ndarray, cut: int, gap: float) -> float:
    """The lowest smoothed density between the two sides' peaks, over the lower peak (about 1
    for one hump cut in two, near 0 for two humps). The histogram spans the two sides' 5th to
    95th percentiles; its bins are a twentieth of the gap between the medians, or wider where
    the sample is small (the Freedman-Diaconis width of the wider side), so that counting
    noise in a sparse bin does not pass for a valley."""
    left, right = logs[:cut], logs[cut:]
    start = float(np.percentile(left, 5))
    stop = float(np.percentile(right, 95))
    iqr = max(float(np.subtract(*np.percentile(side, [75, 25]))) for side in (left, right))
    width = max(gap / _BINS_PER_GAP, 2.0 * iqr * logs.size ** (-1.0 / 3.0))
    bins = max(3, int(np.ceil((stop - start) / width)))
    counts, edges = np.histogram(logs, bins=bins, range=(start, stop))
    density = np.convolve(counts, [0.25, 0.5, 0.25], mode="same")  # damps one-bin noise
    split = int(np.clip(np.searchsorted(edges, logs[cut]) - 1, 1, bins - 1))
    left_peak = int(np.argmax(density[:split]))
    right_peak = split + int(np.argmax(density[split:]))
    lower_peak = min(density[left_peak], density[right_peak])
    if lower_peak <= 0:
        return 1.0
    return float(density[left_peak : right_peak + 1].min() / lower_peak)


def _mode(values: np.ndarray, total: int) -> Mode:
    """A mode from its (sorted) samples; ``total``: the whole sample's size, for the share."""
    low, value, high = np.percentile(values, [5, 50, 95])
    return Mode(float(value), values.size / total, float(low), float(high), int(values.size))


def describe(modes: list[Mode] | tuple[Mode, ...], unit: str = "ns") -> str:
    """The modes in words, e.g. ``30 ns (62 % of samples), 185 ns (38 %)``."""
    if not modes:
        return "no samples"
    parts = []
    for i, mode in enumerate(modes):
        of = " of samples" if i == 0 else ""
        parts.append(f"{_number(mode.value)} {unit} ({mode.share * 100:.0f} %{of})")
    return ", ".join(parts)


def _number(x: float) -> str:
    """A duration in as few digits as say it: 185, 30.4, 2.51."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"
