"""City figures per minute and spike alerts, published for downstream consumers.

The per-minute counts already exist, exact, in ClickHouse: the ingest worker stores every event
once and materialized views sum them per city, district and minute (migration 0003). Publishing
them is therefore a question of *when a minute is final*, not of counting again in the stream:

- **Watermark**: the newest event time stored (violations and incidents). A minute is final, and
  published, once the watermark passes its end by the allowed lateness
  (``DOZOR_FIGURES_ALLOWED_LATENESS_S``, 2 min by default: the simulator's and the cameras' usual
  delay). If no newer event arrives for ``DOZOR_FIGURES_IDLE_FLUSH_SECONDS`` of wall time, every
  minute read so far is final (a stopped feed must not hold the last minutes back forever).
- **Late events** are never dropped: they are stored raw and summed by the views like any other.
  When a published minute's figures change, it is published again with ``revision`` + 1, and the
  events that arrived after revision 1 are counted in ``late_events`` and in the
  ``dozor_late_events_total`` metric. Minutes older than the horizon
  (``DOZOR_FIGURES_HORIZON_HOURS``) are no longer revised; their late events are still stored.
- **Response times**: median and 90th percentile of time to arrival of the incidents closed in the
  minute (the latest revision of each, from ``incident_responses``), computed by ClickHouse's
  ``quantileExactInclusive``: linear interpolation between the closest ranks (numpy's ``linear``).
- **Spikes** are judged on the same per-minute counts, each tick, by a
  :class:`~dozor.streams.spikes.SpikeJudge` (``dozor.streams.spikes`` says how).

One publisher runs per deployment: a faust timer on the join workers' leader. It only publishes:
the ingest worker stores the ``city_figures`` topic in its table like every other derived family
(``docs/guarantees.md``, "Derived outputs"), and the publisher reads that table back when it
starts, as its memory of what it said. Minutes on the topic but not yet stored when it restarts
are published again: the same revision and ``event_id`` when the content is the same, which the
ingest stores once; a consumer keeping the highest revision per city and minute is right either
way. Alerts carry an ``event_id`` fixed by city, kind and minute, so a re-sent alert is a repeat.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import faust
import orjson
from clickhouse_connect.driver.client import Client

from dozor.clickhouse import connect
from dozor.schemas import Alert, AreaFigures, CityFigures
from dozor.settings import Settings
from dozor.streams.deadletter import Rejected, deadletter_record
from dozor.streams.metrics import FIGURES_FAILURES, JOIN_OUTPUTS, LATE_EVENTS
from dozor.streams.spikes import KINDS, MINUTE, NAMESPACE, SpikeJudge

__all__ = ["FiguresPublisher", "Output", "install_figures"]

log = logging.getLogger("dozor.figures")

#: Events stamped further ahead of the wall clock (a camera with a wrong clock) do not move time.
MAX_FUTURE = dt.timedelta(minutes=10)


def _floor(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


@dataclass
class Published:
    """What was last published for one city and minute."""

    revision: int
    digest: str
    first_events: int  # violations + incidents opened in revision 1
    counts: tuple[int, int]  # violations, incidents opened in the latest revision
    fingerprint: tuple | None = None


@dataclass
class Output:
    """One tick's messages: figures and alerts, in publication order."""

    figures: list[CityFigures] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    state: dict[tuple[str, dt.datetime], Published] = field(default_factory=dict)
    #: Minutes whose figures could not be built: (city, minute, error), for the dead-letter topic.
    failed: list[tuple[str, dt.datetime, str]] = field(default_factory=list)


_LATEST_RESPONSES = """
SELECT city, district, toStartOfMinute(closed_at) AS minute, time_to_arrival_s
FROM (
    SELECT incident_id, city, district, closed_at, time_to_arrival_s FROM incident_responses
    WHERE event_time >= %(lo)s - INTERVAL 1 DAY AND event_time < %(hi)s
    ORDER BY revision DESC LIMIT 1 BY incident_id
)
WHERE closed_at >= %(lo)s AND closed_at < %(hi)s
"""

_QUANTILES = (
    "count(), quantileExactInclusive(0.5)(time_to_arrival_s), quantileExactInclusive(0.9)(time_to_arrival_s)"
)
_CITY_RESPONSES = f"SELECT city, minute, {_QUANTILES} FROM ({_LATEST_RESPONSES}) GROUP BY city, minute"  # noqa: S608
_DISTRICT_RESPONSES = (
    f"SELECT city, minute, {_QUANTILES}, district FROM ({_LATEST_RESPONSES}) GROUP BY city, minute, district"  # noqa: S608
)


