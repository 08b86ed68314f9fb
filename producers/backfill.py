"""Simulated history generated inside ClickHouse, so that every managers' page has months to show.

``dozor backfill --days N`` writes N days of violations, incidents, dispatches, response times,
integrity reports and 102 calls ending at yesterday's local midnight, with ``INSERT … SELECT`` over
``numbers()``: the rows go through the same tables, and so through the same materialized views
(per-minute and hourly roll-ups, incident and unit state), as the worker's. Nothing passes through
Kafka: a year at full speed through the worker would take hours on two cores, and the point is
history, not ingest.

**Marked as simulated**: every generated row has ``src_partition`` = :data:`SIMULATED_PARTITION`
(no topic has that many partitions, so ``dozor verify`` never counts one) and incident ids start
with ``SIM-``; each run is recorded in ``simulated_history``, and the pages say "simulated" for any
range that overlaps it.

**Volume**, per city and day, from the one volume model the live feed uses too
(:mod:`dozor.producers.volume`: proportional to population, weekends apart), shaped like the live
simulator (hour-of-day profile, the same type, channel, category and priority weights): Astana
about 770 violations and 430 incidents a day; the whole country about 5,200 and 2,900; 400 days ≈
2.1 million violations, 1.2 million incidents, 3.4 million dispatch events.

Random values come from ``cityHash64(seed, n, k)``, so a seed gives the same history every time,
and the four tables of one incident agree with each other without a join.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from dozor import localtime
from dozor.cities import CITIES, REGIONS
from dozor.enrich import FINE_MCI, SPEEDING_MCI
from dozor.producers.simulator import (
    CATEGORIES,
    CHANNEL_WEIGHTS,
    HOURLY_PROFILE,
    RESPONSE_MEDIAN_MIN,
    VIOLATION_WEIGHTS,
)
from dozor.producers.volume import (
    CALLS_PER_1000,
    INCIDENTS_PER_1000,
    INTEGRITY_PER_DAY,
    VIOLATIONS_PER_1000,
    WEEKEND_INCIDENTS,
    WEEKEND_VIOLATIONS,
)
from dozor.schemas import IntegrityKind, PoliceService
from dozor.settings import Settings

__all__ = [
    "SIMULATED_PARTITION",
    "VIOLATIONS_PER_1000",
    "INCIDENTS_PER_1000",
    "Backfill",
    "history_days",
    "backfill",
    "unfinished",
]

#: The ``src_partition`` of every generated row: no Kafka topic of Dozor's has it.
SIMULATED_PARTITION = 65535
#: Days per INSERT: the raw tables are partitioned by day and ClickHouse refuses an insert into
#: more than 100 partitions (the sink splits the same way, streams/sink.py).
_CHUNK_DAYS = 45


def _cumulative(weights: list[float]) -> list[float]:
    total = sum(weights)
    cum = [w / total for w in itertools.accumulate(weights)]
    cum[-1] = 1.0
    return cum


def _u(k: int) -> str:
    """A uniform number in (0, 1] for row ``number`` and stream ``k``, the same for the same seed."""
    return f"((cityHash64(%(seed)s, number, {k}) %% 4294967295) + 1) / 4294967296.0"


def _normal(k1: int, k2: int) -> str:
    return f"(sqrt(-2 * log({_u(k1)})) * cos(2 * pi() * {_u(k2)}))"


@dataclass(frozen=True)
class Backfill:
    """What one run generated."""

    first_day: dt.date
    last_day: dt.date
    violations: int
    incidents: int


def _parameters(settings: Settings, seed: int, first: dt.date, days: int) -> dict[str, object]:
    pops = [c.population for c in CITIES]
    cats = list(CATEGORIES)
    return {
        "seed": seed,
        "first_day": first,
        "days": days,
        # Simulated history's hours follow one profile, read in the default zone (dozor.localtime);
        # every Kazakh city keeps UTC+5 since March 2024, where 760 days of history begin.
        "tz": localtime.DEFAULT_ZONE,
        "cities": [c.id for c in CITIES],
        "city_cum": _cumulative([float(p) for p in pops]),
        "districts": [[d.id for d in c.districts] for c in CITIES],
        "d_lat": [[d.lat for d in c.districts] for c in CITIES],
        "d_lon": [[d.lon for d in c.districts] for c in CITIES],
        "hour_cum": _cumulative(list(HOURLY_PROFILE)),
        "vtypes": [str(t) for t in VIOLATION_WEIGHTS],
        "vtype_cum": _cumulative(list(VIOLATION_WEIGHTS.values())),
        "fines": [FINE_MCI.get(t, 0) for t in VIOLATION_WEIGHTS],
        "mci_years": sorted(settings.mci_kzt),
        "mci_values": [settings.mci_kzt[y] for y in sorted(settings.mci_kzt)],
        "channels": [str(c) for c in CHANNEL_WEIGHTS],
        "channel_cum": _cumulative(list(CHANNEL_WEIGHTS.values())),
        "categories": [str(c) for c in cats],
        "category_cum": _cumulative([CATEGORIES[c][0] for c in cats]),
        "priority_cum": [_cumulative([max(w, 1e-9) for w in CATEGORIES[c][1]]) for c in cats],
        "arrive_median_s": [m * 60 for m in RESPONSE_MEDIAN_MIN],
        "targets_s": [settings.arrival_target_minutes.get(p, 60) * 60 for p in (1, 2, 3, 4)],
        "weekend_v": WEEKEND_VIOLATIONS,
        "weekend_i": WEEKEND_INCIDENTS,
        "regions": sorted(REGIONS),
        "kinds": [str(k) for k in IntegrityKind],
        "services": [str(s) for s in PoliceService],
    }


#: The time of one generated event: a uniform day, an hour drawn from the daily profile, a uniform
#: second within it, in local time; weekends thinned (violations) or not (incidents, drawn at the
#: weekend rate and thinned on weekdays).
def _when(k_day: int, k_hour: int, k_sec: int) -> str:
    return (
        f"toDate(%(first_day)s) + toIntervalDay(toUInt32(floor({_u(k_day)} * %(days)s))) AS day, "
        f"arrayFirstIndex(x -> x >= {_u(k_hour)}, %(hour_cum)s) - 1 AS hr, "
        f"addSeconds(toDateTime(day, %(tz)s), hr * 3600 + toUInt32(floor({_u(k_sec)} * 3600))) AS t"
    )


_PLACE = (
    f"arrayFirstIndex(x -> x >= {_u(1)}, %(city_cum)s) AS ci, %(cities)s[ci] AS city, "
    f"1 + toUInt32(floor({_u(2)} * length(%(districts)s[ci]))) AS di, %(districts)s[ci][di] AS district, "
    f"%(d_lat)s[ci][di] + ({_u(3)} - 0.5) * 0.03 AS lat, %(d_lon)s[ci][di] + ({_u(4)} - 0.5) * 0.05 AS lon"
)


def _speeding_mci() -> str:
    branches = ", ".join(f"excess > {lo}, {mci}" for lo, mci in reversed(SPEEDING_MCI))
    return f"multiIf({branches}, 0)"


#: The history's window: what happened after ``since`` (a gap after live data) and by ``through``
#: (the moment the history is generated up to), in POSIX seconds.
_WINDOW = "toUnixTimestamp(t) > %(since_s)s AND toUnixTimestamp(t) <= %(through_s)s"

_VIOLATIONS = f"""
INSERT INTO violations (event_id, event_time, city, district, camera_id, violation_type, lat, lon,
    speed_kmh, speed_limit_kmh, plate_hash, plate_masked, fine_mci, fine_kzt, src_partition, src_offset)
