"""The wall screen's queries: a city's live picture at one instant, parameterised.

Values from users (city ids, time zone, limits) are bound by clickhouse-connect (``%(name)s``),
never formatted into SQL. Each function returns plain Python data so pages, tests and the
benchmark share it (``benchmarks/wall_queries.py`` times every function listed in
:data:`WALL_QUERIES`).

**One instant.** Every statement of a screen's refresh is bound to the same instant ``t0`` (the
screen says "as of" it), never to the engine's ``now()`` of each statement: a wall once showed
"last minute 817" above "last hour 803", and a city's header and its row in the table disagreeing,
because its figures came from different tables at different moments.

What the figures mean, so that every screen and every test says the same thing:

- **today**: from the local midnight of ``t0`` in the display zone (Kazakhstan's cities all keep
  UTC+5 since March 2024; dozor.localtime) to ``t0``; **last hour** and **last minute**: the 60
  minutes and 60 seconds up to ``t0``, *within today*. The three are counted by one statement over
  the raw events, so they nest by construction: minute ≤ hour ≤ today, for every city and
  district, and a city is the sum of its districts. Just after midnight "last hour" is the part of
  the hour since midnight. *Yesterday*: the same windows one day earlier.
- **open incidents**: opened in the last three days with no closed or cancelled event by ``t0``
  (an incident open longer is a records problem, not a live one);
- **waiting**: open incidents no unit has reached yet; *past target* when they have waited longer
  than their priority's arrival target (``DOZOR_ARRIVAL_TARGET_MINUTES``). A duty officer acts on
  these, oldest first;
- **units**: latest status of each unit heard from in the last 12 hours: ``en_route``
  (assigned or en route), ``on_scene``, ``free`` (cleared);
- **response**: incidents whose first unit arrived in the last hour, latest revision of each:
  median and 90th percentile of time to arrival (``quantileExactInclusive``); **on time**: of those
  arrivals and the incidents now waiting past their target (a miss already), the share that arrived
  within target — "100 % on time" never stands beside a P1 waiting past its target.

Events stamped in the future (a camera with a fast clock; the validator lets ten minutes through)
are counted once their time comes. Only aggregates leave this module: never a plate or an officer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from dozor.access import KIOSK, Scope
from dozor.dashboard.queries.calls import QueueRow, call_queue

__all__ = [
    "CityRow",
    "DistrictRow",
    "AlertRow",
    "MapPoint",
    "WaitingIncident",
    "Snapshot",
    "Heartbeat",
    "heartbeat",
    "wall_snapshot",
    "overview",
    "districts",
    "alerts",
    "map_points",
    "waiting",
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
    #: Incidents whose first unit arrived in the last hour, and their percentiles.
    responses: int = 0
    response_p50_s: float | None = None
    response_p90_s: float | None = None
    #: Of those arrivals, how many within their priority's target.
    arrived_in_target: int = 0
    #: Open incidents no unit has reached; of them, past their target, by priority.
    waiting: int = 0
    past_target: dict[int, int] = field(default_factory=dict)
    #: The longest a waiting incident has waited, in seconds, and its priority.
    oldest_waiting_s: float | None = None
    oldest_waiting_priority: int | None = None

    @property
    def missed(self) -> int:
        return sum(self.past_target.values())

    @property
    def within_target(self) -> float | None:
        """On time: arrivals within target over arrivals plus incidents now waiting past target."""
        judged = self.responses + self.missed
        return self.arrived_in_target / judged if judged else None


@dataclass
class DistrictRow:
    """One district of the focused city."""

    district: str
    minute: int = 0
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


@dataclass(frozen=True)
class WaitingIncident:
    """An open incident no unit has reached: its priority, district and how long it has waited."""

    city: str
    district: str
    priority: int
    waited_s: float
    target_s: int

    @property
    def past_target(self) -> bool:
        return self.waited_s > self.target_s


@dataclass(frozen=True)
class Snapshot:
    """Everything one wall screen shows for one focused city, read for one instant ``read_at``."""

    overview: dict[str, CityRow]
    districts: list[DistrictRow]
    alerts: list[AlertRow]
    points: list[MapPoint]
    #: The focused city's waiting incidents, past target first, oldest first.
    waiting: list[WaitingIncident]
    newest: dt.datetime | None
    read_at: dt.datetime
    #: The focused city's 102 at the same instant (waiting now, longest wait, the last hour's answers).
    calls: QueueRow | None = None
    #: Whether the feed runs: the workers' newest heartbeat up to the instant.
    beat: Heartbeat | None = None


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _windows(t0: dt.datetime, tz: str) -> dict[str, object]:
    """The instants every statement of one refresh is bound to: now, today's local midnight, and
    the same a day before."""
    t0 = _utc(t0)
    d0 = dt.datetime.combine(t0.astimezone(ZoneInfo(tz)).date(), dt.time(), ZoneInfo(tz)).astimezone(dt.UTC)
    day = dt.timedelta(days=1)
    return {"t0": t0, "d0": d0, "y0": t0 - day, "yd0": d0 - day}


#: Violations by city and district in nested windows of today and of yesterday, in one statement
#: over the raw events: every window is a subset of the next, so the figures nest by construction.
_VIOLATIONS = """
SELECT city, district,
    countIf(event_time >= %(d0)s AND event_time <= %(t0)s AND event_time > %(t0)s - INTERVAL 60 SECOND),
    countIf(event_time >= %(d0)s AND event_time <= %(t0)s AND event_time > %(t0)s - INTERVAL 1 HOUR),
    countIf(event_time >= %(d0)s AND event_time <= %(t0)s),
    countIf(event_time >= %(yd0)s AND event_time <= %(y0)s AND event_time > %(y0)s - INTERVAL 60 SECOND),
    countIf(event_time >= %(yd0)s AND event_time <= %(y0)s AND event_time > %(y0)s - INTERVAL 1 HOUR),
    countIf(event_time >= %(yd0)s AND event_time <= %(y0)s)
