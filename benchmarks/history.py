"""Fill a ClickHouse database with N days of simulated history, generated inside ClickHouse.

The wall-screen latency benchmark needs tens of millions of rows; sending them through Kafka and
the worker would take an hour and measure the pipeline, not the queries. Here ClickHouse makes the
rows itself (``INSERT … SELECT … FROM numbers(n)``) in chunks, so the materialized views fill the
per-minute and state tables exactly as the worker's inserts would. Cities are weighted by
population and districts, types and positions come from the same catalogue as the simulator.

    python -m benchmarks.history --days 30 --violations 50000000   # into DOZOR_CLICKHOUSE_DATABASE
"""

from __future__ import annotations

import datetime as dt

import click
from tqdm import tqdm

from dozor.cities import CITIES
from dozor.clickhouse import connect
from dozor.enrich import FINE_MCI
from dozor.infra.migrate import migrate
from dozor.schemas import IncidentCategory, IncidentChannel
from dozor.settings import Settings

CHUNK = 5_000_000


def _catalogue() -> str:
    """WITH-clause arrays: cities by cumulative population weight, their districts and centres."""
    total = sum(c.population for c in CITIES)
    cum, acc = [], 0
    for c in CITIES:
        acc += c.population
        cum.append(acc / total)
    cities = ",".join(f"'{c.id}'" for c in CITIES)
    districts = ",".join("[" + ",".join(f"'{d.id}'" for d in c.districts) + "]" for c in CITIES)
    lats = ",".join(str(c.lat) for c in CITIES)
    lons = ",".join(str(c.lon) for c in CITIES)
    types = ",".join(f"'{t}'" for t in FINE_MCI)
    fines = ",".join(str(v) for v in FINE_MCI.values())
    return (
        f"[{','.join(map(str, cum))}] AS cum, [{cities}] AS cities, [{districts}] AS dists, "
        f"[{lats}] AS lats, [{lons}] AS lons, [{types}] AS types, [{fines}] AS fines"
    )


def _violations(start: dt.datetime, span_ms: int, offset: int, n: int, total: int) -> str:
    return f"""
INSERT INTO violations (event_id, event_time, city, district, camera_id, violation_type, lat, lon,
    speed_kmh, speed_limit_kmh, plate_hash, plate_masked, fine_mci, fine_kzt, src_partition, src_offset)
WITH {_catalogue()}
SELECT generateUUIDv4(number),
    toDateTime64('{start:%Y-%m-%d %H:%M:%S}', 3, 'UTC') + toIntervalMillisecond(intDiv(number * {span_ms}, {total})),
    cities[ci], if(length(dists[ci]) = 0, '', dists[ci][1 + number % greatest(length(dists[ci]), 1)]),
    concat(cities[ci], '-cam-', toString(number % 97)), types[ti],
    lats[ci] + ((number % 1000) / 1000 - 0.5) * 0.1, lons[ci] + ((intDiv(number, 1000) % 1000) / 1000 - 0.5) * 0.15,
    NULL, NULL, lower(hex(SHA256(toString(number % 100000)))), 'A***BC', fines[ti], fines[ti] * 4325, 0, number
FROM (SELECT number, arrayFirstIndex(x -> x >= ((number * 7919) % 10007) / 10007, cum) AS ci,
             1 + (number * 31) % length(types) AS ti
      FROM numbers({offset}, {n}) SETTINGS max_block_size = 65536)
"""  # noqa: S608 - generated from the catalogue and integers, no user input


def _array(values: object) -> str:
    return "[" + ",".join(f"'{v}'" for v in values) + "]"  # type: ignore[attr-defined]


