"""The managers' queries: CompStat periods, trends, heat maps, response times and the incident list
over months and years of history, each in the signed-in user's scope; integrity and audit.

Every function takes the :class:`~dozor.access.Scope` and refuses (``AccessDenied``) an area it
does not cover; an area of a whole city, for a user who may see only some of its districts, is
reduced to those districts. Values from users are bound by clickhouse-connect, never formatted
into SQL; the few identifiers a user chooses (group-by, sort column) come from fixed maps.

What the figures mean (the pages say the same):

- **days** are local days in the display zone (``Asia/Almaty``: UTC+6 until 2024-03-01, UTC+5
  since). Counts over days read the hourly roll-ups (migration 0009), and CompStat's incidents the
  per-Kazakhstan-day one (migration 0010), exact to the event.
- **CompStat periods** for an *as of* day D: *week* D−6…D; *previous week* D−13…D−7; *same week
  last year* the 7 days ending D−364 (52 weeks back: the same weekdays, as CompStat compares);
  *28 days* D−27…D against the 28 days ending D−364; *year to date* 1 January…D against 1 January
  of the year before to the same date (29 February → 28 February).
- **significance**: z = 2(√a − √b), the Poisson variance-stabilised difference of two counts;
  flagged when |z| > 3, so that 3 → 7 is not an alarm and 300 → 400 is.
- **response times**: one record per incident, its latest revision (the join republishes when a
  late step arrives), grouped by the incident's opening time. The clock starts when the incident is
  opened (call received / record created) and stops at the first unit assigned (*assignment*), the
  first unit on scene (*arrival*) and the closure (*closure*). Percentiles are exact
  (``quantileExactInclusive``, the definition of the city-figures topic).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from dozor import localtime
from dozor.access import Scope
from dozor.dashboard.queries.area import AREA_SQL, Area, area_params, bounds
from dozor.dashboard.queries.wall import _utc

__all__ = [
    "Area",
    "Filters",
    "PERIODS",
    "periods",
    "poisson_z",
    "SIGNIFICANT_Z",
    "CompstatRow",
    "compstat",
    "district_totals",
    "daily_series",
    "heatmap",
    "response_stats",
    "response_weekly",
    "RESPONSE_GROUPS",
    "IncidentRow",
    "incident_list",
    "INCIDENT_SORT",
    "simulated_days",
    "ResponseRow",
    "IntegrityRow",
    "integrity_by_month",
    "AuditRow",
    "audit_log",
    "audit_choices",
    "MANAGER_QUERIES",
]

#: |z| above this is flagged as a change beyond chance.
SIGNIFICANT_Z = 3.0

#: CompStat's periods, in the order the page shows them.
PERIODS = ("week", "prev_week", "week_ly", "d28", "d28_ly", "ytd", "ytd_ly")


@dataclass(frozen=True)
class Filters:
    """What a page shows of each family; empty means all."""

    violation_types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()


def _filter_params(f: Filters) -> dict[str, object]:
    return {
        "types": list(f.violation_types),
        "categories": list(f.categories),
        "channels": list(f.channels),
        "priorities": [int(p) for p in f.priorities],
    }


def _compose(template: str, **fragments: str) -> str:
    """Put this module's fixed SQL fragments into a template; a user's value never goes this way
    (those are bound parameters), only text written here."""
    return template.format(**fragments)


_INCIDENT_FILTER = (
    "(empty(%(categories)s) OR has(%(categories)s, category))"
    " AND (empty(%(channels)s) OR has(%(channels)s, channel))"
    " AND (empty(%(priorities)s) OR has(%(priorities)s, priority))"
)
_VIOLATION_FILTER = "(empty(%(types)s) OR has(%(types)s, violation_type))"


def _same_date_year_before(d: dt.date) -> dt.date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


def periods(day: dt.date) -> dict[str, tuple[dt.date, dt.date]]:
    """CompStat's periods for the *as of* ``day``, first and last day inclusive (see the module)."""
    w = dt.timedelta
    ly = day - w(days=364)
    return {
        "week": (day - w(days=6), day),
        "prev_week": (day - w(days=13), day - w(days=7)),
        "week_ly": (ly - w(days=6), ly),
        "d28": (day - w(days=27), day),
        "d28_ly": (ly - w(days=27), ly),
        "ytd": (dt.date(day.year, 1, 1), day),
        "ytd_ly": (dt.date(day.year - 1, 1, 1), _same_date_year_before(day)),
    }