SELECT generateUUIDv4(number), t, city, district,
       concat('SIM-', upper(city), '-', toString(1 + number %% 60)), vtype, lat, lon, speed, limit_kmh,
       hex(SHA256(toString(cityHash64(%(seed)s, number, 99)))),
       concat(toString(number %% 10), '****', char(65 + number %% 26), char(65 + intDiv(number, 26) %% 26)),
       fine, fine * %(mci_values)s[greatest(1, arrayLastIndex(y -> y <= toYear(t), %(mci_years)s))],
       {SIMULATED_PARTITION}, number
FROM (
    SELECT number, {_PLACE}, {_when(5, 6, 7)},
           arrayFirstIndex(x -> x >= {_u(8)}, %(vtype_cum)s) AS vi, %(vtypes)s[vi] AS vtype,
           if(vtype = 'speeding', [40, 60, 60, 80, 90, 110][1 + number %% 6], NULL) AS limit_kmh,
           if(vtype = 'speeding', toUInt16(limit_kmh + 11 + floor({_u(9)} * 45)), NULL) AS speed,
           toInt64(speed) - toInt64(limit_kmh) AS excess,
           if(vtype = 'speeding', {_speeding_mci()}, %(fines)s[vi]) AS fine
    FROM numbers(%(offset)s, %(count)s)
)
WHERE NOT (toDayOfWeek(day) >= 6 AND {_u(10)} > %(weekend_v)s) AND {_WINDOW}
"""

#: One incident per row: everything its four tables need, from the same hashes every time.
_INCIDENT = f"""
SELECT number, {_PLACE}, {_when(5, 6, 7)},
       arrayFirstIndex(x -> x >= {_u(8)}, %(category_cum)s) AS cai, %(categories)s[cai] AS category,
       arrayFirstIndex(x -> x >= {_u(9)}, %(priority_cum)s[cai]) AS priority,
       %(channels)s[arrayFirstIndex(x -> x >= {_u(10)}, %(channel_cum)s)] AS channel,
       concat('SIM-', toString(%(seed)s), '-', toString(number)) AS incident_id,
       -- 3 %% never get a unit (a consultation by phone, a report taken at the desk).
       {_u(11)} > 0.97 AS unattended,
       round(20 + 40 * exp(0.6 * {_normal(12, 13)}), 3) AS assign_s,
       round(greatest(assign_s + 30, %(arrive_median_s)s[priority] * exp(0.45 * {_normal(14, 15)})), 3)
           AS arrive_s,
       round(arrive_s + 2700 * exp(0.5 * {_normal(16, 17)}), 3) AS close_s,
       %(targets_s)s[priority] AS target_s,
       toDateTime64(t, 3) AS opened,
       opened + toIntervalMillisecond(toInt64(close_s * 1000)) AS closed
