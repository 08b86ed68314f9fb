"""Several years of history in one topic, read at full speed: every row stored, once.

The worker reads a backlog in batches of tens of thousands that span the whole history; the
raw tables are partitioned by day, and ClickHouse refuses an insert touching more than 100
partitions. Before the sink split its inserts, the endpoint answered such inserts as written and
stored nothing (a real multi-year export lost 94 % of its rows). The truth here is the messages
the test built.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter

import orjson
import pytest

from dozor.clickhouse import connect
from dozor.infra.topics import ensure_topics
from dozor.producers.kafka import Publisher, make_producer
from tests.helpers.stack import WORKER, poll

pytestmark = pytest.mark.integration


def test_three_years_in_one_topic_are_stored_exactly(settings_factory, start_service):
    settings = settings_factory(batch_max_rows=50_000, batch_max_seconds=2.0)
    ensure_topics(settings)
    rng = random.Random(7)
    start = dt.datetime(2022, 11, 1, tzinfo=dt.UTC)
    events = []
    for i in range(3 * 365 * 8):  # every three hours, give or take, for three years
        t = start + dt.timedelta(hours=3 * i, minutes=rng.randrange(180))
        events.append(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128))), "schema_version": 1,
                "event_time": t.isoformat(), "city": "astana", "lat": 51.1282, "lon": 71.4307,
                "camera_id": f"astana-cam-{i % 40:03d}", "violation_type": "red_light",
                "plate_hash": "b" * 64, "plate_masked": "7*****01",
            }
        )  # fmt: skip
    repeats = rng.sample(events, 200)  # re-sent later, as a second export of the same rows would be
    rng.shuffle(events)  # an export in no particular order
    pub = Publisher(make_producer(settings))
    for ev in events + repeats:
        pub.send(settings.topic("violations"), ev["camera_id"].encode(), orjson.dumps(ev))
    pub.close()
    start_service(WORKER, settings, "worker")

    truth = Counter(dt.datetime.fromisoformat(e["event_time"]).date() for e in events)

    def per_day() -> Counter:
        try:
            rows = connect(settings).query("SELECT toDate(event_time), count() FROM violations GROUP BY 1")
        except Exception:
            return Counter()
        return Counter(dict(rows.result_rows))

    got = poll(per_day, lambda c: sum(c.values()) >= len(events), 180)
    assert sum(got.values()) == len(events)
    assert got == truth
    assert len(truth) > 1000  # more than ten times the partition limit of one insert
