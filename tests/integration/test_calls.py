"""102's figures equal the truth from the calls produced (issue #27): answer-time percentiles and
shares per local hour, abandonment, the queue at fixed instants, each read through the dashboard's
own query functions after the feed went through Kafka and the worker (late and duplicate sends
included). Poison calls (answered before offered, a position shaped like a person's name, a
caller's phone number) go to the dead-letter topic with their reason and are not stored.

The truth is computed here from the produced messages: per call, the first answer minus the offer;
percentiles by the inclusive (R-7) definition ClickHouse's ``quantileExactInclusive`` uses.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

import orjson
import pytest

from dozor.access import Scope
from dozor.clickhouse import connect
from dozor.dashboard.queries.calls import call_answering, call_queue
from dozor.producers.kafka import Publisher, make_producer
from dozor.producers.simulator import SimConfig, Simulator
from tests.helpers.stack import WORKER, Truth, deadletters, produce, wait_for_truth
from tests.helpers.truth import accepted, epoch_ms

pytestmark = pytest.mark.integration

TZ = "Asia/Almaty"
ANALYST = Scope("analyst@mvd.kz", "ministry_analyst", None)
CITIES = ("almaty", "astana", "shymkent")


def _calls(msgs: list) -> dict[str, dict]:
    """Per call of the accepted events: city, offer (ms), first answer (ms), abandoned, and the
    time (ms) of its first event that is not the offer (its outcome so far)."""
    out: dict[str, dict] = {}
    for family, p in accepted(msgs):
        if family != "calls":
            continue
        c = out.setdefault(p["call_id"], {"city": p["city"], "offered": epoch_ms(p["offered_at"]),
                                          "answered": None, "abandoned": False, "outcome": None})  # fmt: skip
        t = epoch_ms(p["event_time"])
        if p["status"] == "answered":
            c["answered"] = t if c["answered"] is None else min(c["answered"], t)
        if p["status"] == "abandoned":
            c["abandoned"] = True
        if p["status"] != "offered":
            c["outcome"] = t if c["outcome"] is None else min(c["outcome"], t)
    return out


def _r7(values: list[float], q: float) -> float:
    """The inclusive quantile (R-7, linear between order statistics)."""
    x = sorted(values)
    h = (len(x) - 1) * q
    lo = math.floor(h)
    return x[lo] if lo + 1 >= len(x) else x[lo] + (h - lo) * (x[lo + 1] - x[lo])


def _hour_key(ms: int) -> str:
    local = dt.datetime.fromtimestamp(ms / 1000, ZoneInfo(TZ))
    return local.replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%d %H:%M:%S")


def _feed() -> tuple[dt.datetime, dt.datetime, list]:
    """Three hours of calls and incidents that ended three hours ago, every lifecycle complete."""
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)
    until = start + dt.timedelta(hours=3)
    cfg = SimConfig(seed=27, rate=4.0, incident_share=0.25, call_share=0.35, late_rate=0.03,
                    duplicate_rate=0.02, daily_profile=False)  # fmt: skip
    return start, until, list(Simulator(cfg, "test-salt").messages(start, until=until, drain=True))


def _poisons() -> list[tuple[bytes, str]]:
    """(message, the part of the dead-letter detail that names the fault)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    base = {"schema_version": 1, "call_id": "CALL-poison", "channel": "line_102", "city": "astana",
            "offered_at": now.isoformat(), "status": "answered", "position_id": "P-3"}  # fmt: skip

    def msg(**change: object) -> bytes:
        return orjson.dumps({**base, "event_id": str(uuid.uuid4()), "event_time": now.isoformat(), **change})

    return [
        (msg(event_time=(now - dt.timedelta(seconds=30)).isoformat()), "before offered"),
        (msg(position_id="Aigerim S."), "position_id"),
        (msg(phone="+77011234567"), "phone"),
    ]