def poisson_z(current: int, before: int) -> float:
    """2(√a − √b): about normal with variance 1 when both counts are Poisson with the same rate."""
    return 2.0 * (math.sqrt(current) - math.sqrt(before))


def _change(current: int, before: int) -> float | None:
    return None if before == 0 else (current - before) / before


@dataclass(frozen=True)
class CompstatRow:
    """One line of a CompStat table: a figure (``family``, ``key``) in every period."""

    family: str
    key: str
    counts: dict[str, int] = field(default_factory=dict)

    def n(self, period: str) -> int:
        return self.counts.get(period, 0)

    def change(self, current: str, before: str) -> float | None:
        """The change from ``before`` to ``current`` as a fraction (None when ``before`` is 0)."""
        return _change(self.n(current), self.n(before))

    def z(self, current: str, before: str) -> float:
        return poisson_z(self.n(current), self.n(before))

    def significant(self, current: str, before: str) -> bool:
        return abs(self.z(current, before)) > SIGNIFICANT_Z


def _period_sums(col: str, day_expr: str) -> str:
    return ", ".join(f"sumIf({col}, {day_expr} BETWEEN %({p}_lo)s AND %({p}_hi)s) AS {p}" for p in PERIODS)


def _period_params(day: dt.date) -> dict[str, object]:
    ps = periods(day)
    out: dict[str, object] = {}
    for p, (lo, hi) in ps.items():
        out[f"{p}_lo"], out[f"{p}_hi"] = lo, hi
    out["span_lo"] = min(lo for lo, _ in ps.values())
    out["span_hi"] = day
    return out


_CS_VIOLATIONS = _compose(
    """
SELECT violation_type, {sums}
FROM (SELECT violation_type, violations, toDate(hour, %(tz)s) AS d FROM violations_by_hour
      WHERE {area} AND hour >= %(lo)s AND hour < %(hi)s)
GROUP BY violation_type ORDER BY violation_type
""",
    sums=_period_sums("violations", "d"),
    area=AREA_SQL,
)

#: Incidents opened per category, channel and priority and period, from ``{source}`` (an hourly or a
#: daily roll-up) with its local day as ``d``.
_CS_INCIDENTS_OF = """
SELECT k.1 AS family, k.2 AS key, {sums}
FROM (SELECT opened, {day} AS d,
             arrayJoin([('category', toString(category)), ('channel', toString(channel)),
                        ('priority', toString(priority))]) AS k
      FROM {source} WHERE {area} AND {span})
GROUP BY family, key ORDER BY family, key
"""

_CS_INCIDENTS = _compose(
    _CS_INCIDENTS_OF, sums=_period_sums("opened", "d"), day="toDate(hour, %(tz)s)",
    source="incidents_by_hour", area=AREA_SQL, span="hour >= %(lo)s AND hour < %(hi)s",
)  # fmt: skip

#: One record per incident: its latest revision (the join republishes on a late step), from the
#: read model of migration 0010; the opening day (UTC) bounds what is read.
_LATEST_RESPONSES = """
SELECT incident_id, priority, district, channel, category, opened_at,
       time_to_assignment_s AS assign_s, time_to_arrival_s AS arrive_s, time_to_closure_s AS close_s,
       arrived_within_target AS within, arrival_target_s AS target_s
FROM incident_response_latest FINAL
WHERE {area} AND opened_day >= toDate(%(lo)s) AND opened_day <= toDate(%(hi)s)
  AND opened_at >= %(lo)s AND opened_at < %(hi)s
"""

#: The zone of the per-day roll-up (migration 0010); another display zone reads the hourly table.
ROLLUP_TZ = "Asia/Almaty"

