"""The wall screen's queries: live figures of the last minute, hour and day, parameterised.

Values from users (city ids, time zone, limits) are bound by clickhouse-connect (``%(name)s``),
never formatted into SQL. Each function returns plain Python data so pages, tests and the
benchmark share it (``benchmarks/wall_queries.py`` times every function listed in
:data:`WALL_QUERIES`).

What the figures mean, so that every screen and every test says the same thing:

- **last minute**: events in the 60 seconds up to now (raw table, a 60-second range of its key);
  *yesterday*: the same 60 seconds one day earlier;
- **last hour**: the 60 minutes up to now, current minute included (per-minute tables);
- **today**: since local midnight in the display zone (Kazakhstan: UTC+5); *yesterday*: from
  yesterday's midnight to the same minute yesterday;
- **open incidents**: opened in the last three days (by opening day, UTC) with no closed or
  cancelled event yet (the join's rule too; an incident open longer is a records problem, not a
  live one);
- **units**: latest status of each unit heard from in the last 12 hours: ``en_route``
  (assigned or en route), ``on_scene``, ``free`` (cleared);
- **response times**: incidents closed in the last hour with a unit on scene, latest revision of
  each: median and 90th percentile of time to arrival (``quantileExactInclusive``), and the share
  that arrived within their priority's target.

Events stamped in the future (a camera with a fast clock; the validator lets ten minutes through)
are counted once their time comes. Only aggregates leave this module: never a plate or an officer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from dozor.access import KIOSK, Scope

__all__ = [
    "CityRow",
    "DistrictRow",
    "AlertRow",
    "MapPoint",
    "overview",
    "districts",
    "alerts",
    "map_points",
    "newest_event_time",
    "WALL_QUERIES",
    "OPEN_INCIDENT_DAYS",
    "UNIT_HEARD_HOURS",
]

OPEN_INCIDENT_DAYS = 3
UNIT_HEARD_HOURS = 12


@dataclass
class CityRow:
    """One city on the wall: violations by window (with yesterday's), incidents, units, response."""

    city: str
    minute: int = 0
    minute_yesterday: int = 0
    hour: int = 0
    hour_yesterday: int = 0
    today: int = 0
    today_yesterday: int = 0
    incidents_open: int = 0
    units: dict[str, int] = field(default_factory=dict)
    responses: int = 0
    response_p50_s: float | None = None
    response_p90_s: float | None = None
    within_target: float | None = None


@dataclass
class DistrictRow:
    """One district of the focused city."""

    district: str
    hour: int = 0
    today: int = 0
    incidents_today: int = 0
    incidents_open: int = 0
    response_p50_s: float | None = None


@dataclass(frozen=True)
class AlertRow:
    event_time: dt.datetime
    kind: str
    city: str
    district: str
    priority: int | None
    observed: int | None
    baseline: float | None
    waited_s: float | None


@dataclass(frozen=True)
class MapPoint:
    kind: str  # "violation" or "incident"
    lat: float
    lon: float
    detail: str  # violation type, or incident category


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


_VIOLATION_WINDOWS = """
WITH toStartOfDay(now(%(tz)s)) AS d0, toStartOfMinute(now()) AS m0
SELECT city,
    sumIf(violations, minute >= m0 - INTERVAL 59 MINUTE AND minute <= m0) AS hour,
    sumIf(violations, minute >= m0 - INTERVAL 1 DAY - INTERVAL 59 MINUTE
                      AND minute <= m0 - INTERVAL 1 DAY) AS hour_y,
    sumIf(violations, minute >= d0 AND minute <= m0) AS today,
    sumIf(violations, minute >= d0 - INTERVAL 1 DAY AND minute <= m0 - INTERVAL 1 DAY) AS today_y
FROM violations_by_city_minute
WHERE minute >= least(d0 - INTERVAL 1 DAY, m0 - INTERVAL 1 DAY - INTERVAL 59 MINUTE) AND minute <= m0
GROUP BY city
"""

_VIOLATIONS_LAST_MINUTE = """
WITH now64(3) AS t
SELECT city,
    countIf(event_time > t - INTERVAL 60 SECOND) AS m,
    countIf(event_time <= t - INTERVAL 1 DAY) AS m_y
FROM violations
WHERE (event_time > t - INTERVAL 60 SECOND AND event_time <= t)
   OR (event_time > t - INTERVAL 1 DAY - INTERVAL 60 SECOND AND event_time <= t - INTERVAL 1 DAY)
GROUP BY city
"""

_OPEN_INCIDENTS = """
SELECT city, district, count() FROM incident_status FINAL
WHERE opened_day >= today() - %(open_days)s AND ended = 0
GROUP BY city, district
"""

_UNITS = """
SELECT city, multiIf(s = 'on_scene', 'on_scene', s = 'cleared', 'free', 'en_route') AS state, count()
FROM (
    SELECT city, unit_id, argMaxMerge(status) AS s, max(last_change) AS heard
    FROM unit_state GROUP BY city, unit_id
)
WHERE heard >= now() - INTERVAL %(heard_hours)s HOUR
GROUP BY city, state
"""

_WINDOWS = {"open_days": OPEN_INCIDENT_DAYS, "heard_hours": UNIT_HEARD_HOURS}

#: Incidents closed or cancelled in the last hour, each by its latest revision. The open records of
#: response_times.v2 (a unit on scene, no closure yet) are left out: the wall's figure is what it
#: has been since v1, responses completed in the last hour.
_RESPONSES = """
SELECT {by}, count(), quantileExactInclusive(0.5)(time_to_arrival_s),
       quantileExactInclusive(0.9)(time_to_arrival_s), avg(arrived_within_target)
FROM (
    SELECT city, district, incident_id, time_to_arrival_s, arrived_within_target
    FROM incident_responses
    WHERE event_time >= now64(3) - INTERVAL 1 HOUR AND event_time <= now64(3) {city_filter}
      AND status != 'open'
    ORDER BY revision DESC LIMIT 1 BY incident_id
)
WHERE time_to_arrival_s IS NOT NULL
GROUP BY {by}
"""

_CITY_RESPONSES = _RESPONSES.format(by="city", city_filter="")
_DISTRICT_RESPONSES = _RESPONSES.format(by="district", city_filter="AND city = %(city)s")


def overview(client: Client, tz: str, scope: Scope) -> dict[str, CityRow]:
    """Every city in ``scope`` with any figure, keyed by city id.

    A district head sees its city's row only if its scope covers the whole city: city totals
    would show the other districts' figures.
    """
    rows: dict[str, CityRow] = {}

    def row(city: str) -> CityRow:
        return rows.setdefault(city, CityRow(city))

    for city, *counts in client.query(_VIOLATION_WINDOWS, parameters={"tz": tz}).result_rows:
        r = row(city)
        r.hour, r.hour_yesterday, r.today, r.today_yesterday = map(int, counts)
    for city, m, m_y in client.query(_VIOLATIONS_LAST_MINUTE).result_rows:
        r = row(city)
        r.minute, r.minute_yesterday = int(m), int(m_y)
    for city, _district, n in client.query(_OPEN_INCIDENTS, parameters=_WINDOWS).result_rows:
        row(city).incidents_open += int(n)
    for city, state, n in client.query(_UNITS, parameters=_WINDOWS).result_rows:
        row(city).units[state] = int(n)
    for city, n, p50, p90, within in client.query(_CITY_RESPONSES).result_rows:
        r = row(city)
        r.responses, r.response_p50_s, r.response_p90_s, r.within_target = int(n), p50, p90, within
    return {c: r for c, r in rows.items() if scope.covers_city(c) and scope.districts is None}


_DISTRICT_VIOLATIONS = """
WITH toStartOfDay(now(%(tz)s)) AS d0, toStartOfMinute(now()) AS m0
SELECT district,
    sumIf(violations, minute >= m0 - INTERVAL 59 MINUTE) AS hour,
    sumIf(violations, minute >= d0) AS today
FROM violations_by_minute
WHERE city = %(city)s AND minute >= least(d0, m0 - INTERVAL 59 MINUTE) AND minute <= m0
GROUP BY district
"""

_DISTRICT_INCIDENTS = """
SELECT district, sum(opened) FROM incidents_by_minute
WHERE city = %(city)s AND minute >= toStartOfDay(now(%(tz)s)) AND minute <= now()
GROUP BY district
"""


def districts(client: Client, city: str, tz: str, scope: Scope) -> list[DistrictRow]:
    """The focused city's districts in ``scope``, busiest today first; '' collects events without
    a district (shown only to a scope that covers the whole city)."""
    scope.require_city(city)
    p = {"city": city, "tz": tz}
    rows: dict[str, DistrictRow] = {}

    def row(d: str) -> DistrictRow:
        return rows.setdefault(d, DistrictRow(d))

    for d, hour, today in client.query(_DISTRICT_VIOLATIONS, parameters=p).result_rows:
        row(d).hour, row(d).today = int(hour), int(today)
    for d, n in client.query(_DISTRICT_INCIDENTS, parameters=p).result_rows:
        row(d).incidents_today = int(n)
    for c, d, n in client.query(_OPEN_INCIDENTS, parameters=_WINDOWS).result_rows:
        if c == city:
            row(d).incidents_open += int(n)
    for d, _n, p50, _p90, _within in client.query(_DISTRICT_RESPONSES, parameters=p).result_rows:
        row(d).response_p50_s = p50
    shown = [r for r in rows.values() if scope.covers_district(city, r.district)]
    return sorted(shown, key=lambda r: (-r.today, r.district))


_ALERTS = """
SELECT event_time, kind, city, district, priority, observed, baseline, waited_s FROM alerts
WHERE event_time >= now64(3) - INTERVAL %(hours)s HOUR AND event_time <= now64(3)
  AND (%(all)s OR city = %(city)s)
ORDER BY event_time DESC LIMIT 1 BY event_id LIMIT %(limit)s
"""


def alerts(
    client: Client, scope: Scope, city: str | None = None, hours: int = 6, limit: int = 12
) -> list[AlertRow]:
    """The newest alerts in ``scope`` (of one city, or all it covers), newest first."""
    if city is not None:
        scope.require_city(city)
    rows = client.query(
        _ALERTS, parameters={"city": city or "", "all": city is None, "hours": hours, "limit": limit * 4}
    ).result_rows
    shown = [AlertRow(_utc(t), *rest) for t, *rest in rows if scope.covers_district(rest[1], rest[2])]
    return shown[:limit]


_MAP_POINTS = """
SELECT * FROM (
    SELECT 'violation' AS kind, lat, lon, toString(violation_type) AS detail, event_time FROM violations
    WHERE city = %(city)s AND event_time >= now64(3) - INTERVAL %(minutes)s MINUTE AND event_time <= now64(3)
      AND lat IS NOT NULL
    UNION ALL
    SELECT 'incident', lat, lon, toString(category), event_time FROM incident_events
    WHERE city = %(city)s AND status = 'opened'
      AND event_time >= now64(3) - INTERVAL %(minutes)s MINUTE AND event_time <= now64(3)
      AND lat IS NOT NULL
) ORDER BY event_time DESC LIMIT %(limit)s
"""


def map_points(
    client: Client, city: str, scope: Scope, minutes: int = 15, limit: int = 4000
) -> list[MapPoint]:
    """Violations and incidents opened in the last ``minutes`` in one city, newest first (those
    with a position: an imported call without one is counted, not drawn).

    Points carry no district, so a scope limited to some districts gets none: a point outside
    them would show what it may not see.
    """
    scope.require_city(city)
    if scope.districts is not None:
        return []
    rows = client.query(
        _MAP_POINTS, parameters={"city": city, "minutes": minutes, "limit": limit}
    ).result_rows
    return [MapPoint(kind, float(lat), float(lon), detail) for kind, lat, lon, detail, _ in rows]


_NEWEST_RAW = """
SELECT max(t), count() FROM (
    SELECT max(event_time) AS t FROM violations
    WHERE event_time >= now64(3) - INTERVAL 1 HOUR AND event_time <= now64(3)
    UNION ALL
    SELECT max(event_time) FROM incident_events
    WHERE event_time >= now64(3) - INTERVAL 1 HOUR AND event_time <= now64(3)
) WHERE t > toDateTime64(0, 3)
"""

_NEWEST_MINUTE = """
SELECT max(m), count() FROM (
    SELECT max(minute) AS m FROM violations_by_minute
    WHERE minute >= now() - INTERVAL 7 DAY AND minute <= now()
    UNION ALL
    SELECT max(minute) FROM incidents_by_minute
    WHERE minute >= now() - INTERVAL 7 DAY AND minute <= now()
) WHERE m > toDateTime(0)
"""


def newest_event_time(client: Client) -> dt.datetime | None:
    """The newest event time stored (violations or incidents, up to now): the screen's freshness."""
    newest, n = client.query(_NEWEST_RAW).result_rows[0]
    if n:
        return _utc(newest)
    # Nothing in the last hour: the per-minute tables say when the last event was, to the minute.
    newest, n = client.query(_NEWEST_MINUTE).result_rows[0]
    return _utc(newest) + dt.timedelta(seconds=59) if n else None


#: The wall screen's queries with example arguments, for the latency benchmark.
WALL_QUERIES: dict[str, Callable[[Client], object]] = {
    "overview": lambda c: overview(c, "Asia/Almaty", KIOSK),
    "districts": lambda c: districts(c, "astana", "Asia/Almaty", KIOSK),
    "alerts": lambda c: alerts(c, KIOSK),
    "map_points": lambda c: map_points(c, "astana", KIOSK),
    "newest_event_time": newest_event_time,
}
