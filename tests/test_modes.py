"""Mode detection (vbench.native.modes) on synthetic samples whose modes are known.

Two humps must come out as two modes with their shares; one hump, however skewed or long-tailed,
must stay one; a minority under 5 % is not a mode; far outliers do not make or blur a mode.
"""

from __future__ import annotations

import numpy as np
import pytest

from vbench.native.modes import MIN_SAMPLES, Mode, describe, find_modes


def bimodal(rng: np.random.Generator, n: int = 100_000, share: float = 0.62) -> np.ndarray:
    """``share`` of the samples around 30 ns, the rest around 185 ns, both with noise."""
    fast = int(share * n)
    return np.concatenate([rng.normal(30.0, 3.0, fast), rng.normal(185.0, 15.0, n - fast)])


def test_two_humps_are_two_modes_with_their_shares() -> None:
    modes = find_modes(bimodal(np.random.default_rng(1)))
    assert len(modes) == 2
    fast, slow = modes
    assert fast.value == pytest.approx(30.0, rel=0.03)
    assert slow.value == pytest.approx(185.0, rel=0.03)
    assert fast.share == pytest.approx(0.62, abs=0.02)
    assert slow.share == pytest.approx(0.38, abs=0.02)
    assert fast.count + slow.count == 100_000
    # the percentiles bracket each mode's value and stay inside its own hump
    assert fast.low < fast.value < fast.high < 45.0
    assert 130.0 < slow.low < slow.value < slow.high


def test_order_of_samples_does_not_matter_and_modes_come_sorted() -> None:
    samples = bimodal(np.random.default_rng(2), share=0.3)
    shuffled = np.random.default_rng(3).permutation(samples)
    modes = find_modes(shuffled)
    assert modes == find_modes(samples)
    assert [m.value for m in modes] == sorted(m.value for m in modes)
    assert modes[0].share == pytest.approx(0.3, abs=0.02)


def test_small_bimodal_sample_is_still_found() -> None:
    modes = find_modes(bimodal(np.random.default_rng(4), n=1_000))
    assert len(modes) == 2
    assert modes[1].share == pytest.approx(0.38, abs=0.03)


@pytest.mark.parametrize(
    "draw",
    [
        pytest.param(lambda r: r.lognormal(4.0, 0.5, 100_000), id="lognormal"),
        pytest.param(lambda r: r.lognormal(4.0, 1.0, 100_000), id="wide-lognormal"),
        pytest.param(lambda r: np.abs(r.normal(100.0, 30.0, 100_000)) + 1.0, id="normal"),
        pytest.param(lambda r: r.gamma(2.0, 50.0, 100_000), id="gamma"),
        pytest.param(lambda r: 30.0 + r.exponential(20.0, 100_000), id="exponential-tail"),
        pytest.param(lambda r: 30.0 * (1.0 + r.pareto(1.5, 100_000)), id="pareto-tail"),
    ],
)
def test_one_hump_is_one_mode_however_skewed(draw) -> None:
    """Any unimodal sample cut in two looks separated by Ashman's D alone (about 2.3 to 2.9);
    these are the samples the valley test exists for."""
    samples = draw(np.random.default_rng(5))
    modes = find_modes(samples)
    assert len(modes) == 1
    (mode,) = modes
    assert mode.share == 1.0 and mode.count == samples.size
    assert mode.value == pytest.approx(float(np.median(samples)))
    assert mode.low == pytest.approx(float(np.percentile(samples, 5)))
    assert mode.high == pytest.approx(float(np.percentile(samples, 95)))


def test_unimodal_samples_of_a_few_hundred_are_not_split() -> None:
    for seed in range(20):
        rng = np.random.default_rng(seed)
        for samples in (rng.lognormal(4.0, 0.6, 300), 30.0 + rng.exponential(20.0, 300)):
            assert len(find_modes(samples)) == 1, seed


def test_a_minority_under_five_percent_is_not_a_mode() -> None:
    rng = np.random.default_rng(6)
    samples = np.concatenate([rng.normal(30.0, 3.0, 97_000), rng.normal(185.0, 15.0, 3_000)])
    modes = find_modes(samples)
    assert len(modes) == 1
    assert modes[0].value == pytest.approx(30.0, rel=0.05)


def test_close_humps_are_one_mode_separated_ones_two() -> None:
    rng = np.random.default_rng(7)
    close = np.concatenate([rng.normal(30.0, 3.0, 50_000), rng.normal(40.0, 3.0, 50_000)])
    assert len(find_modes(close)) == 1  # medians 1.33x apart: under the 1.5x a mode needs
    apart = np.concatenate([rng.normal(30.0, 3.0, 50_000), rng.normal(50.0, 3.0, 50_000)])
    assert [round(m.value) for m in find_modes(apart)] == [30, 50]


def test_preempted_outliers_neither_make_nor_blur_a_mode() -> None:
    rng = np.random.default_rng(8)
    outliers = rng.uniform(2_000.0, 100_000.0, 3_000)  # trips the OS preempted: microseconds
    modes = find_modes(np.concatenate([bimodal(rng, n=97_000), outliers]))
    assert [round(m.value, -1) for m in modes] == [30.0, 190.0]
    one = find_modes(np.concatenate([rng.normal(30.0, 3.0, 97_000), outliers]))
    assert len(one) == 1


def test_invalid_and_tiny_samples() -> None:
    assert find_modes(np.array([])) == []
    assert find_modes(np.array([0.0, -1.0, np.nan, np.inf])) == []
    # the invalid values are dropped, the rest counted
    (mode,) = find_modes(np.array([10.0, np.nan, 20.0, 0.0, 30.0]))
    assert mode.value == 20.0 and mode.count == 3 and mode.share == 1.0
    # below MIN_SAMPLES no split is credible, however far apart the values
    few = np.array([30.0] * (MIN_SAMPLES // 2 - 1) + [185.0] * (MIN_SAMPLES // 2 - 1))
    assert len(find_modes(few)) == 1


def test_describe_names_every_mode_and_its_share() -> None:
    modes = [Mode(30.2, 0.62, 28.0, 33.0, 620), Mode(185.4, 0.38, 160.0, 210.0, 380)]
    assert describe(modes) == "30.2 ns (62 % of samples), 185 ns (38 %)"
    assert describe(modes[:1], unit="cycles") == "30.2 cycles (62 % of samples)"
    assert describe([]) == "no samples"
