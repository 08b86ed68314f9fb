"""One volume model for the history and the live feed (issues #26, #27): a simulated weekday of the
live feed gives each city the violations, incidents and 102 calls the model (and so the history)
gives it, within chance. A live feed sized apart from its history made every start cry "spike"."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from dozor.cities import city
from dozor.producers.simulator import SimConfig, Simulator
from dozor.producers.volume import CALLS_PER_1000, INCIDENTS_PER_1000, VIOLATIONS_PER_1000, live_config


@pytest.fixture(scope="module")
def weekday() -> list:
    cfg = live_config(SimConfig(seed=5, late_rate=0.0, duplicate_rate=0.0))
    start = dt.datetime(2026, 12, 1, 19, 0, tzinfo=dt.UTC)  # Wednesday 00:00 in Kazakhstan
    return list(Simulator(cfg, "salt").messages(start, until=start + dt.timedelta(days=1)))


@pytest.mark.parametrize("place", ["almaty", "astana", "shymkent"])
def test_a_live_weekday_has_the_model_volume(weekday, place):
    thousands = city(place).population / 1000
    violations = sum(1 for m in weekday if m.family == "violations" and m.payload["city"] == place)
    incidents = {
        m.payload["incident_id"] for m in weekday if m.family == "incidents" and m.payload["city"] == place
    }
    calls = {m.payload["call_id"] for m in weekday if m.family == "calls" and m.payload["city"] == place}
    # Poisson counts: within 4 standard deviations (and 6 %) of the model's mean.
    model = (VIOLATIONS_PER_1000, INCIDENTS_PER_1000, CALLS_PER_1000)
    for got, per_1000 in zip((violations, len(incidents), len(calls)), model, strict=True):
        mean = thousands * per_1000
        assert abs(got - mean) <= 4 * mean**0.5 + 0.06 * mean, (place, got, mean)


def test_calls_are_answered_by_positions_and_some_are_abandoned(weekday):
    calls: dict[str, Counter] = {}
    for m in weekday:
        if m.family == "calls":
            calls.setdefault(m.payload["call_id"], Counter())[m.payload["status"]] += 1
    abandoned = sum(1 for c in calls.values() if c["abandoned"])
    assert all(c["offered"] == 1 for c in calls.values())
    assert all(c["answered"] + c["abandoned"] == 1 for c in calls.values())
    assert 0.005 < abandoned / len(calls) < 0.08  # what call centres report