_CS_INCIDENTS_BY_DAY = _compose(
    _CS_INCIDENTS_OF,
    sums=_period_sums("opened", "d"),
    day="day",
    source="incidents_by_day",
    area=AREA_SQL,
    span="day >= %(span_lo)s AND day <= %(span_hi)s",
)

#: Arrivals and arrivals within target per priority and period, in one pass over the incidents.
_CS_ARRIVALS = _compose(
    """
SELECT toString(priority) AS key, {arrived}, {within}
FROM (SELECT priority, toDate(opened_at, %(tz)s) AS d, toUInt8(arrive_s IS NOT NULL) AS arrived,
             toUInt8(ifNull(within, false)) AS in_target
      FROM ({latest}))
GROUP BY key ORDER BY key
""",
    arrived=_period_sums("arrived", "d").replace(" AS ", " AS a_"),
    within=_period_sums("in_target", "d").replace(" AS ", " AS w_"),
    latest=_compose(_LATEST_RESPONSES, area=AREA_SQL),
)

_CS_INTEGRITY = _compose(
    """
SELECT kind, {sums}
FROM (SELECT kind, toDate(event_time, %(tz)s) AS d FROM integrity_reports
      WHERE event_time >= %(lo)s AND event_time < %(hi)s)
GROUP BY kind ORDER BY kind
""",
    sums=_period_sums("1", "d"),
)


def compstat(client: Client, scope: Scope, area: Area, day: dt.date, tz: str) -> list[CompstatRow]:
    """Every CompStat figure of ``area`` as of ``day``: violations by type, incidents by category,
    channel and priority, arrivals and arrivals within target by priority, and (for the integrity
    and ministry roles) integrity reports by kind — each with a total line (key ``""``)."""
    p = {**area_params(scope, area), **_period_params(day), "tz": tz}
    p["lo"], p["hi"] = bounds(tz, p["span_lo"], p["span_hi"])  # type: ignore[arg-type]
    rows: list[CompstatRow] = []

    def add(family: str, key: str, values: Sequence[object]) -> None:
        rows.append(CompstatRow(family, key, {pn: int(v) for pn, v in zip(PERIODS, values, strict=True)}))

    for key, *vals in client.query(_CS_VIOLATIONS, parameters=p).result_rows:
        add("violations", key, vals)
    incidents_sql = _CS_INCIDENTS_BY_DAY if tz == ROLLUP_TZ else _CS_INCIDENTS
    for family, key, *vals in client.query(incidents_sql, parameters=p).result_rows:
        add(family, key, vals)
    for key, *vals in client.query(_CS_ARRIVALS, parameters=p).result_rows:
        add("arrivals", key, vals[: len(PERIODS)])
        add("within_target", key, vals[len(PERIODS) :])
    if scope.integrity and scope.cities is None:
        # Integrity reports are by region, not city: shown whole, to the roles that see all cities.
        for key, *vals in client.query(_CS_INTEGRITY, parameters=p).result_rows:
            add("integrity", key, vals)
    totals: list[CompstatRow] = []
    for family in dict.fromkeys(r.family for r in rows):
        members = [r for r in rows if r.family == family]
        totals.append(CompstatRow(family, "", {pn: sum(r.n(pn) for r in members) for pn in PERIODS}))
    return totals + rows


_FIGURE_ROWS = """
    SELECT {cols}, violations AS n FROM violations_by_hour
    WHERE %(violations)s AND {area} AND {vf} AND hour >= %(lo)s AND hour < %(hi)s
    UNION ALL
    SELECT {cols}, opened FROM incidents_by_hour
    WHERE NOT %(violations)s AND {area} AND {inf} AND hour >= %(lo)s AND hour < %(hi)s
"""


def _figure_param(figure: str) -> dict[str, object]:
    if figure not in ("violations", "incidents"):
        raise ValueError(f"unknown figure {figure!r}; choose violations or incidents")
    return {"violations": figure == "violations"}


def _figure_rows(cols: str) -> str:
    """The hourly rows of one figure (violations or incidents opened), filtered, as ``(cols, n)``."""
    return _compose(_FIGURE_ROWS, cols=cols, area=AREA_SQL, vf=_VIOLATION_FILTER, inf=_INCIDENT_FILTER)


