"""What the wall screen decides on its own: which city to show when rotating, and colours."""

from __future__ import annotations

import datetime as dt

from dozor.dashboard.queries import CityRow
from dozor.dashboard.screen import ROTATION_SIZE, focus_city, response_status

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def _overview(**today: int) -> dict[str, CityRow]:
    return {c: CityRow(c, today=n) for c, n in today.items()}


def test_without_rotation_the_chosen_city_stays() -> None:
    assert focus_city(T0, _overview(almaty=900, astana=500), "astana", 0) == "astana"


def test_rotation_cycles_the_busiest_cities_by_the_clock() -> None:
    overview = _overview(almaty=900, astana=500, shymkent=400, aktobe=300, karaganda=200, taraz=100, oral=50)
    shown = [focus_city(T0 + dt.timedelta(seconds=10 * i), overview, "astana", 10) for i in range(14)]
    busiest = ["almaty", "astana", "shymkent", "aktobe", "karaganda"]
    assert set(shown) == set(busiest) and len(busiest) == ROTATION_SIZE
    start = shown.index("almaty")
    assert shown[start : start + 5] == busiest  # busiest first, in order, each for one slot
    # Two screens in the room agree at any moment; within one slot the city does not change.
    assert focus_city(T0 + dt.timedelta(seconds=3), overview, "astana", 10) == shown[0]


def test_rotation_with_no_data_shows_the_chosen_city() -> None:
    assert focus_city(T0, {}, "astana", 10) == "astana"


def test_response_colour_follows_the_share_within_target() -> None:
    assert [response_status(x) for x in (None, 0.95, 0.9, 0.8, 0.5)] == ["none", "ok", "ok", "warn", "bad"]