FROM violations
WHERE event_time >= %(yd0)s AND event_time <= %(t0)s AND {city_filter}
GROUP BY city, district
"""

_OPENED_TODAY = """
SELECT city, district, count() FROM incident_events
WHERE status = 'opened' AND event_time >= %(d0)s AND event_time <= %(t0)s AND {city_filter}
GROUP BY city, district
"""

#: Open incidents (opened in the last days, no closure by t0) and whether a unit reached them by t0,
#: from the raw events: exact for any instant, not only for now.
_OPEN = """
SELECT s.city, s.district, s.priority, s.opened_at, a.incident_id != '' AS reached
FROM (
    SELECT city, incident_id, max(district) AS district, max(priority) AS priority,
           min(opened_at) AS opened_at
    FROM incident_events
    WHERE event_time >= %(t0)s - INTERVAL %(open_days)s DAY AND event_time <= %(t0)s AND {city_filter}
    GROUP BY city, incident_id
    HAVING countIf(status IN ('closed', 'cancelled')) = 0 AND countIf(status = 'opened') > 0
) AS s
LEFT JOIN (
    SELECT DISTINCT incident_id FROM dispatch_events
    WHERE status = 'on_scene' AND event_time >= %(t0)s - INTERVAL %(open_days)s DAY AND event_time <= %(t0)s
      AND {city_filter}
) AS a ON s.incident_id = a.incident_id
"""

_UNITS = """
SELECT city, multiIf(s = 'on_scene', 'on_scene', s = 'cleared', 'free', 'en_route') AS state, count()
FROM (
    SELECT city, unit_id, argMaxMerge(status) AS s, max(last_change) AS heard
    FROM unit_state WHERE {city_filter} GROUP BY city, unit_id
)
WHERE heard >= %(t0)s - INTERVAL %(heard_hours)s HOUR AND heard <= %(t0)s
GROUP BY city, state
"""

#: Incidents whose first unit arrived in the last hour before t0, each by its latest revision.
_ARRIVALS = """
SELECT {by}, count(), quantileExactInclusive(0.5)(time_to_arrival_s),
       quantileExactInclusive(0.9)(time_to_arrival_s), countIf(arrived_within_target)