_DISTRICT_TOTALS = _compose(
    "SELECT district, sum(n) FROM ({rows}) GROUP BY district ORDER BY district", rows=_figure_rows("district")
)


def district_totals(
    client: Client, scope: Scope, city: str, start: dt.date, end: dt.date, figure: str, tz: str,
    filters: Filters = Filters(),
) -> dict[str, int]:  # fmt: skip
    """``figure`` (``violations`` or ``incidents``) per district of ``city`` the scope covers."""
    p = {**area_params(scope, Area(city)), **_filter_params(filters), **_figure_param(figure)}
    p["lo"], p["hi"] = bounds(tz, start, end)
    return {d: int(n) for d, n in client.query(_DISTRICT_TOTALS, parameters=p).result_rows}


_DAILY = _compose(
    "SELECT toDate(hour, %(tz)s) AS d, sum(n) FROM ({rows}) GROUP BY d ORDER BY d", rows=_figure_rows("hour")
)


def daily_series(
    client: Client, scope: Scope, area: Area, start: dt.date, end: dt.date, figure: str, tz: str,
    filters: Filters = Filters(),
) -> list[tuple[dt.date, int, int]]:  # fmt: skip
    """(day, count, count 364 days before) for every day of ``start``…``end``, zeros included."""
    p = {**area_params(scope, area), **_filter_params(filters), **_figure_param(figure), "tz": tz}
    ly = dt.timedelta(days=364)
    counts: dict[dt.date, int] = {}
    for lo_day, hi_day in ((start, end), (start - ly, end - ly)):
        p["lo"], p["hi"] = bounds(tz, lo_day, hi_day)
        counts.update({d: int(n) for d, n in client.query(_DAILY, parameters=p).result_rows})
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return [(d, counts.get(d, 0), counts.get(d - ly, 0)) for d in days]


_HEATMAP = _compose(
    "SELECT toDayOfWeek(hour, 0, %(tz)s) AS wd, toHour(hour, %(tz)s) AS h, sum(n) FROM ({rows})"
    " GROUP BY wd, h ORDER BY wd, h",
    rows=_figure_rows("hour"),
)


def heatmap(
    client: Client, scope: Scope, area: Area, start: dt.date, end: dt.date, figure: str, tz: str,
    filters: Filters = Filters(),
) -> dict[tuple[int, int], int]:  # fmt: skip
    """Counts by (ISO weekday 1 = Monday … 7, local hour 0…23); cells with none are absent."""
    p = {**area_params(scope, area), **_filter_params(filters), **_figure_param(figure), "tz": tz}
    p["lo"], p["hi"] = bounds(tz, start, end)
    return {(int(w), int(h)): int(n) for w, h, n in client.query(_HEATMAP, parameters=p).result_rows}


#: What response times may be grouped by: the page's choice → its SQL expression.
RESPONSE_GROUPS: dict[str, str] = {
    "priority": "toString(priority)",
    "district": "district",
    "channel": "toString(channel)",
    "category": "toString(category)",
    "hour": "toString(toHour(opened_at, %(tz)s))",
    "weekday": "toString(toDayOfWeek(opened_at, 0, %(tz)s))",
    "all": "''",
}

#: The same groups over the per-hour roll-up of openings (its ``hour`` is the opening's hour).
_CALL_GROUPS: dict[str, str] = {
    **RESPONSE_GROUPS,
    "hour": "toString(toHour(hour, %(tz)s))",
    "weekday": "toString(toDayOfWeek(hour, 0, %(tz)s))",
}

_Q = "quantileExactInclusive"
#: The three levels in one pass per column (``quantilesExactInclusive`` sorts once, not thrice).
_RESPONSES = """
SELECT {key} AS k, count() AS n,
       countIf(assign_s IS NOT NULL), quantilesExactInclusive(0.5, 0.9, 0.95)(assign_s),
       countIf(arrive_s IS NOT NULL), quantilesExactInclusive(0.5, 0.9, 0.95)(arrive_s),
       countIf(close_s IS NOT NULL), quantilesExactInclusive(0.5, 0.9, 0.95)(close_s),
       countIf(within), max(target_s)
FROM ({latest}) WHERE {inf}
GROUP BY k ORDER BY k
"""


