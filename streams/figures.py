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
- **Spikes**: each tick, every minute not yet final (and, once, every minute as it becomes final,
  and again whenever late events revise it) is compared with the city's baseline for that hour of
  that weekday: the mean per minute over the same hour in the previous four weeks, or, without a
  week of history, over the 60 minutes before;
  never less than the mean of the 15 minutes before. That floor follows a ramp such as the morning
  rush, where the traffic of 07:00 is twice that of 06:00: judged against the hour before, ordinary
  noise at the start of the rush once passed for a spike (a simulated day in CI did exactly that).
  A count at least ``spike_ratio`` times the baseline, above the minimum, and improbable under a
  Poisson count with the baseline's mean raises one alert; the minute after an alerted one does not
  raise another (one alert per spike). The running count is checked, so a spike is reported while
  its minute is still open, not after the allowed lateness.

One publisher runs per deployment: a faust timer on the join workers' leader. What it published is
written to the ``city_figures`` table after the message is on the topic, and read back when it
starts. A crash between the two republishes that minute (same revision, same ``event_id`` when the
content is the same; a consumer keeping the highest revision per city and minute is right either
way). Alerts carry an ``event_id`` fixed by city, kind and minute, so a re-sent alert is a repeat.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import faust
import orjson
from clickhouse_connect.driver.client import Client

from dozor.clickhouse import connect
from dozor.schemas import Alert, AreaFigures, CityFigures
from dozor.settings import Settings
from dozor.streams.deadletter import Rejected, deadletter_record
from dozor.streams.metrics import FIGURES_FAILURES, JOIN_OUTPUTS, LATE_EVENTS

__all__ = [
    "FiguresPublisher",
    "Output",
    "install_figures",
    "poisson_sf",
    "is_spike",
    "baseline_for",
    "NAMESPACE",
]

log = logging.getLogger("dozor.figures")

#: uuid5 namespace of the figures' and spike alerts' event ids.
NAMESPACE = uuid.UUID("0c6f8a52-2d1e-4b7a-9f3c-5e8d7a6b1c20")
MINUTE = dt.timedelta(minutes=1)
#: Trailing baseline: the minutes before the one judged, when no week of history exists.
TRAILING_MINUTES = 60
#: The baseline is never below the mean of this many minutes before the one judged.
RECENT_MINUTES = 15
WEEKS = 4
#: Events stamped further ahead of the wall clock (a camera with a wrong clock) do not move time.
MAX_FUTURE = dt.timedelta(minutes=10)
KINDS = ("violations", "incidents")