FROM (
    SELECT city, district, incident_id, time_to_arrival_s, arrived_within_target, first_on_scene_at
    FROM incident_responses
    WHERE event_time >= %(t0)s - INTERVAL 3 HOUR AND event_time <= %(t0)s AND {city_filter}
    ORDER BY revision DESC LIMIT 1 BY incident_id
)
WHERE first_on_scene_at > %(t0)s - INTERVAL 1 HOUR AND first_on_scene_at <= %(t0)s
  AND time_to_arrival_s IS NOT NULL
GROUP BY {by}
"""

_ALERTS = """
SELECT event_time, kind, city, district, priority, observed, baseline, waited_s FROM alerts
WHERE event_time >= %(t0)s - INTERVAL %(hours)s HOUR AND event_time <= %(t0)s
  AND (%(all)s OR city = %(city)s)
ORDER BY event_time DESC LIMIT 1 BY event_id LIMIT %(limit)s
"""

_MAP_POINTS = """
SELECT * FROM (
    SELECT 'violation' AS kind, lat, lon, toString(violation_type) AS detail, event_time FROM violations
    WHERE city = %(city)s AND event_time >= %(t0)s - INTERVAL %(minutes)s MINUTE AND event_time <= %(t0)s
      AND lat IS NOT NULL
    UNION ALL
    SELECT 'incident', lat, lon, toString(category), event_time FROM incident_events
    WHERE city = %(city)s AND status = 'opened'
      AND event_time >= %(t0)s - INTERVAL %(minutes)s MINUTE AND event_time <= %(t0)s
      AND lat IS NOT NULL
) ORDER BY event_time DESC LIMIT %(limit)s
"""

_NEWEST_RAW = """
SELECT max(t), count() FROM (
    SELECT max(event_time) AS t FROM violations
    WHERE event_time >= %(t0)s - INTERVAL 1 HOUR AND event_time <= %(t0)s
    UNION ALL
    SELECT max(event_time) FROM incident_events
    WHERE event_time >= %(t0)s - INTERVAL 1 HOUR AND event_time <= %(t0)s
) WHERE t > toDateTime64(0, 3)
"""

#: The workers' newest heartbeat up to the instant (a small grace: a beat is written after its time),
#: and the lag it reported: whether the feed is running, whatever the cities do.
_HEARTBEAT = """
SELECT max(at), argMax(lag, at), count() FROM worker_heartbeats
WHERE at >= %(t0)s - INTERVAL 1 HOUR AND at <= %(t0)s + INTERVAL 2 SECOND
"""

_NEWEST_MINUTE = """
SELECT max(m), count() FROM (
    SELECT max(minute) AS m FROM violations_by_minute
    WHERE minute >= %(t0)s - INTERVAL 7 DAY AND minute <= %(t0)s
    UNION ALL
    SELECT max(minute) FROM incidents_by_minute
    WHERE minute >= %(t0)s - INTERVAL 7 DAY AND minute <= %(t0)s
) WHERE m > toDateTime(0)
"""

_ALL_CITIES = "1"
_ONE_CITY = "city = %(city)s"


def _counts(client: Client, p: dict[str, object], city: str | None) -> dict[tuple[str, str], list[int]]:
    sql = _VIOLATIONS.format(city_filter=_ONE_CITY if city else _ALL_CITIES)
    return {(c, d): list(map(int, n)) for c, d, *n in client.query(sql, parameters=p).result_rows}


def _open(client: Client, p: dict[str, object], targets_s: dict[int, int], city: str | None) -> list[tuple]:
    """(city, district, priority, waited seconds, reached) of every open incident."""
    sql = _OPEN.format(city_filter=_ONE_CITY if city else _ALL_CITIES)
    t0 = p["t0"]
    assert isinstance(t0, dt.datetime)
    out = []
    for c, d, prio, opened, reached in client.query(sql, parameters=p).result_rows:
        out.append((c, d, int(prio), max((t0 - _utc(opened)).total_seconds(), 0.0), bool(reached)))
    return out


def overview(
    client: Client,
    tz: str,
    scope: Scope,
    t0: dt.datetime | None = None,
    targets_s: dict[int, int] | None = None,
) -> dict[str, CityRow]:
    """Every city in ``scope`` with any figure at ``t0``, keyed by city id.

    A district head sees its city's row only if its scope covers the whole city: city totals
    would show the other districts' figures.
    """
    p = {**_windows(t0 or dt.datetime.now(dt.UTC), tz), "open_days": OPEN_INCIDENT_DAYS,
         "heard_hours": UNIT_HEARD_HOURS}  # fmt: skip
    targets = targets_s or {1: 600, 2: 1200, 3: 2400, 4: 3600}
    rows: dict[str, CityRow] = {}

    def row(city: str) -> CityRow:
        return rows.setdefault(city, CityRow(city))

    for (city, _district), n in _counts(client, p, None).items():
        r = row(city)
        r.minute += n[0]
        r.hour += n[1]
        r.today += n[2]
        r.minute_yesterday += n[3]
        r.hour_yesterday += n[4]
        r.today_yesterday += n[5]
    for city, _district, prio, waited, reached in _open(client, p, targets, None):
        r = row(city)
        r.incidents_open += 1
        if not reached:
            r.waiting += 1
            if waited > targets.get(prio, 3600):
                r.past_target[prio] = r.past_target.get(prio, 0) + 1
            if r.oldest_waiting_s is None or waited > r.oldest_waiting_s:
                r.oldest_waiting_s, r.oldest_waiting_priority = waited, prio
    for city, state, n in client.query(_UNITS.format(city_filter=_ALL_CITIES), parameters=p).result_rows:
        row(city).units[state] = int(n)
    arrivals = _ARRIVALS.format(by="city", city_filter=_ALL_CITIES)
    for city, n, p50, p90, within in client.query(arrivals, parameters=p).result_rows:
        r = row(city)
        r.responses, r.response_p50_s, r.response_p90_s, r.arrived_in_target = int(n), p50, p90, int(within)
    return {c: r for c, r in rows.items() if scope.covers_city(c) and scope.districts is None}


def districts(
    client: Client, city: str, tz: str, scope: Scope, t0: dt.datetime | None = None
) -> list[DistrictRow]:
    """The focused city's districts in ``scope`` at ``t0``, busiest today first; '' collects events
    without a district (shown only to a scope that covers the whole city)."""
    scope.require_city(city)
    p = {**_windows(t0 or dt.datetime.now(dt.UTC), tz), "city": city, "open_days": OPEN_INCIDENT_DAYS}
    rows: dict[str, DistrictRow] = {}

    def row(d: str) -> DistrictRow:
        return rows.setdefault(d, DistrictRow(d))

    for (_c, d), n in _counts(client, p, city).items():
        row(d).minute, row(d).hour, row(d).today = n[0], n[1], n[2]
    for _c, d, n in client.query(_OPENED_TODAY.format(city_filter=_ONE_CITY), parameters=p).result_rows:
        row(d).incidents_today = int(n)
    for _c, d, _prio, _waited, _reached in _open(client, p, {}, city):
        row(d).incidents_open += 1
    arrivals = _ARRIVALS.format(by="district", city_filter=_ONE_CITY)
    for d, _n, p50, _p90, _w in client.query(arrivals, parameters=p).result_rows:
        row(d).response_p50_s = p50
    shown = [r for r in rows.values() if scope.covers_district(city, r.district)]
    return sorted(shown, key=lambda r: (-r.today, r.district))


def waiting(
    client: Client, city: str, scope: Scope, targets_s: dict[int, int], t0: dt.datetime | None = None
) -> list[WaitingIncident]:
    """The city's open incidents no unit has reached at ``t0``: past target first, longest first."""
    scope.require_city(city)
    p = {**_windows(t0 or dt.datetime.now(dt.UTC), "UTC"), "city": city, "open_days": OPEN_INCIDENT_DAYS}
    out = [
        WaitingIncident(c, d, prio, waited, targets_s.get(prio, 3600))
        for c, d, prio, waited, reached in _open(client, p, targets_s, city)
        if not reached and scope.covers_district(c, d)
    ]
    return sorted(out, key=lambda w: (not w.past_target, -w.waited_s))