FROM numbers(%(offset)s, %(count)s)
"""

#: Weekdays thinned; only incidents whose whole life is over by ``through``: one still running at
#: that moment would stay open on the wall for ever (the live join never sees its later steps).
_INCIDENT_WHERE = f"""
WHERE NOT (toDayOfWeek(day) < 6 AND {_u(18)} > 1 / %(weekend_i)s) AND {_WINDOW}
  AND toUnixTimestamp(closed) <= %(through_s)s
"""

_INCIDENT_EVENTS = f"""
INSERT INTO incident_events (event_id, event_time, incident_id, status, channel, category, priority,
    city, district, lat, lon, opened_at, src_partition, src_offset)
SELECT generateUUIDv4(number * 10 + k), if(k = 0, opened, closed), incident_id,
       if(k = 0, 'opened', 'closed'), channel, category, priority, city, district, lat, lon, opened,
       {SIMULATED_PARTITION}, number * 2 + k
FROM ({_INCIDENT} {_INCIDENT_WHERE}) ARRAY JOIN [0, 1] AS k
WHERE k = 0 OR closed <= now64(3)
"""

_DISPATCH_EVENTS = f"""
INSERT INTO dispatch_events (event_id, event_time, dispatch_id, incident_id, unit_id, crew_type, status,
    city, district, src_partition, src_offset)
SELECT generateUUIDv4(number * 10 + k), at, concat(incident_id, '-1'), incident_id,
       concat(upper(substring(city, 1, 3)), '-S', toString(100 + number %% 40)),
       ['car', 'car', 'car', 'foot', 'motorcycle'][1 + number %% 5], ['assigned', 'on_scene', 'cleared'][k],
       city, district, {SIMULATED_PARTITION}, number * 3 + k
FROM ({_INCIDENT} {_INCIDENT_WHERE} AND NOT unattended) ARRAY JOIN [1, 2, 3] AS k
WHERE (opened + toIntervalMillisecond(toInt64([assign_s, arrive_s, close_s][k] * 1000)) AS at) <= now64(3)
"""

_RESPONSES = f"""
INSERT INTO incident_responses (event_id, event_time, incident_id, revision, status, city, district,
    priority, category, channel, opened_at, first_assigned_at, first_on_scene_at, closed_at,
    time_to_assignment_s, time_to_arrival_s, time_to_closure_s, arrival_target_s, arrived_within_target,
    src_partition, src_offset)
SELECT generateUUIDv4(number * 10 + 9), closed, incident_id, 1, 'closed', city, district, priority, category,
       channel, opened,
       if(unattended, NULL, opened + toIntervalMillisecond(toInt64(assign_s * 1000))),
       if(unattended, NULL, opened + toIntervalMillisecond(toInt64(arrive_s * 1000))), closed,
       if(unattended, NULL, assign_s), if(unattended, NULL, arrive_s), close_s, target_s,
       if(unattended, NULL, arrive_s <= target_s), {SIMULATED_PARTITION}, number