def _incidents(start: dt.datetime, span_ms: int, n: int) -> list[str]:
    """Opened and (most) closed events, dispatch steps and response-time rows for ``n`` incidents."""
    base = f"""
WITH {_catalogue()}
SELECT number AS i, concat('INC-', toString(number)) AS iid, cities[ci] AS city,
    if(length(dists[ci]) = 0, '', dists[ci][1 + number % greatest(length(dists[ci]), 1)]) AS district,
    toDateTime64('{start:%Y-%m-%d %H:%M:%S}', 3, 'UTC') + toIntervalMillisecond(intDiv(number * {span_ms}, {n})) AS opened,
    opened + toIntervalSecond(120 + number % 900) AS arrived,
    opened + toIntervalSecond(1800 + number % 3600) AS closed,
    1 + number % 4 AS priority, {_array(IncidentCategory)}[1 + number % {len(IncidentCategory)}] AS category,
    {_array(IncidentChannel)}[1 + number % {len(IncidentChannel)}] AS channel,
    lats[ci] AS lat, lons[ci] AS lon, concat(city, '-unit-', toString(number % 60)) AS unit
FROM (SELECT number, arrayFirstIndex(x -> x >= ((number * 7919) % 10007) / 10007, cum) AS ci FROM numbers({n}))
"""  # noqa: S608
    return [  # generated from the catalogue and integers, no user input
        f"INSERT INTO incident_events (event_id, event_time, incident_id, status, channel, category, priority,"  # noqa: S608
        f" city, district, lat, lon, opened_at, src_partition, src_offset)"
        f" SELECT generateUUIDv4(i), opened, iid, 'opened', channel, category, priority, city, district, lat, lon,"
        f" opened, 0, i FROM ({base})",
        f"INSERT INTO incident_events (event_id, event_time, incident_id, status, channel, category, priority,"  # noqa: S608
        f" city, district, lat, lon, opened_at, src_partition, src_offset)"
        f" SELECT generateUUIDv4(i + 1), closed, iid, 'closed', channel, category, priority, city, district, lat,"
        f" lon, opened, 0, i FROM ({base}) WHERE closed <= now64(3)",
        f"INSERT INTO dispatch_events (event_id, event_time, dispatch_id, incident_id, unit_id, crew_type, status,"  # noqa: S608
        f" city, district, src_partition, src_offset)"
        f" SELECT generateUUIDv4(i + s), t, concat(iid, '-d'), iid, unit, 'patrol', st, city, district, 0, i"
        f" FROM ({base}) ARRAY JOIN ['assigned', 'on_scene', 'cleared'] AS st, [1, 2, 3] AS s,"
        f" [opened + toIntervalSecond(30), arrived, closed] AS t WHERE t <= now64(3)",
        f"INSERT INTO incident_responses (event_id, event_time, incident_id, revision, status, city, district,"  # noqa: S608
        f" priority, category, channel, opened_at, first_assigned_at, first_on_scene_at, closed_at,"
        f" time_to_assignment_s, time_to_arrival_s, time_to_closure_s, arrival_target_s, arrived_within_target,"
        f" src_partition, src_offset)"
        f" SELECT generateUUIDv4(i + 9), closed, iid, 1, 'closed', city, district, priority, category, channel,"
        f" opened, opened + toIntervalSecond(30), arrived, closed, 30, dateDiff('second', opened, arrived),"
        f" dateDiff('second', opened, closed), [600, 1200, 2400, 3600][priority],"
        f" dateDiff('second', opened, arrived) <= [600, 1200, 2400, 3600][priority], 0, i"
        f" FROM ({base}) WHERE closed <= now64(3)",
    ]


@click.command()
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 400))
@click.option("--violations", default=50_000_000, show_default=True, type=click.IntRange(1))
@click.option("--incidents-per-day", default=10_000, show_default=True, type=click.IntRange(0))
def main(days: int, violations: int, incidents_per_day: int) -> None:
    """Fill the configured database with DAYS of history ending now."""
    settings = Settings()
    migrate(settings)
    client = connect(settings, send_receive_timeout=3600)
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = end - dt.timedelta(days=days)
    span_ms = days * 86_400_000
    with tqdm(total=violations, unit="rows", desc="violations", unit_scale=True) as bar:
        for offset in range(0, violations, CHUNK):
            n = min(CHUNK, violations - offset)
            client.command(_violations(start, span_ms, offset, n, violations))
            bar.update(n)
    for sql in tqdm(_incidents(start, span_ms, days * incidents_per_day), desc="incidents"):
        client.command(sql)
    client.command("OPTIMIZE TABLE violations_by_minute FINAL")
    counts = {
        t: client.command(f"SELECT count() FROM {t}")  # noqa: S608
        for t in (
            "violations",
            "violations_by_minute",
            "incident_events",
            "dispatch_events",
            "incident_responses",
        )
    }
    click.echo(f"history {start:%Y-%m-%d %H:%M} … {end:%Y-%m-%d %H:%M} UTC: {counts}")


if __name__ == "__main__":
    main()