class FiguresPublisher:
    """Decides what to publish; :meth:`step` reads ClickHouse, the caller sends, :meth:`record` keeps."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self._client = client
        self.lateness = dt.timedelta(seconds=settings.figures_allowed_lateness_s)
        self.horizon = dt.timedelta(hours=settings.figures_horizon_hours)
        self.published: dict[tuple[str, dt.datetime], Published] = {}
        #: Minutes whose figures failed to build, with the totals they failed on: tried again only
        #: when those change, so one bad minute neither stops the others nor floods the log.
        self.failed: dict[tuple[str, dt.datetime], tuple] = {}
        self.watermark: dt.datetime | None = None
        self._moved_at = 0.0
        self._loaded = False
        self._data_start: dt.datetime | None = None
        self.spikes = SpikeJudge(settings, self._rows)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = connect(self.settings, connect_timeout=3, send_receive_timeout=30)
        return self._client

    def _rows(self, sql: str, **params: object) -> list:
        return self.client.query(sql, parameters=params).result_rows

    # -- time ---------------------------------------------------------------------------------

    def _read_watermark(self) -> dt.datetime | None:
        """The newest event time stored, within the horizon of the wall clock.

        Only live data moves it: rows older than the horizon (a historical import, a backfill)
        are stored and counted in the tables, but no minute of theirs is published as a live
        figure or judged for spikes.
        """
        # No user input: the clause is a constant, values are bound by clickhouse-connect.
        bounds = "event_time <= %(cap)s AND event_time >= %(floor)s"
        sql = (
            "SELECT max(t), count() FROM ("  # noqa: S608
            f" SELECT max(event_time) AS t FROM violations WHERE {bounds}"
            f" UNION ALL SELECT max(event_time) FROM incident_events WHERE {bounds}"
            ") WHERE t > toDateTime64(0, 3)"
        )
        now = dt.datetime.now(dt.UTC)
        floor = now - self.horizon
        if self.watermark is not None:
            floor = max(floor, self.watermark - dt.timedelta(hours=1))
        params: dict[str, object] = {"cap": now + MAX_FUTURE, "floor": floor}
        t, n = self._rows(sql, **params)[0]
        return _utc(t) if n else None

    def _advance(self, now_monotonic: float) -> tuple[dt.datetime, dt.datetime] | None:
        """(start of the first minute not final, start of the open minute), or None before any data."""
        w = self._read_watermark()
        if w is None and self.watermark is None:
            return None
        if w is not None and (self.watermark is None or w > self.watermark):
            self.watermark, self._moved_at = w, now_monotonic
        assert self.watermark is not None
        open_minute = _floor(self.watermark)
        if now_monotonic - self._moved_at >= self.settings.figures_idle_flush_seconds:
            return open_minute + MINUTE, open_minute
        return _floor(self.watermark - self.lateness), open_minute

    # -- memory -------------------------------------------------------------------------------

    def _load(self, lo: dt.datetime) -> None:
        """What was published before this process started (the table is the publisher's memory)."""
        rows = self._rows(
            "SELECT city, minute, revision, digest, violations + incidents_opened - late_events, "
            "violations, incidents_opened FROM city_figures FINAL WHERE minute >= %(lo)s",
            lo=lo,
        )
        for city, minute, revision, digest, first, v, i in rows:
            self.published[(city, _utc(minute))] = Published(revision, digest, first, (v, i))
        start = self._rows(
            "SELECT min(m), count() FROM (SELECT min(minute) AS m FROM violations_by_minute "
            "UNION ALL SELECT min(minute) FROM incidents_by_minute) WHERE m > toDateTime(0)"
        )[0]
        self._data_start = _utc(start[0]) if start[1] else None
        self._loaded = True
        log.info("figures publisher started: %d minutes published before, watermark %s",
                 len(rows), self.watermark)  # fmt: skip

    # -- counting -----------------------------------------------------------------------------

    def _totals(self, lo: dt.datetime, hi: dt.datetime) -> dict[tuple[str, dt.datetime], list]:
        """(city, minute) → [violations, incidents opened, responses, sum of arrival times]."""
        out: dict[tuple[str, dt.datetime], list] = defaultdict(lambda: [0, 0, 0, 0.0])
        for city, minute, n in self._rows(
            "SELECT city, minute, sum(violations) FROM violations_by_minute "
            "WHERE minute >= %(lo)s AND minute < %(hi)s GROUP BY city, minute", lo=lo, hi=hi,
        ):  # fmt: skip
            out[(city, _utc(minute))][0] = int(n)
        for city, minute, n in self._rows(
            "SELECT city, minute, sum(opened) FROM incidents_by_minute "
            "WHERE minute >= %(lo)s AND minute < %(hi)s GROUP BY city, minute", lo=lo, hi=hi,
        ):  # fmt: skip
            out[(city, _utc(minute))][1] = int(n)
        for city, minute, n, total in self._rows(
            f"SELECT city, minute, count(), sum(ifNull(time_to_arrival_s, 0)) FROM ({_LATEST_RESPONSES}) "  # noqa: S608
            "GROUP BY city, minute", lo=lo, hi=hi,
        ):  # fmt: skip
            out[(city, _utc(minute))][2:] = [int(n), round(float(total), 3)]
        return out

    def _details(self, keys: set[tuple[str, dt.datetime]]) -> dict[tuple[str, dt.datetime], dict]:
        """Full figures of the given (city, minute)s, read over the range that covers them."""
        lo = min(m for _, m in keys)
        hi = max(m for _, m in keys) + MINUTE
        cities = sorted({c for c, _ in keys})

        def blank() -> dict:
            return {
                "violations": 0, "by_type": defaultdict(int), "fines": 0, "opened": 0,
                "category": defaultdict(int), "channel": defaultdict(int), "priority": defaultdict(int),
                "districts": defaultdict(lambda: {"violations": 0, "incidents_opened": 0}),
                "responses": (0, None, None), "district_responses": {},
            }  # fmt: skip

        out: dict[tuple[str, dt.datetime], dict] = defaultdict(blank)
        p = {"lo": lo, "hi": hi, "cities": cities}

        def picked(sql: str) -> Iterator[tuple[dict, list]]:
            """(the figures being built, the rest of the row) of the rows of a wanted minute."""
            for city, minute, *rest in self._rows(sql, **p):
                if (key := (city, _utc(minute))) in keys:
                    yield out[key], rest

        for f, (district, vtype, n, fines) in picked(
            "SELECT city, minute, district, violation_type, sum(violations), sum(fines_kzt) "
            "FROM violations_by_minute WHERE minute >= %(lo)s AND minute < %(hi)s AND city IN %(cities)s "
            "GROUP BY ALL"
        ):
            f["violations"] += n
            f["by_type"][vtype] += n
            f["fines"] += fines
            f["districts"][district]["violations"] += n
        for f, (district, category, channel, priority, n) in picked(
            "SELECT city, minute, district, category, channel, priority, sum(opened) "
            "FROM incidents_by_minute WHERE minute >= %(lo)s AND minute < %(hi)s AND city IN %(cities)s "
            "GROUP BY ALL"
        ):
            f["opened"] += n
            f["category"][category] += n
            f["channel"][channel] += n
            f["priority"][str(priority)] += n
            f["districts"][district]["incidents_opened"] += n
        for f, (n, p50, p90) in picked(_CITY_RESPONSES):
            f["responses"] = (n, p50, p90)
        for f, (n, p50, p90, district) in picked(_DISTRICT_RESPONSES):
            f["district_responses"][district] = (n, p50, p90)
        return out

    # -- one tick -----------------------------------------------------------------------------

    def step(self, now_monotonic: float | None = None) -> Output:
        """Read ClickHouse once; return what to publish now. Nothing is remembered until :meth:`record`."""
        now_monotonic = time.monotonic() if now_monotonic is None else now_monotonic
        out = Output()
        bounds = self._advance(now_monotonic)
        if bounds is None:
            return out
        final_before, open_minute = bounds
        lo = final_before - self.horizon
        if not self._loaded:
            self._load(lo)
        for key in [k for k in self.published if k[1] < lo]:
            del self.published[key]
        for key in [k for k in self.failed if k[1] < lo]:
            del self.failed[key]
        totals = self._totals(lo, open_minute + MINUTE)

        changed = {
            k for k, fp in totals.items()
            if k[1] < final_before and (k not in self.published or self.published[k].fingerprint != tuple(fp))
            and self.failed.get(k) != tuple(fp)
        }  # fmt: skip
        if changed:
            details = self._details(changed)
            for key in sorted(changed, key=lambda k: (k[1], k[0])):
                try:
                    self._figure(key, details[key], tuple(totals[key]), out)
                except Exception as e:  # one minute must not stop every other city's figures
                    FIGURES_FAILURES.inc()
                    log.exception("figures of %s at %s could not be built; dead-lettered", *key)
                    self.failed[key] = tuple(totals[key])
                    out.failed.append((*key, f"{type(e).__name__}: {e}"))
        assert self.watermark is not None
        revised = {m for _, m in changed}
        out.alerts = self.spikes.judge(
            totals, final_before, open_minute, revised, self._data_start, self.watermark
        )
        return out

    def _figure(self, key: tuple[str, dt.datetime], d: dict, fingerprint: tuple, out: Output) -> None:
        city, minute = key
        n, p50, p90 = d["responses"]
        districts = {}
        for name in sorted(d["districts"].keys() | d["district_responses"].keys()):
            counts = d["districts"][name]  # a defaultdict: zeros for a district with responses only
            rn, rp50, rp90 = d["district_responses"].get(name, (0, None, None))
            districts[name] = AreaFigures(
                violations=counts["violations"], incidents_opened=counts["incidents_opened"],
                responses_closed=rn, response_p50_s=rp50, response_p90_s=rp90,
            )  # fmt: skip
        fig = CityFigures(
            event_id=uuid.UUID(int=0),  # set below, from the revision and the digest
            event_time=minute + MINUTE,
            city=city,
            minute=minute,
            revision=1,
            late_events=0,
            violations=d["violations"],
            violations_by_type=dict(sorted(d["by_type"].items())),
            fines_kzt=d["fines"],
            incidents_opened=d["opened"],
            incidents_by_category=dict(sorted(d["category"].items())),
            incidents_by_channel=dict(sorted(d["channel"].items())),
            incidents_by_priority=dict(sorted(d["priority"].items())),
            responses_closed=n,
            response_p50_s=p50,
            response_p90_s=p90,
            districts=dict(sorted(districts.items())),
        )
        digest = fig.content_digest()
        before = self.published.get(key)
        events = d["violations"] + d["opened"]
        if before is not None and before.digest == digest:
            out.state[key] = Published(before.revision, digest, before.first_events, before.counts,
                                       fingerprint)  # fmt: skip
            return
        revision = 1 if before is None else before.revision + 1
        first = events if before is None else before.first_events
        late = max(events - first, 0)
        if before is not None:  # a revision: what arrived since the last one came after the minute was final
            for kind, new, old in zip(KINDS, (d["violations"], d["opened"]), before.counts, strict=True):
                if new > old:
                    LATE_EVENTS.labels(kind).inc(new - old)
        fig = fig.model_copy(update={
            "event_id": uuid.uuid5(NAMESPACE, f"figures:{city}:{minute.isoformat()}:{revision}:{digest}"),
            "revision": revision,
            "late_events": late,
        })  # fmt: skip
        out.figures.append(fig)
        out.state[key] = Published(revision, digest, first, (d["violations"], d["opened"]), fingerprint)

    # -- after sending ------------------------------------------------------------------------

    def record(self, out: Output) -> None:
        """The tick's figures are on the topic: keep them in memory (the ingest stores them)."""
        self.published.update(out.state)


def install_figures(app: faust.App, settings: Settings) -> FiguresPublisher:
    """Run the publisher on a timer of the app's leader (one publisher per consumer group)."""
    publisher = FiguresPublisher(settings)
    figures = app.topic(settings.topic("city_figures"), key_serializer="raw", value_serializer="raw")
    alerts = app.topic(settings.topic("alerts"), key_serializer="raw", value_serializer="raw")
    deadletters = app.topic(settings.topic_deadletter, key_serializer="raw", value_serializer="raw")

    @app.timer(settings.figures_tick_seconds, on_leader=True)
    async def publish_figures() -> None:
        try:
            out = await asyncio.to_thread(publisher.step)
        except Exception as e:  # ClickHouse away or slow: the next tick tries again, nothing is lost
            FIGURES_FAILURES.inc()
            log.warning("figures: reading ClickHouse failed (%s); retrying next tick", e)
            return
        sent = []
        now = dt.datetime.now(dt.UTC).isoformat().encode()
        for city, minute, error in out.failed:
            about = orjson.dumps({"city": city, "minute": minute.isoformat(), "error": error})
            rejected = Rejected(settings.topic("city_figures"), -1, -1, city.encode(), about, "processing",
                                f"figures: {error}")  # fmt: skip
            value, headers = deadletter_record(rejected, now)
            sent.append(await deadletters.send(key=city.encode(), value=value, headers=headers))
        for alert in out.alerts:
            sent.append(await alerts.send(key=alert.city.encode(), value=alert.to_json()))
        for fig in out.figures:
            sent.append(await figures.send(key=fig.city.encode(), value=fig.to_json()))
        await asyncio.gather(*sent)  # on the topic before the publisher counts them as said
        JOIN_OUTPUTS.labels("alerts").inc(len(out.alerts))
        JOIN_OUTPUTS.labels("city_figures").inc(len(out.figures))
        publisher.record(out)

    return publisher