def test_answer_times_abandonment_and_the_queue_equal_the_truth(settings_factory, start_service):
    settings = settings_factory()
    start, until, msgs = _feed()
    calls = _calls(msgs)
    assert len(calls) > 500 and any(c["abandoned"] for c in calls.values())
    start_service(WORKER, settings, "worker")
    truth = Truth()
    produce(settings, msgs, truth)
    poisons = _poisons()
    pub = Publisher(make_producer(settings))
    for value, _ in poisons:
        pub.send(settings.topic("calls"), b"CALL-poison", value)
    pub.close()
    stored = wait_for_truth(settings, truth, timeout_s=180)
    assert sum(stored.values()) == truth.rows

    reader = connect(settings, reader=True)
    zone = ZoneInfo(TZ)
    first_day, last_day = start.astimezone(zone).date(), until.astimezone(zone).date()
    for city in CITIES:
        mine = [c for c in calls.values() if c["city"] == city]
        by_hour: dict[str, list[dict]] = defaultdict(list)
        for c in mine:
            by_hour[_hour_key(c["offered"])].append(c)
        rows = {r.key: r for r in call_answering(reader, ANALYST, city, first_day, last_day, "hour", TZ)}
        assert set(rows) == set(by_hour), city
        for hour, group in by_hour.items():
            r = rows[hour]
            waits = [(c["answered"] - c["offered"]) / 1000 for c in group if c["answered"] is not None]
            assert (r.offered, r.answered) == (len(group), len(waits)), (city, hour)
            assert r.abandoned == sum(1 for c in group if c["abandoned"] and c["answered"] is None)
            for q, got in zip((0.5, 0.9, 0.95), r.answer_s, strict=True):
                assert got == pytest.approx(_r7(waits, q), abs=1e-6), (city, hour, q)
            for s in (10, 15, 20):
                assert r.within[s] == sum(1 for w in waits if w <= s), (city, hour, s)

    # The queue at instants through the feed: waiting, the longest wait, the last hour's answers.
    for minutes in range(17, 180, 23):
        t0 = start + dt.timedelta(minutes=minutes, seconds=11)
        t_ms = epoch_ms(t0.isoformat())
        got = call_queue(reader, ANALYST, t0, list(CITIES))
        for city in CITIES:
            mine = [c for c in calls.values() if c["city"] == city and c["offered"] <= t_ms]
            waiting = [c for c in mine if (c["outcome"] is None or c["outcome"] > t_ms)
                       and c["offered"] > t_ms - 30 * 60_000]  # fmt: skip
            answered = [
                c for c in mine if c["answered"] is not None and t_ms - 3_600_000 < c["answered"] <= t_ms
            ]
            row = got.get(city)
            assert (row.waiting if row else 0) == len(waiting), (city, t0)
            if waiting:
                longest = (t_ms - min(c["offered"] for c in waiting)) / 1000
                assert row.longest_wait_s == pytest.approx(longest, abs=1e-3)
            assert (row.answered_hour if row else 0) == len(answered)
            within = sum(1 for c in answered if c["answered"] - c["offered"] <= 15_000)
            assert (row.within_15_hour if row else 0) == within

    # The poisons: each dead-lettered with the reason that names its fault, none stored.
    dead = [m for m in deadletters(settings) if m.key == b"CALL-poison"]
    details = Counter(dict(m.headers)["dozor.reason"].decode() for m in dead)
    assert details == Counter({"schema": len(poisons)})
    texts = [dict(m.headers)["dozor.detail"].decode() for m in dead]
    for _, fault in poisons:
        assert any(fault in text for text in texts), (fault, texts)
    poisoned = connect(settings).query("SELECT count() FROM call_events WHERE call_id = 'CALL-poison'")
    assert poisoned.result_rows[0][0] == 0