@dataclass(frozen=True)
class ResponseRow:
    """Response times of one group: counts and the 50th/90th/95th percentiles in seconds."""

    key: str
    incidents: int
    assigned: int
    assign_s: tuple[float | None, float | None, float | None]
    arrived: int
    arrive_s: tuple[float | None, float | None, float | None]
    #: Closed or cancelled: an incident still open (a unit on scene, no closure yet, or an export
    #: without closure times) has its arrival but no closure.
    closed: int
    close_s: tuple[float | None, float | None, float | None]
    within_target: int
    target_s: int | None
    #: Calls opened in the range in this group, whatever happened to them since (the per-hour
    #: roll-up): ``incidents`` counts those with a response record (a unit assigned, on scene, or
    #: a closure); the page shows both, so a call nobody was sent to is still counted.
    calls: int = 0

    @property
    def within_share(self) -> float | None:
        """Arrivals within their priority's target, of the incidents with an arrival."""
        return self.within_target / self.arrived if self.arrived else None


def _q(v: object) -> float | None:
    if v is None:
        return None
    f = float(v)  # type: ignore[arg-type]
    return None if math.isnan(f) else f


def _levels(values: Sequence[object], n: int) -> tuple[float | None, float | None, float | None]:
    """p50, p90, p95 from ``quantilesExactInclusive``; none when nothing was measured."""
    if not n:
        return (None, None, None)
    a, b, c = (_q(v) for v in values)
    return (a, b, c)


def response_stats(
    client: Client, scope: Scope, area: Area, start: dt.date, end: dt.date, by: str, tz: str,
    filters: Filters = Filters(),
) -> list[ResponseRow]:  # fmt: skip
    """Response times of incidents opened ``start``…``end`` in ``area``, grouped ``by`` one of
    :data:`RESPONSE_GROUPS`. Districts outside a district-limited scope are not in the area."""
    if by not in RESPONSE_GROUPS:
        raise ValueError(f"cannot group response times by {by!r}; choose one of {sorted(RESPONSE_GROUPS)}")
    p = {**area_params(scope, area), **_filter_params(filters), "tz": tz}
    p["lo"], p["hi"] = bounds(tz, start, end)
    sql = _compose(
        _RESPONSES, key=RESPONSE_GROUPS[by], latest=_compose(_LATEST_RESPONSES, area=AREA_SQL),
        inf=_INCIDENT_FILTER,
    )  # fmt: skip
    calls_sql = _compose(
        "SELECT {key} AS k, sum(opened) FROM incidents_by_hour WHERE {area} AND {inf} "
        "AND hour >= %(lo)s AND hour < %(hi)s GROUP BY k",
        key=_CALL_GROUPS[by], area=AREA_SQL, inf=_INCIDENT_FILTER,
    )  # fmt: skip
    calls = {str(k): int(n) for k, n in client.query(calls_sql, parameters=p).result_rows}
    out: dict[str, ResponseRow] = {}
    rows = client.query(sql, parameters=p).result_rows
    for k, n, na, assign, nr, arrive, nc, close, within, target in rows:
        out[str(k)] = ResponseRow(
            str(k), int(n), int(na), _levels(assign, na), int(nr), _levels(arrive, nr), int(nc),
            _levels(close, nc), int(within), None if target is None else int(target), calls.get(str(k), 0),
        )  # fmt: skip
    none = (None, None, None)
    for k, n in calls.items():
        if k not in out:  # calls in this group, none of them assigned, reached or closed
            out[k] = ResponseRow(k, 0, 0, none, 0, none, 0, none, 0, None, n)
    return [out[k] for k in sorted(out)]