FROM ({_INCIDENT} {_INCIDENT_WHERE}) WHERE closed <= now64(3)
"""


#: Integrity reports: about one a day for the country, any region, as the live simulator sends them
#: (30 % bribe attempts reported, 70 % integrity checks; any service).
_INTEGRITY = f"""
INSERT INTO integrity_reports (event_id, event_time, region, kind, service, src_partition, src_offset)
SELECT generateUUIDv4(number * 10 + 7), t,
       %(regions)s[1 + toUInt32(floor({_u(30)} * length(%(regions)s)))],
       %(kinds)s[if({_u(31)} < 0.3, 1, 2)],
       %(services)s[1 + toUInt32(floor({_u(32)} * length(%(services)s)))],
       {SIMULATED_PARTITION}, number
FROM (SELECT number, {_when(5, 6, 7)} FROM numbers(%(offset)s, %(count)s))
WHERE {_WINDOW}
"""


#: 102 calls (issue #27): one call per row, offered at ``t``; answered after a lognormal wait
#: (median 4 s, sigma 0.8, as the live simulator at an average hour) unless the caller's patience (3 s
#: plus an exponential tail of mean 60 s) runs out first; ended two minutes after the answer. The
#: calls' own volume (CALLS_PER_1000), weekdays thinned like incidents; not linked to the simulated
#: incidents (the live feed links them).
_CALL = f"""
SELECT number, {_PLACE}, {_when(5, 6, 7)},
       ['line_102', 'app_102', 'sos_button', 'transfer_112'][
           arrayFirstIndex(x -> x >= {_u(40)}, [0.78, 0.94, 0.96, 1.0])] AS channel,
       concat('SIM-CALL-', toString(%(seed)s), '-', toString(number)) AS call_id,
       round(4 * exp(0.8 * {_normal(41, 42)}), 3) AS wait_s,
       round(3 - 60 * log({_u(43)}), 3) AS patience,
       patience < wait_s AS abandoned,
       toDateTime64(t, 3) AS offered,
       concat('P-', toString(1 + number %% 20)) AS position
FROM numbers(%(offset)s, %(count)s)
"""

_CALL_EVENTS = f"""
INSERT INTO call_events (event_id, event_time, call_id, status, channel, city, district, offered_at,
    position_id, incident_id, src_partition, src_offset)
SELECT generateUUIDv4(number * 10 + 5 + k), at, call_id, ['offered', if(abandoned, 'abandoned', 'answered'),
       'ended'][k + 1], channel, city, '', offered, if(k = 0 OR abandoned, NULL, position), NULL,
       {SIMULATED_PARTITION}, number * 3 + k
FROM ({_CALL} WHERE NOT (toDayOfWeek(day) < 6 AND {_u(18)} > 1 / %(weekend_i)s) AND {_WINDOW}
      AND toUnixTimestamp(t) + wait_s + 120 <= %(through_s)s) ARRAY JOIN [0, 1, 2] AS k
WHERE (k < 2 OR NOT abandoned)
  AND (offered + toIntervalMillisecond(
           toInt64([0, if(abandoned, patience, wait_s), wait_s + 120][k + 1] * 1000)) AS at) <= now64(3)
"""


def history_days(settings: Settings, days: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The first and last local day of ``days`` of history ending yesterday (today is live)."""
    today = today or dt.datetime.now(localtime.zone(localtime.DEFAULT_ZONE)).date()
    return today - dt.timedelta(days=days), today - dt.timedelta(days=1)


def unfinished(client: Client) -> tuple[dt.date, dt.date, int] | None:
    """A generation that was started and not finished (first day, last day, seed), if any."""
    rows = client.query(
        "SELECT first_day, last_day, seed FROM simulated_history GROUP BY first_day, last_day, seed "
        "HAVING max(complete) = 0 ORDER BY min(generated_at) LIMIT 1"
    ).result_rows
    return (rows[0][0], rows[0][1], int(rows[0][2])) if rows else None


