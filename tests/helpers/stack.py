"""Ground truth for the reliability tests: what was produced, and what ClickHouse and the DLQ hold."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from kafka import KafkaConsumer

from dozor.clickhouse import connect
from dozor.infra.topics import ensure_topics
from dozor.producers.kafka import Publisher, make_producer
from dozor.producers.simulator import Message, SimConfig, Simulator
from dozor.schemas import INPUT_FAMILIES
from dozor.settings import Settings
from dozor.streams.sink import TABLES

T = TypeVar("T")

WORKER = [sys.executable, "-m", "dozor", "worker"]
JOIN = [sys.executable, "-m", "dozor", "worker", "--role", "join"]


@dataclass
class Truth:
    """Unique valid events per (family, place), and the malformed messages' reasons."""

    events: dict[str, set] = field(default_factory=dict)  # event_id → (family, place)
    malformed: Counter = field(default_factory=Counter)
    sent: int = 0
    duplicates: int = 0
    late: int = 0

    def add(self, m: Message) -> None:
        self.sent += 1
        if not m.valid:
            self.malformed[m.bad_reason] += 1
            return
        if m.duplicate:
            self.duplicates += 1
        place = m.payload.get("city") or m.payload.get("region")
        self.events[m.event_id] = (m.family, place)

    def counts(self) -> Counter:
        return Counter(self.events.values())

    @property
    def rows(self) -> int:
        return len(self.events)


def simulated_feed(seed: int, count: int, bad_rate: float = 0.03) -> list[Message]:
    """A feed with every fault: duplicates, late (out of order) and malformed messages, all families.

    Event times start early enough that the feed, and every drained lifecycle after it (a few
    hours at most), ends in the past: an event in the future would rightly be dead-lettered.
    """
    cfg = SimConfig(
        seed=seed, rate=3.0, incident_share=0.1, integrity_share=0.01, late_rate=0.05,
        duplicate_rate=0.03, bad_rate=bad_rate, daily_profile=False,
    )  # fmt: skip
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=8, seconds=count / cfg.rate)
    msgs = list(Simulator(cfg, "test-salt").messages(start, count=count, drain=True))
    late = sum(
        1 for a, b in zip(msgs, msgs[1:], strict=False)
        if a.payload and b.payload and b.payload["event_time"] < a.payload["event_time"]
    )  # fmt: skip
    assert late and any(m.duplicate for m in msgs), "the feed must exercise the guarantees"
    assert bad_rate == 0 or any(not m.valid for m in msgs)
    return msgs


def produce(settings: Settings, msgs: list[Message], truth: Truth) -> None:
    ensure_topics(settings)
    pub = Publisher(make_producer(settings))
    for m in msgs:
        pub.send(settings.topic(m.family), m.key, m.value)
        truth.add(m)
    pub.close()


def clickhouse_counts(settings: Settings) -> Counter:
    try:
        client = connect(settings)
    except Exception:
        return Counter()  # the worker has not created the database yet
    out: Counter = Counter()
    for family in INPUT_FAMILIES:  # the derived tables (join outputs) are not part of the feed
        spec = TABLES[family]
        place = "region" if family == "integrity" else "city"
        try:
            rows = client.query(f"SELECT {place}, count() FROM {spec.table} GROUP BY {place}").result_rows
        except Exception:
            return Counter()  # not migrated yet
        for p, n in rows:
            out[(family, p)] = n
    return out


def wait_rows(settings: Settings, minimum: int, timeout_s: float = 60, interval_s: float = 0.3) -> None:
    """Wait until ClickHouse holds at least ``minimum`` rows in all tables (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while sum(clickhouse_counts(settings).values()) < minimum and time.monotonic() < deadline:
        time.sleep(interval_s)


def wait_for_truth(settings: Settings, truth: Truth, timeout_s: float = 120) -> Counter:
    """Wait until ClickHouse holds as many rows as the truth, then a little longer: a late double
    would show up then."""
    deadline = time.monotonic() + timeout_s
    counts: Counter = Counter()
    while time.monotonic() < deadline:
        counts = clickhouse_counts(settings)
        if sum(counts.values()) >= truth.rows:
            time.sleep(2)
            return clickhouse_counts(settings)
        time.sleep(0.5)
    return counts


def deadletters(settings: Settings) -> list:
    c = KafkaConsumer(
        settings.topic_deadletter,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=4000,
        isolation_level="read_committed",  # aborted flushes' dead letters are not part of the topic
    )
    out = list(c)
    c.close()
    return out


def wait_committed(settings: Settings, timeout_s: float = 120) -> None:
    """Wait until the ingest group has committed every input partition up to its log end: the
    worker has read, stored (or dead-lettered) and committed everything produced so far."""
    from kafka import KafkaAdminClient, TopicPartition

    conf = dict(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_config())
    admin, consumer = KafkaAdminClient(**conf), KafkaConsumer(**conf)
    try:
        tps = [
            TopicPartition(settings.topic(f), p)
            for f in INPUT_FAMILIES
            for p in sorted(consumer.partitions_for_topic(settings.topic(f)) or ())
        ]
        ends = consumer.end_offsets(tps)

        def behind() -> int:
            group = settings.consumer_group
            done = admin.list_group_offsets({group: None}).get(group, {})
            return sum(max(ends[tp] - getattr(done.get(tp), "offset", 0), 0) for tp in tps)

        left = poll(behind, lambda n: n == 0, timeout_s, every_s=0.5)
        assert left == 0, f"{left} messages still uncommitted after {timeout_s} s"
    finally:
        consumer.close()
        admin.close()


def poll(fetch: Callable[[], T], done: Callable[[T], bool], timeout_s: float, every_s: float = 2) -> T:
    """``fetch()`` again every ``every_s`` until ``done`` holds or time is up; the last result."""
    deadline = time.monotonic() + timeout_s
    got = fetch()
    while not done(got) and time.monotonic() < deadline:
        time.sleep(every_s)
        got = fetch()
    return got


def assert_exact(settings: Settings, truth: Truth, timeout_s: float = 120) -> None:
    counts = wait_for_truth(settings, truth, timeout_s)
    expected = truth.counts()
    assert sum(counts.values()) == truth.rows, f"{sum(counts.values())} rows stored, {truth.rows} true"
    assert counts == expected
    # A worker killed inside a transaction holds read_committed readers back until the broker
    # aborts it (the worker's transaction timeout, 10 s, plus the broker's 10 s check): wait it out.
    malformed = sum(truth.malformed.values())
    dead = poll(lambda: deadletters(settings), lambda d: len(d) >= malformed, 60)
    assert Counter(dict(m.headers)["dozor.reason"].decode() for m in dead) == truth.malformed