def _acd_export(path, n: int, seed: int) -> list[dict]:  # noqa: ANN001
    """An ACD export as call centres write it: the date and each moment's time in separate columns
    (the date is the offer's), rows in no particular order, some rows repeated, calls crossing
    midnight, calls abandoned (no answer, an end). Returns each call once, its moments as local
    datetimes worked out here from the calendar (not by Dozor's parser)."""
    import csv
    import random

    rng = random.Random(seed)
    zone = ZoneInfo(TZ)
    calls, rows = [], []
    for i in range(n):
        day = dt.date(2025, 3, 10) + dt.timedelta(days=rng.randrange(4))
        # One call in eight in the last minute of the day, so its answer is on the next day.
        late = i % 8 == 0
        moment = dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60))
        offered = dt.datetime.combine(day, dt.time(23, 59, rng.randrange(40, 60)) if late else moment)
        abandoned = rng.random() < 0.07
        answered = (
            None if abandoned else offered + dt.timedelta(seconds=round(rng.lognormvariate(1.6, 0.8)) + 1)
        )
        ended = (answered or offered) + dt.timedelta(seconds=rng.randrange(20, 300))
        call = {"id": f"102-{i:06d}", "offered": offered.replace(tzinfo=zone),
                "answered": answered and answered.replace(tzinfo=zone), "abandoned": abandoned}  # fmt: skip
        calls.append(call)

        def hms(t: dt.datetime | None) -> str:
            return "" if t is None else t.strftime("%H:%M:%S")

        seat = "" if abandoned else f"P-{rng.randrange(1, 30)}"
        line = rng.choice(["102", "Приложение 102"])
        row = [
            call["id"],
            offered.strftime("%d.%m.%Y"),
            hms(offered),
            hms(answered),
            hms(ended),
            seat,
            line,
            "",
        ]
        rows.append(row)
        if rng.random() < 0.05:
            rows.append(row)  # the export repeats a row
    rng.shuffle(rows)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["ID вызова", "Дата", "Поступил", "Принят", "Завершён", "Пульт", "Линия", "КУИ"])
        w.writerows(rows)
    return calls


def test_an_acd_export_with_date_and_time_columns_equals_its_own_figures(
    settings_factory, start_service, tmp_path, monkeypatch
):
    from click.testing import CliRunner

    from dozor.cli import cli
    from dozor.infra.migrate import migrate
    from tests.helpers.examples import ACD_MAPPING

    settings = settings_factory()
    path = tmp_path / "acd_march.csv"
    calls = _acd_export(path, 600, seed=12)
    assert sum(1 for c in calls if c["answered"] and c["answered"].date() > c["offered"].date()) > 20
    migrate(settings)
    start_service(WORKER, settings, "worker")
    r = CliRunner().invoke(cli, ["replay", str(path), "--mapping", str(ACD_MAPPING)], env=settings.to_env())
    assert r.exit_code == 0, r.output
    assert "rejected 0" in r.output, r.output

    events = 2 * len(calls) + sum(1 for c in calls if c["answered"])  # offered, answered or abandoned, ended
    client = connect(settings)
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and client.command("SELECT count() FROM call_events") < events:
        time.sleep(0.5)
    assert client.command("SELECT count() FROM call_events") == events  # each repeated row once

    days = sorted({c["offered"].date() for c in calls})
    reader = connect(settings, reader=True)
    got = {r.key: r for r in call_answering(reader, ANALYST, "almaty", days[0], days[-1], "day", TZ)}
    assert sorted(got) == [d.isoformat() for d in days]
    for day in days:
        mine = [c for c in calls if c["offered"].date() == day]
        waits = [(c["answered"] - c["offered"]).total_seconds() for c in mine if c["answered"]]
        row = got[day.isoformat()]
        assert (row.offered, row.answered, row.abandoned) == (len(mine), len(waits), len(mine) - len(waits))
        for q, value in zip((0.5, 0.9, 0.95), row.answer_s, strict=True):
            assert value == pytest.approx(_r7(waits, q), abs=1e-6)
        assert row.within[15] == sum(1 for w in waits if w <= 15)

    # The Response times page shows the same calls: per local hour of the offer, offered and
    # answered, and the share within 15 s, as the file says.
    from pathlib import Path

    from tests.helpers.apptest import page_as

    app = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    at = page_as(settings, monkeypatch, ANALYST, app, timeout_s=90, lang="en", city="almaty", range="custom",
                 **{"from": days[0].isoformat(), "to": days[-1].isoformat()})  # fmt: skip
    at.switch_page("app_pages/responses.py")
    at.run()
    assert not at.exception, at.exception
    shown = {r["hour of day"]: r for r in at.dataframe[1].value.to_dict("records")}
    for hour in range(24):
        mine = [c for c in calls if c["offered"].hour == hour]
        waits = [(c["answered"] - c["offered"]).total_seconds() for c in mine if c["answered"]]
        if not mine:
            assert f"{hour:02d}:00" not in shown
            continue
        row = shown[f"{hour:02d}:00"]
        assert (row["offered"], row["answered"], row["abandoned"]) == (
            len(mine),
            len(waits),
            len(mine) - len(waits),
        )
        if waits:
            assert row["within 15 s, %"] == round(sum(1 for w in waits if w <= 15) / len(waits) * 100, 1)