def backfill(
    client: Client, settings: Settings, days: int, seed: int = 1, today: dt.date | None = None,
    progress: Callable[[int], None] | None = None, scale: float = 1.0,
    through: dt.datetime | None = None, since: dt.datetime | None = None,
) -> Backfill:  # fmt: skip
    """Generate ``days`` of history ending yesterday; ``progress`` is called with days done.

    ``through``: the history runs up to this moment instead (its day is the last of the ``days``):
    ``dozor up`` generates up to its start, so the live feed takes over without a hole and "today
    against yesterday" compares like with like from the first minute. Incidents and calls still
    running at that moment are left out (their later steps would never come). ``since``: nothing at
    or before this moment (a gap filled after the live data of an earlier run).

    Each chunk of days draws its own rows (its own range of ``number``), so the seed alone decides
    the history and chunking changes nothing but the size of each insert. ``scale`` multiplies the
    volume (the benchmarks' national history is many times a plausible one).

    Interruptible: the range is recorded as simulated (``complete`` 0) before its first row, and
    every insert carries a deduplication token of the seed, range, chunk and table, so running the
    same generation again (``today`` set to the day after its last day) writes only what is missing
    — the materialized views deduplicate with it.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if scale <= 0:
        raise ValueError("scale must be positive")
    if through is not None and today is None:  # the range ends on the day of ``through``
        today = dt.datetime.fromtimestamp(through.timestamp(), localtime.zone(localtime.DEFAULT_ZONE)).date()
        today += dt.timedelta(days=1)
    first, last = history_days(settings, days, today)
    base = _parameters(settings, seed, first, days)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), localtime.zone(localtime.DEFAULT_ZONE))
    base["through_s"] = int((through or end).timestamp())
    base["since_s"] = int(since.timestamp()) if since is not None else 0
    thousands = scale * sum(c.population for c in CITIES) / 1000
    columns = ["first_day", "last_day", "violations", "incidents", "seed", "complete"]
    client.insert("simulated_history", [[first, last, 0, 0, seed, 0]], column_names=columns)
    statements = {"violations": _VIOLATIONS, "incident_events": _INCIDENT_EVENTS,
                  "dispatch_events": _DISPATCH_EVENTS, "incident_responses": _RESPONSES,
                  "integrity_reports": _INTEGRITY, "call_events": _CALL_EVENTS}  # fmt: skip
    for lo in range(0, days, _CHUNK_DAYS):
        n = min(_CHUNK_DAYS, days - lo)
        chunk = {**base, "first_day": first + dt.timedelta(days=lo), "days": n, "offset": lo * 100_000_000}
        # Rows before thinning: violations at the weekday rate (weekends thinned to 85 %),
        # incidents at the weekend rate (weekdays thinned to 1/1.15).
        v = math.ceil(thousands * VIOLATIONS_PER_1000 * n)
        i = math.ceil(thousands * INCIDENTS_PER_1000 * WEEKEND_INCIDENTS * n)
        counts = {"violations": v, "integrity_reports": math.ceil(scale * INTEGRITY_PER_DAY * n),
                  "call_events": math.ceil(thousands * CALLS_PER_1000 * WEEKEND_INCIDENTS * n)}  # fmt: skip
        for table, sql in statements.items():
            token = f"backfill:{seed}:{scale:g}:{first}:{last}:{lo}:{table}"
            client.command(
                sql, parameters={**chunk, "count": counts.get(table, i)},
                settings={"insert_deduplication_token": token,
                          "deduplicate_blocks_in_dependent_materialized_views": 1},
            )  # fmt: skip
        if progress:
            progress(n)
    v_count, i_count = _counts(client, first, last)
    result = Backfill(first, last, v_count, i_count)
    client.insert("simulated_history", [[first, last, v_count, i_count, seed, 1]], column_names=columns)
    return result


_COUNTS = f"""
SELECT (SELECT count() FROM violations WHERE src_partition = {SIMULATED_PARTITION}
          AND toDate(event_time) >= %(lo)s AND toDate(event_time) <= %(hi)s),
       (SELECT count() FROM incident_events WHERE src_partition = {SIMULATED_PARTITION} AND status = 'opened'
          AND toDate(event_time) >= %(lo)s AND toDate(event_time) <= %(hi)s)
"""


def _counts(client: Client, first: dt.date, last: dt.date) -> tuple[int, int]:
    """Simulated rows of the range (a UTC day either side holds every local day of it)."""
    p = {"lo": first - dt.timedelta(days=1), "hi": last + dt.timedelta(days=1)}
    v, i = client.query(_COUNTS, parameters=p).result_rows[0]
    return int(v), int(i)