def alerts(
    client: Client, scope: Scope, city: str | None = None, hours: int = 6, limit: int = 12,
    t0: dt.datetime | None = None,
) -> list[AlertRow]:  # fmt: skip
    """The newest alerts in ``scope`` (of one city, or all it covers), newest first."""
    if city is not None:
        scope.require_city(city)
    p = {"t0": _utc(t0 or dt.datetime.now(dt.UTC)), "city": city or "", "all": city is None, "hours": hours,
         "limit": limit * 4}  # fmt: skip
    rows = client.query(_ALERTS, parameters=p).result_rows
    shown = [AlertRow(_utc(t), *rest) for t, *rest in rows if scope.covers_district(rest[1], rest[2])]
    return shown[:limit]


def map_points(
    client: Client,
    city: str,
    scope: Scope,
    minutes: int = 15,
    limit: int = 4000,
    t0: dt.datetime | None = None,
) -> list[MapPoint]:
    """Violations and incidents opened in the last ``minutes`` in one city, newest first (those
    with a position: an imported call without one is counted, not drawn).

    Points carry no district, so a scope limited to some districts gets none: a point outside
    them would show what it may not see.
    """
    scope.require_city(city)
    if scope.districts is not None:
        return []
    p = {"city": city, "minutes": minutes, "limit": limit, "t0": _utc(t0 or dt.datetime.now(dt.UTC))}
    rows = client.query(_MAP_POINTS, parameters=p).result_rows
    return [MapPoint(kind, float(lat), float(lon), detail) for kind, lat, lon, detail, _ in rows]