_WEEKLY = """
SELECT toMonday(opened_at, %(tz)s) AS w, priority, count(), {q}(0.9)(arrive_s), countIf(within),
       countIf(arrive_s IS NOT NULL), max(target_s)
FROM ({latest}) WHERE {inf}
GROUP BY w, priority ORDER BY w, priority
"""


def response_weekly(
    client: Client, scope: Scope, area: Area, start: dt.date, end: dt.date, tz: str,
    filters: Filters = Filters(),
) -> list[tuple[dt.date, int, int, float | None, float | None, int | None]]:  # fmt: skip
    """Per week (Monday) and priority: incidents, p90 time to arrival (s), share within target,
    the target (s)."""
    p = {**area_params(scope, area), **_filter_params(filters), "tz": tz}
    p["lo"], p["hi"] = bounds(tz, start, end)
    sql = _compose(_WEEKLY, q=_Q, latest=_compose(_LATEST_RESPONSES, area=AREA_SQL), inf=_INCIDENT_FILTER)
    out = []
    for w, prio, n, p90, within, arrived, target in client.query(sql, parameters=p).result_rows:
        share = within / arrived if arrived else None
        out.append((w, int(prio), int(n), _q(p90), share, None if target is None else int(target)))
    return out


@dataclass(frozen=True)
class IncidentRow:
    """One incident as the list shows it: no caller, no address, no officer."""

    incident_id: str
    category: str
    channel: str
    priority: int
    district: str
    opened_at: dt.datetime
    first_arrival: dt.datetime | None
    closed_at: dt.datetime | None
    status: str
    #: The source system's own call type and area, when an import kept them (docs/replay.md).
    source_code: str = ""
    source_area: str = ""


#: The list's sortable columns → SQL (a user's choice never reaches SQL as text).
INCIDENT_SORT: dict[str, str] = {
    "opened_at": "opened_at",
    "priority": "priority",
    "category": "category",
    "channel": "channel",
    "district": "district",
    "status": "status",
    "first_arrival": "first_arrival",
    "closed_at": "closed_at",
}

_INCIDENT_AGG = """
    SELECT incident_id, argMax(category, event_time) AS category, argMax(channel, event_time) AS channel,
           argMax(priority, event_time) AS priority, argMax(district, event_time) AS district,
           min(opened_at) AS opened_at,
           argMax(status, (event_time, indexOf(['opened', 'in_progress', 'closed', 'cancelled'], status)))
               AS state,
           maxIf(event_time, status IN ('closed', 'cancelled')) AS ended_at,
           argMax(source_code, event_time) AS source_code, argMax(source_area, event_time) AS source_area
    FROM (SELECT * FROM incident_events
          WHERE {area} AND event_time >= %(lo)s AND opened_at >= %(lo)s AND opened_at < %(hi)s)
    GROUP BY incident_id
    HAVING {inf}
"""

_INCIDENTS = """
WITH inc AS ({inc}),
arr AS (
    SELECT incident_id, min(event_time) AS first_arrival FROM dispatch_events
    WHERE {area} AND event_time >= %(lo)s AND status = 'on_scene'
      AND incident_id IN (SELECT incident_id FROM inc)
    GROUP BY incident_id
)
SELECT inc.incident_id, category, channel, priority, district, opened_at,
       if(arr.incident_id = '', NULL, arr.first_arrival) AS first_arrival,
       if(state IN ('closed', 'cancelled'), ended_at, NULL) AS closed_at, state AS status,
       source_code, source_area, count() OVER () AS total
FROM inc LEFT JOIN arr ON inc.incident_id = arr.incident_id
ORDER BY {order} {direction}, inc.incident_id
LIMIT %(limit)s OFFSET %(offset)s
"""

#: A page sorted by anything but the first arrival: the page first, then the arrivals of its
#: incidents only (joining every incident's dispatches was half the time on a month of a city).
_INCIDENT_PAGE = """
WITH inc AS ({inc})
SELECT incident_id, category, channel, priority, district, opened_at, NULL AS first_arrival,
       if(state IN ('closed', 'cancelled'), ended_at, NULL) AS closed_at, state AS status,
       source_code, source_area, count() OVER () AS total
FROM inc
ORDER BY {order} {direction}, incident_id
LIMIT %(limit)s OFFSET %(offset)s
"""

