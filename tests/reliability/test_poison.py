"""Poison messages through a running worker and join, on the real broker and engine.

Each poison of the never-lose issue is sent in the middle of an ordinary feed: ingestion goes on,
every other event is stored exactly once, the poison is in the dead-letter topic with its reason,
``dozor status`` shows it, and ``dozor verify`` accounts for every consumed message. Expected
values come from the messages the test built, not from the worker.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
import uuid
from collections import Counter

import orjson
import pytest

from dozor.clickhouse import connect
from dozor.infra.migrate import migrate
from dozor.infra.topics import ensure_topics
from dozor.producers.kafka import Publisher, make_producer
from tests.helpers.stack import (
    JOIN,
    WORKER,
    Truth,
    assert_exact,
    deadletters,
    poll,
    produce,
    simulated_feed,
)
from tests.helpers.truth import incidents

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC)
ASTANA = {"city": "astana", "lat": 51.1282, "lon": 71.4307}


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


def _violation(**over: object) -> dict:
    return {
        "event_id": str(uuid.uuid4()), "schema_version": 1, "event_time": _iso(NOW - dt.timedelta(hours=1)),
        "camera_id": "astana-cam-001", "violation_type": "red_light", "plate_hash": "a" * 64,
        "plate_masked": "1*****01", **ASTANA, **over,
    }  # fmt: skip


def _poisons() -> list[tuple[str, bytes | None, bytes, str]]:
    """(family, key, value, the reason it must be dead-lettered with)."""
    t = _iso(NOW - dt.timedelta(hours=2))
    incident = {
        "event_id": str(uuid.uuid4()), "schema_version": 1, "event_time": t, "incident_id": "POISON-1",
        "status": "opened", "channel": "call_102", "category": "theft", "priority": 1,
        "opened_at": "0001-01-01T00:00:00+05:00", **ASTANA,
    }  # fmt: skip
    alert = {
        "event_id": str(uuid.uuid4()), "schema_version": 1, "event_time": t, "kind": "incident_waiting",
        "city": "astana", "incident_id": "X-1", "priority": 1, "waited_s": 600.0,
    }  # fmt: skip
    dispatch = {
        "event_id": str(uuid.uuid4()), "schema_version": 1, "event_time": t, "dispatch_id": "d-9",
        "incident_id": "X-2", "unit_id": "Ivanov Ivan Ivanovich", "crew_type": "car", "status": "assigned",
        "city": "astana",
    }  # fmt: skip
    report = {
        "event_id": str(uuid.uuid4()), "schema_version": 1, "event_time": t, "region": "astana",
        "kind": "bribe_attempt_reported", "service": "patrol", "comment": "Sgt. Petrov, badge 4411",
    }  # fmt: skip
    huge = orjson.dumps(_violation(camera_id="x" * 1_000_000))  # near the broker's 1 MiB limit
    # A field named twice: no JSON library writes it, so it is spliced in. Last-one-wins would
    # store the second event_id; the first city alone would pass every check.
    twice_id = orjson.dumps(_violation())[:-1] + f',"event_id":"{uuid.uuid4()}"}}'.encode()
    twice_city = b'{"city":"almaty",' + orjson.dumps(_violation())[1:]
    return [
        ("incidents", b"POISON-1", orjson.dumps(incident), "bad_time"),
        # 2^63 + 1 in an integer field: written raw, since no JSON library here would make it.
        ("alerts", b"astana", orjson.dumps(alert)[:-1] + b',"target_s":9223372036854775809}', "schema"),
        ("dispatches", b"X-2", orjson.dumps(dispatch), "schema"),
        ("integrity", b"astana", orjson.dumps(report), "schema"),
        ("violations", b"astana-cam-001", orjson.dumps(_violation(plate_masked="123ABC01")), "schema"),
        ("violations", b"astana-cam-001", huge, "oversize"),
        ("violations", b"astana-cam-001", twice_id, "malformed_json"),
        ("violations", b"astana-cam-001", twice_city, "malformed_json"),
        # Valid, but the engine refuses it (the constraint added below): reason storage.
        ("violations", b"poison-cam", orjson.dumps(_violation(camera_id="poison-cam")), "storage"),
    ]


def _dozor(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dozor", *args], env=settings.to_env() | {"PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_every_poison_is_dead_lettered_and_everything_else_is_exact(settings, start_service):
    ensure_topics(settings)
    migrate(settings)
    # A value the engine refuses: stands for any row ClickHouse cannot store (code 469 here).
    connect(settings).command(
        "ALTER TABLE violations ADD CONSTRAINT no_poison CHECK camera_id != 'poison-cam'"
    )
    start_service(WORKER, settings, "worker")
    start_service(JOIN, settings, "join", env={"DOZOR_WORKER_WEB_PORT": str(settings.worker_web_port + 1)})

    truth = Truth()
    feed = simulated_feed(seed=41, count=4000, bad_rate=0.0)
    half = len(feed) // 2
    produce(settings, feed[:half], truth)
    poisons = _poisons()
    pub = Publisher(make_producer(settings))
    for family, key, value, _ in poisons:
        pub.send(settings.topic(family), key, value)
    pub.close()
    produce(settings, feed[half:], truth)  # the feed goes on after the poisons

    expected = Counter(reason for *_, reason in poisons)
    truth.malformed.update(expected)
    # Every valid event stored once, and the dead-letter topic holds exactly the poisons.
    assert_exact(settings, truth, timeout_s=180)
    ingest_dead = deadletters(settings)

    by_reason = {dict(m.headers)["dozor.reason"].decode(): m for m in ingest_dead}
    storage = dict(by_reason["storage"].headers)
    assert b"469" in storage["dozor.detail"] and b"no_poison" in storage["dozor.detail"]
    big = dict(by_reason["oversize"].headers)
    original = next(v for f, _, v, r in poisons if r == "oversize")
    assert big["dozor.truncated"] == b"1"
    assert int(big["dozor.original_size"]) == len(original)
    assert big["dozor.original_sha256"].decode() == hashlib.sha256(original).hexdigest()
    assert original.startswith(by_reason["oversize"].value)

    # The join went on past the poison: every closed incident of the feed has its response time.
    closed = {iid for iid, s in incidents(feed).items() if "end" in s and "opened" in s}
    client = connect(settings)

    def joined() -> set[str]:
        return {r[0] for r in client.query("SELECT DISTINCT incident_id FROM incident_responses").result_rows}

    assert poll(joined, lambda got: got >= closed, 120) >= closed

    status = _dozor(settings, "status")
    assert status.returncode == 0, status.stderr
    for reason, n in expected.items():
        assert f"{reason} {n}" in status.stdout, status.stdout
    verify = _dozor(settings, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "every consumed message is accounted for" in verify.stdout

    # And verify is not a rubber stamp: rows lost after the commit are found, in red, exit 1.
    lost = [m.event_id for m in feed if m.family == "violations"][:3]
    ids = ",".join(f"'{e}'" for e in lost)
    client.command(f"DELETE FROM violations WHERE event_id IN ({ids})")
    messages = sum(1 for m in feed if m.event_id in set(lost))
    verify = _dozor(settings, "verify")
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert f"{messages} UNACCOUNTED" in verify.stdout, verify.stdout