@dataclass(frozen=True)
class Heartbeat:
    """The ingest workers' newest heartbeat: when, and how many messages behind they were."""

    at: dt.datetime
    lag: int


def heartbeat(client: Client, t0: dt.datetime | None = None) -> Heartbeat | None:
    """The newest heartbeat of the last hour up to ``t0``; None when no worker has beaten in it (no
    worker runs, or figures written without one: the screen then judges by the newest event)."""
    p = {"t0": _utc(t0 or dt.datetime.now(dt.UTC))}
    try:
        at, lag, n = client.query(_HEARTBEAT, parameters=p).result_rows[0]
    except DatabaseError:  # a database migrated before 0017: judged by the events
        return None
    return Heartbeat(_utc(at), int(lag)) if n else None


def newest_event_time(client: Client, t0: dt.datetime | None = None) -> dt.datetime | None:
    """The newest event time stored up to ``t0`` (violations or incidents): the screen's freshness."""
    p = {"t0": _utc(t0 or dt.datetime.now(dt.UTC))}
    newest, n = client.query(_NEWEST_RAW, parameters=p).result_rows[0]
    if n:
        return _utc(newest)
    # Nothing in the last hour: the per-minute tables say when the last event was, to the minute.
    newest, n = client.query(_NEWEST_MINUTE, parameters=p).result_rows[0]
    return _utc(newest) + dt.timedelta(seconds=59) if n else None


def wall_snapshot(
    client: Client, focus: str, tz: str, scope: Scope, targets_s: dict[int, int], t0: dt.datetime
) -> Snapshot:
    """Everything a wall screen shows for ``focus``, every figure as of the one instant ``t0``.

    The alerts are the focused city's: a wall is for its city, signed in or a kiosk.
    """
    return Snapshot(
        overview=overview(client, tz, scope, t0, targets_s),
        districts=districts(client, focus, tz, scope, t0),
        alerts=alerts(client, scope, city=focus, t0=t0),
        points=map_points(client, focus, scope, t0=t0),
        waiting=waiting(client, focus, scope, targets_s, t0),
        newest=newest_event_time(client, t0),
        read_at=_utc(t0),
        calls=call_queue(client, scope, t0, [focus]).get(focus, QueueRow(focus)),
        beat=heartbeat(client, t0),
    )


#: The wall screen's queries with example arguments, for the latency benchmark.
WALL_QUERIES: dict[str, Callable[[Client], object]] = {
    "overview": lambda c: overview(c, "Asia/Almaty", KIOSK),
    "districts": lambda c: districts(c, "astana", "Asia/Almaty", KIOSK),
    "alerts": lambda c: alerts(c, KIOSK, city="astana"),
    "map_points": lambda c: map_points(c, "astana", KIOSK),
    "waiting": lambda c: waiting(c, "astana", KIOSK, {1: 600, 2: 1200, 3: 2400, 4: 3600}),
    "newest_event_time": newest_event_time,
    "call_queue": lambda c: call_queue(c, KIOSK, dt.datetime.now(dt.UTC), ["astana"]),
}