_PAGE_ARRIVALS = """
SELECT incident_id, min(event_time) FROM dispatch_events
WHERE {area} AND event_time >= %(lo)s AND status = 'on_scene' AND has(%(ids)s, incident_id)
GROUP BY incident_id
"""


def incident_list(
    client: Client, scope: Scope, area: Area, start: dt.date, end: dt.date, tz: str,
    filters: Filters = Filters(), sort: str = "opened_at", descending: bool = True,
    limit: int = 50, offset: int = 0,
) -> tuple[list[IncidentRow], int]:  # fmt: skip
    """One page of the incidents opened ``start``…``end`` in ``area``, and how many there are."""
    if sort not in INCIDENT_SORT:
        raise ValueError(f"cannot sort incidents by {sort!r}; choose one of {sorted(INCIDENT_SORT)}")
    p = {**area_params(scope, area), **_filter_params(filters), "limit": int(limit), "offset": int(offset)}
    p["lo"], p["hi"] = bounds(tz, start, end)
    direction = "DESC" if descending else "ASC"
    inc = _compose(_INCIDENT_AGG, area=AREA_SQL, inf=_INCIDENT_FILTER)
    if sort == "first_arrival":
        sql = _compose(_INCIDENTS, inc=inc, area=AREA_SQL, order="first_arrival", direction=direction)
        rows = client.query(sql, parameters=p, settings={"join_use_nulls": 0}).result_rows
    else:
        sql = _compose(_INCIDENT_PAGE, inc=inc, order=INCIDENT_SORT[sort], direction=direction)
        rows = client.query(sql, parameters=p).result_rows
        ids = [r[0] for r in rows]
        arrivals = dict(
            client.query(_compose(_PAGE_ARRIVALS, area=AREA_SQL), parameters={**p, "ids": ids}).result_rows
        ) if ids else {}  # fmt: skip
        rows = [(*r[:6], arrivals.get(r[0]), *r[7:]) for r in rows]
    total = int(rows[0][-1]) if rows else 0
    out = [
        IncidentRow(
            i,
            c,
            ch,
            int(pr),
            d,
            _utc(o),
            None if a is None else _utc(a),
            None if e is None else _utc(e),
            s,
            code,
            area_,
        )  # fmt: skip
        for i, c, ch, pr, d, o, a, e, s, code, area_, _ in rows
    ]
    if not rows and offset:
        total = incident_list(client, scope, area, start, end, tz, filters, sort, descending, 1, 0)[1]
    return out, total


_SIMULATED = """
SELECT min(first_day), max(last_day), count() FROM simulated_history
WHERE first_day <= %(hi)s AND last_day >= %(lo)s
"""


def simulated_days(client: Client, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date] | None:
    """The simulated history (``dozor backfill``) that overlaps ``start``…``end``, if any."""
    lo, hi, n = client.query(_SIMULATED, parameters={"lo": start, "hi": end}).result_rows[0]
    return (lo, hi) if n else None


@dataclass(frozen=True)
class IntegrityRow:
    """Integrity reports of one region, month, kind and service: aggregates only, never a report."""

    region: str
    month: dt.date
    kind: str
    service: str
    reports: int


_INTEGRITY = _compose(
    """
SELECT region, month, kind, service, count()
FROM (SELECT region, kind, service, {month} AS month FROM integrity_reports
      WHERE event_time >= %(start)s AND event_time < %(end)s)
WHERE month >= %(first)s AND month <= %(last)s
GROUP BY region, month, kind, service
ORDER BY month, region, kind, service
""",
    month=localtime.sql_local("toStartOfMonth", "event_time", "region"),
)


