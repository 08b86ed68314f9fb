"""The spike rule: far above the baseline by ratio, by a floor, and beyond Poisson noise."""

from __future__ import annotations

import math

import pytest

from dozor.streams.spikes import baseline_for, is_spike, poisson_sf


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


# Almaty's violations in the hour before 07:23 local time on a simulated day, newest first: the
# morning rush began at 07:00 and doubled the rate of the hour before.
_RAMP = [6, 6, 2, 6, 3, 6, 4, 6, 1, 4, 7, 4, 4, 8, 6, 6, 4, 10, 7, 11, 10, 5, 3, 4, 2, 1, 2, 2, 3, 2,
         5, 1, 1, 3, 3, 1, 1, 3, 8, 3, 3, 3, 3, 10, 1, 2, 3, 2, 4, 2, 2, 4, 4, 4, 2, 3, 0, 3, 1,
         3]  # fmt: skip


def test_ordinary_noise_on_a_ramp_is_not_a_spike() -> None:
    # 17 in the minute at 07:23 raised a false alert in CI when judged against the hour before
    # (3.9 a minute); the last 15 minutes (5.1 a minute) say it is the rush hour's noise.
    assert is_spike(17, sum(_RAMP) / 60, minimum=5, ratio=3.0, p_value=1e-6)
    baseline, basis = baseline_for(_RAMP, None, has_trailing_hour=True) or (0.0, "")
    assert basis == "the last 15 minutes" and baseline == pytest.approx(sum(_RAMP[:15]) / 15)
    assert not is_spike(17, baseline, minimum=5, ratio=3.0, p_value=1e-6)


def test_a_real_jump_on_a_ramp_still_is_a_spike() -> None:
    baseline, _ = baseline_for(_RAMP, None, has_trailing_hour=True) or (0.0, "")
    assert is_spike(60, baseline, minimum=5, ratio=3.0, p_value=1e-6)


def test_the_weekly_baseline_wins_when_it_is_higher_and_no_history_means_no_judgement() -> None:
    assert baseline_for(_RAMP, 12.0, has_trailing_hour=True) == (12.0, "the same hour on previous weeks")
    assert baseline_for(_RAMP, 1.0, has_trailing_hour=True) == (pytest.approx(sum(_RAMP[:15]) / 15),
                                                                "the last 15 minutes")  # fmt: skip
    assert baseline_for(_RAMP[:20], None, has_trailing_hour=False) is None