def poisson_sf(k: int, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(lam): how surprising a count of ``k`` is for a mean of ``lam``."""
    if k <= 0:
        return 1.0
    if k <= lam:
        return 0.5  # not in the upper tail; all the callers need to know
    term = math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1))
    total, i = 0.0, k
    while term > total * 1e-12:
        total += term
        i += 1
        term *= lam / i
    return min(total, 1.0)


def is_spike(observed: int, baseline: float, minimum: int, ratio: float, p_value: float) -> bool:
    """Far above the baseline: by ratio, by a minimum count, and beyond Poisson noise.

    The ratio alone alerts on noise in small cities (2 against a baseline of 0.5); the p-value alone
    alerts on a busy city's ordinary 20 % swing. The baseline is floored at one per minute: a city
    that was silent has no rate to be surprised against.
    """
    if observed < minimum or observed < ratio * baseline:
        return False
    return poisson_sf(observed, max(baseline, 1.0)) < p_value


def baseline_for(
    before: list[int], weekly: float | None, *, has_trailing_hour: bool
) -> tuple[float, str] | None:
    """The rate a minute is judged against, and where it comes from; None without history.

    ``before`` holds the counts of the minutes before the judged one, newest first. The same hour
    on previous weeks knows the time of day; without it, the hour before is the best guess. Either
    is floored by the last 15 minutes: on a ramp such as the morning rush the hour before (or the
    hour's weekly mean) lags the present level, and ordinary noise would pass for a spike.
    """
    if weekly is not None:
        baseline, basis = weekly, "the same hour on previous weeks"
    elif has_trailing_hour:
        baseline, basis = sum(before[:TRAILING_MINUTES]) / TRAILING_MINUTES, "the last hour"
    else:
        return None
    recent = sum(before[:RECENT_MINUTES]) / RECENT_MINUTES
    if recent > baseline:
        return recent, "the last 15 minutes"
    return baseline, basis


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
    """One tick's messages: figures (with their table rows) and alerts, in publication order."""

    figures: list[CityFigures] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
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
#: Per kind of spike: the per-minute table and its count column.
_COUNTED = {
    "violations": ("violations_by_minute", "violations"),
    "incidents": ("incidents_by_minute", "opened"),
}

FIGURE_COLUMNS = [
    "city", "minute", "revision", "event_id", "violations", "incidents_opened", "responses_closed",
    "response_p50_s", "response_p90_s", "late_events", "digest", "body",
]  # fmt: skip


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
        self._spikes_from: dt.datetime | None = None
        self._alerted: set[tuple[str, str, dt.datetime]] = set()
        self._weekly: dict[tuple[str, dt.datetime], dict[str, float]] = {}

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = connect(self.settings, connect_timeout=3, send_receive_timeout=30)
        return self._client

    def _rows(self, sql: str, **params: object) -> list:
        return self.client.query(sql, parameters=params).result_rows

    # -- time ---------------------------------------------------------------------------------

    def _read_watermark(self) -> dt.datetime | None:
        since = "" if self.watermark is None else "AND event_time >= %(since)s"
        # No user input: the optional clause is a constant, values are bound by clickhouse-connect.
        sql = (
            "SELECT max(t), count() FROM ("  # noqa: S608
            f" SELECT max(event_time) AS t FROM violations WHERE event_time <= %(cap)s {since}"
            f" UNION ALL SELECT max(event_time) FROM incident_events WHERE event_time <= %(cap)s {since}"
            ") WHERE t > toDateTime64(0, 3)"
        )
        cap = dt.datetime.now(dt.UTC) + MAX_FUTURE
        params: dict[str, object] = {"cap": cap}
        if self.watermark is not None:
            params["since"] = self.watermark - dt.timedelta(hours=1)
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
        for city, minute, district, vtype, n, fines in self._rows(
            "SELECT city, minute, district, violation_type, sum(violations), sum(fines_kzt) "
            "FROM violations_by_minute WHERE minute >= %(lo)s AND minute < %(hi)s AND city IN %(cities)s "
            "GROUP BY ALL", **p,
        ):  # fmt: skip
            key = (city, _utc(minute))
            if key not in keys:
                continue
            f = out[key]
            f["violations"] += n
            f["by_type"][vtype] += n
            f["fines"] += fines
            f["districts"][district]["violations"] += n
        for city, minute, district, category, channel, priority, n in self._rows(
            "SELECT city, minute, district, category, channel, priority, sum(opened) "
            "FROM incidents_by_minute WHERE minute >= %(lo)s AND minute < %(hi)s AND city IN %(cities)s "
            "GROUP BY ALL", **p,
        ):  # fmt: skip
            key = (city, _utc(minute))
            if key not in keys:
                continue
            f = out[key]
            f["opened"] += n
            f["category"][category] += n
            f["channel"][channel] += n
            f["priority"][str(priority)] += n
            f["districts"][district]["incidents_opened"] += n
        for city, minute, n, p50, p90 in self._rows(_CITY_RESPONSES, **p):
            if (city, _utc(minute)) in keys:
                out[(city, _utc(minute))]["responses"] = (n, p50, p90)
        for city, minute, n, p50, p90, district in self._rows(_DISTRICT_RESPONSES, **p):
            if (city, _utc(minute)) in keys:
                out[(city, _utc(minute))]["district_responses"][district] = (n, p50, p90)
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
        self._spikes(totals, final_before, open_minute, out, {m for _, m in changed})
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
        content = {
            "city": city,
            "minute": minute.isoformat(),
            "violations": d["violations"],
            "violations_by_type": dict(sorted(d["by_type"].items())),
            "fines_kzt": d["fines"],
            "incidents_opened": d["opened"],
            "incidents_by_category": dict(sorted(d["category"].items())),
            "incidents_by_channel": dict(sorted(d["channel"].items())),
            "incidents_by_priority": dict(sorted(d["priority"].items())),
            "responses_closed": n,
            "response_p50_s": p50,
            "response_p90_s": p90,
            "districts": {k: v.model_dump() for k, v in sorted(districts.items())},
        }
        digest = hashlib.sha1(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
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
        fig = CityFigures(
            event_id=uuid.uuid5(NAMESPACE, f"figures:{city}:{minute.isoformat()}:{revision}:{digest}"),
            event_time=minute + MINUTE,
            revision=revision,
            late_events=late,
            **{k: v for k, v in content.items() if k != "districts"},
            districts=districts,
        )
        out.figures.append(fig)
        out.rows.append([
            city, minute, revision, fig.event_id, d["violations"], d["opened"], n, p50, p90, late, digest,
            fig.to_json().decode(),
        ])  # fmt: skip
        out.state[key] = Published(revision, digest, first, (d["violations"], d["opened"]), fingerprint)

    # -- spikes -------------------------------------------------------------------------------

    def _weekly_baseline(self, kind: str, hour: dt.datetime) -> dict[str, float] | None:
        """Mean per minute, per city, over the same hour in the previous weeks with data; or None."""
        assert self._data_start is not None
        weeks = [hour - dt.timedelta(weeks=k) for k in range(1, WEEKS + 1)]
        weeks = [w for w in weeks if w >= self._data_start]
        if not weeks:
            return None
        cached = self._weekly.get((kind, hour))
        if cached is None:
            table, column = _COUNTED[kind]
            where = " OR ".join(
                f"(minute >= %(w{i})s AND minute < %(w{i})s + INTERVAL 1 HOUR)" for i in range(len(weeks))
            )
            rows = self._rows(
                f"SELECT city, sum({column}) FROM {table} WHERE {where} GROUP BY city",  # noqa: S608
                **{f"w{i}": w for i, w in enumerate(weeks)},
            )
            cached = {city: int(n) / (60 * len(weeks)) for city, n in rows}
            if len(self._weekly) > 256:
                self._weekly.clear()
            self._weekly[(kind, hour)] = cached
        return cached

    def _spikes(
        self, totals: dict, final_before: dt.datetime, open_minute: dt.datetime, out: Output,
        revised: set[dt.datetime],
    ) -> None:  # fmt: skip
        """Judge the minutes not yet final, those becoming final, and final ones revised by late events.

        The revised ones matter on a backlog: one partition can reach the end of the feed while
        another is still behind, the watermark stands still, and the idle flush declares the open
        minute final with only part of its events counted. Judging it again once the rest arrive
        is what raises the alert then (a CI run under load missed an injected spike so).
        """
        if self._data_start is None:
            return
        if self._spikes_from is None:
            first = final_before - dt.timedelta(minutes=TRAILING_MINUTES)
        else:
            # Before final_before when an idle flush made minutes final and the watermark then
            # moved again: those minutes are open once more, and judged as such.
            first = min(self._spikes_from, final_before)
        lo = min((m for _, m in totals), default=open_minute)
        first = max(first, lo)
        s = self.settings
        minimum = {"violations": s.spike_min_violations, "incidents": s.spike_min_incidents}
        cities = {c for c, _ in totals}
        hour_back = range(1, TRAILING_MINUTES + 1)
        span = (open_minute - first) // MINUTE + 1
        # A revised minute is judged only with its trailing hour in hand, as any other minute is.
        again = {m for m in revised if m < first and m - MINUTE * TRAILING_MINUTES >= lo}
        for minute in sorted(again) + [first + MINUTE * i for i in range(span)]:
            for kind in KINDS:
                i = KINDS.index(kind)
                weekly = self._weekly_baseline(kind, minute.replace(minute=0))
                for city in cities:
                    observed = totals.get((city, minute), (0, 0))[i]
                    if observed < minimum[kind]:
                        continue
                    before = [totals.get((city, minute - MINUTE * j), (0, 0))[i] for j in hour_back]
                    judged = baseline_for(
                        before,
                        None if weekly is None else weekly.get(city, 0.0),
                        has_trailing_hour=minute - dt.timedelta(minutes=TRAILING_MINUTES) >= self._data_start,
                    )
                    if judged is None:
                        continue  # no history to compare with
                    baseline, basis = judged
                    key = (kind, city, minute)
                    if key in self._alerted or (kind, city, minute - MINUTE) in self._alerted:
                        continue
                    if not is_spike(observed, baseline, minimum[kind], s.spike_ratio, s.spike_p_value):
                        continue
                    self._alerted.add(key)
                    assert self.watermark is not None
                    out.alerts.append(
                        Alert(
                            event_id=uuid.uuid5(NAMESPACE, f"spike:{kind}:{city}:{minute.isoformat()}"),
                            event_time=min(self.watermark, minute + MINUTE),
                            kind=f"{kind}_spike",
                            city=city,
                            observed=observed,
                            baseline=round(baseline, 3),
                            detail=f"{observed} {kind} in the minute from {minute:%H:%M} UTC against "
                            f"{baseline:.1f} expected from {basis}",
                        )  # fmt: skip
                    )
        self._spikes_from = final_before
        self._alerted = {k for k in self._alerted if k[2] >= final_before - self.horizon}

    # -- after sending ------------------------------------------------------------------------

    def record(self, out: Output) -> None:
        """The tick's figures are on the topic: keep them (table first, then memory)."""
        if out.rows:
            self.client.insert("city_figures", out.rows, column_names=FIGURE_COLUMNS)
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
        await asyncio.gather(*sent)  # on the topic before the table says so
        JOIN_OUTPUTS.labels("alerts").inc(len(out.alerts))
        JOIN_OUTPUTS.labels("city_figures").inc(len(out.figures))
        try:
            await asyncio.to_thread(publisher.record, out)
        except Exception as e:
            FIGURES_FAILURES.inc()
            log.warning("figures: recording what was published failed (%s); it will be sent again", e)

    return publisher