def integrity_by_month(client: Client, scope: Scope, start: dt.date, end: dt.date) -> list[IntegrityRow]:
    """Integrity reports per region and month (Kazakhstan's calendar) for months ``start`` to
    ``end`` inclusive; only for the integrity and ministry roles (:meth:`Scope.require_integrity`)."""
    scope.require_integrity()
    # Each region's months are its own (dozor.localtime); the scan covers a day either side of
    # every zone's month, and the months themselves are chosen in the region's zone.
    first = dt.date(start.year, start.month, 1)
    nxt = dt.date(end.year + end.month // 12, end.month % 12 + 1, 1)
    lo = dt.datetime.combine(first - dt.timedelta(days=1), dt.time(), dt.UTC)
    hi = dt.datetime.combine(nxt + dt.timedelta(days=1), dt.time(), dt.UTC)
    last = dt.date(end.year, end.month, 1)
    rows = client.query(
        _INTEGRITY, parameters={"start": lo, "end": hi, "first": first, "last": last}
    ).result_rows
    return [IntegrityRow(r, m, k, s, int(n)) for r, m, k, s, n in rows]


@dataclass(frozen=True)
class AuditRow:
    at: dt.datetime
    user: str
    role: str
    action: str
    page: str
    detail: str
    rows: int


_AUDIT = """
SELECT at, user, role, action, page, detail, rows FROM audit_log
WHERE at >= %(since)s AND (%(user)s = '' OR user = %(user)s) AND (%(action)s = '' OR action = %(action)s)
  AND (%(page)s = '' OR page = %(page)s)
ORDER BY at DESC LIMIT %(limit)s
"""

_AUDIT_CHOICES = """
SELECT arraySort(groupUniqArray(500)(user)), arraySort(groupUniqArray(100)(action)),
       arraySort(groupUniqArray(100)(page))
FROM audit_log WHERE at >= %(since)s
"""


def audit_log(
    client: Client, scope: Scope, since: dt.datetime, user: str = "", action: str = "", limit: int = 1000,
    page: str = "",
) -> list[AuditRow]:  # fmt: skip
    """The newest audit entries since ``since`` (of one user, action or page, if given); ministry only."""
    scope.require_audit()
    rows = client.query(
        _AUDIT, parameters={"since": since, "user": user, "action": action, "page": page, "limit": limit}
    ).result_rows
    return [AuditRow(_utc(t), *rest) for t, *rest in rows]


def audit_choices(client: Client, scope: Scope, since: dt.datetime) -> tuple[list[str], list[str], list[str]]:
    """The users, actions and pages of the audit log since ``since``: the Audit page's filters."""
    scope.require_audit()
    users, actions, pages = client.query(_AUDIT_CHOICES, parameters={"since": since}).result_rows[0]
    return list(users), list(actions), list(pages)


def _example() -> tuple[Scope, Area, dt.date, dt.date, str]:
    """The benchmark's view: the ministry looking at Astana's last 28 days."""
    scope = Scope(user="benchmark", role="ministry", cities=None, integrity=True, audit=True)
    end = dt.datetime.now(ZoneInfo("Asia/Almaty")).date()
    return scope, Area("astana"), end - dt.timedelta(days=27), end, "Asia/Almaty"


def _bench(fn: Callable[..., object], *extra: object, days: int = 28) -> Callable[[Client], object]:
    def run(c: Client) -> object:
        scope, area, _, end, tz = _example()
        return fn(c, scope, area, end - dt.timedelta(days=days - 1), end, *extra, tz)

    return run


def _bench_compstat(c: Client) -> object:
    scope, area, _, end, tz = _example()
    return compstat(c, scope, area, end, tz)


#: The managers' queries with example arguments (Astana), for the latency benchmark.
MANAGER_QUERIES: dict[str, Callable[[Client], object]] = {
    "compstat": _bench_compstat,
    "daily_series_365d": _bench(daily_series, "violations", days=365),
    "district_totals_28d": lambda c: district_totals(
        c, _example()[0], "astana", *_example()[2:4], "violations", "Asia/Almaty"
    ),  # fmt: skip
    "heatmap_28d": _bench(heatmap, "violations"),
    "response_stats_by_priority_28d": _bench(response_stats, "priority"),
    "response_stats_by_hour_365d": _bench(response_stats, "hour", days=365),
    "response_weekly_365d": _bench(response_weekly, days=365),
    "incident_list_28d": _bench(incident_list),
}
