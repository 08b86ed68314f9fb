"""The spike rule: far above the baseline by ratio, by a floor, and beyond Poisson noise."""

from __future__ import annotations

import math

import pytest

from dozor.streams.figures import is_spike, poisson_sf


def _sf_by_sum(k: int, lam: float) -> float:
    """P(X ≥ k) as 1 − P(X < k), summed directly: the textbook definition, for small k."""
    return 1 - sum(math.exp(-lam) * lam**i / math.factorial(i) for i in range(k))


@pytest.mark.parametrize(("k", "lam"), [(3, 1.0), (8, 2.5), (20, 10.0), (40, 30.0)])
def test_poisson_tail_matches_its_definition(k: int, lam: float) -> None:
    assert poisson_sf(k, lam) == pytest.approx(_sf_by_sum(k, lam), rel=1e-9)


def test_poisson_tail_is_tiny_far_out_and_whole_at_zero() -> None:
    assert poisson_sf(0, 3.0) == 1.0
    assert 0 < poisson_sf(200, 20.0) < 1e-60


def test_a_busy_citys_ordinary_swing_is_not_a_spike() -> None:
    # 130 against 100 a minute: 30 % up, past any fixed floor, but well within what a day varies.
    assert not is_spike(130, 100.0, minimum=30, ratio=3.0, p_value=1e-6)


def test_a_small_citys_noise_is_not_a_spike() -> None:
    # Three times a baseline of 1.5 is 4.5, yet 5 in a minute happens by chance about once a day.
    assert not is_spike(5, 1.5, minimum=5, ratio=3.0, p_value=1e-6)


def test_a_real_jump_is_a_spike() -> None:
    assert is_spike(120, 4.0, minimum=30, ratio=3.0, p_value=1e-6)
    assert not is_spike(120, 4.0, minimum=150, ratio=3.0, p_value=1e-6)  # the floor still applies


def test_a_silent_city_is_judged_against_one_a_minute() -> None:
    # With no history of events, a baseline of 0 would make any count infinitely surprising.
    assert not is_spike(6, 0.0, minimum=5, ratio=3.0, p_value=1e-6)
    assert is_spike(15, 0.0, minimum=5, ratio=3.0, p_value=1e-6)
