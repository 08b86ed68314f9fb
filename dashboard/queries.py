"""Every SQL query the dashboard runs, in one place, parameterised, over clickhouse-connect.

Values from users (city ids, time zone) are bound by clickhouse-connect (``%(name)s``), never
formatted into SQL. Each function returns plain Python data so pages and tests share it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

__all__ = ["CityFigures", "city_figures", "newest_event_time"]


@dataclass(frozen=True)
class CityFigures:
    """Violations for one city: this minute (last 60 s), today (local day), yesterday by this time."""

    city: str
    last_minute: int
    today: int
    yesterday_same_time: int
    newest: dt.datetime


_CITY_FIGURES = """
WITH toStartOfDay(now(%(tz)s)) AS today_start, now64(3) AS t_now
SELECT
    city,
    countIf(event_time >= t_now - INTERVAL 60 SECOND AND event_time >= today_start) AS last_minute,
    countIf(event_time >= today_start) AS today,
    countIf(event_time < today_start AND event_time <= t_now - INTERVAL 1 DAY) AS yesterday,
    max(event_time) AS newest
FROM violations
WHERE event_time >= today_start - INTERVAL 1 DAY
  AND event_time <= t_now + INTERVAL 10 MINUTE
GROUP BY city
"""


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def city_figures(client: Client, tz: str) -> dict[str, CityFigures]:
    """Figures for every city with data since yesterday's local midnight, keyed by city id.

    "Today" is the local calendar day in ``tz`` (Kazakhstan: UTC+5), so the count resets at local
    midnight, which is what the duty officers mean by today. Events stamped more than ten minutes
    ahead of now (a camera with a wrong clock) are left out until their time comes.
    """
    rows = client.query(_CITY_FIGURES, parameters={"tz": tz}).result_rows
    return {
        city: CityFigures(city, int(minute), int(today), int(yesterday), _utc(newest))
        for city, minute, today, yesterday, newest in rows
    }


def newest_event_time(client: Client) -> dt.datetime | None:
    """The newest event time stored, or None on an empty table; drives the staleness banner."""
    rows = client.query(
        "SELECT max(event_time), count() FROM violations "
        "WHERE event_time >= now64(3) - INTERVAL 1 DAY AND event_time <= now64(3) + INTERVAL 10 MINUTE"
    ).result_rows
    newest, n = rows[0]
    return _utc(newest) if n else None
