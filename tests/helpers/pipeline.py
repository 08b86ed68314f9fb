"""Helpers shared by the end-to-end and browser tests: produce known events, wait for the worker."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field

from dozor.clickhouse import connect
from dozor.infra.topics import ensure_topics
from dozor.producers.kafka import make_producer
from dozor.producers.simulator import SimConfig, Simulator
from dozor.settings import Settings

#: Malformed messages of several kinds, each with the reason the worker must give.
MALFORMED = [
    (b"{not json", "malformed_json"),
    (b"[1, 2, 3]", "malformed_json"),
    (b'{"schema_version": 99}', "unsupported_version"),
    (b'{"event_id": "x"}', "schema"),
    (b"", "malformed_json"),
]


@dataclass
class Produced:
    """Ground truth of what a test sent."""

    per_city: Counter = field(default_factory=Counter)
    malformed: list[tuple[bytes, str]] = field(default_factory=list)

    @property
    def valid(self) -> int:
        return sum(self.per_city.values())


def produce_violations(settings: Settings, n: int, seed: int = 7, malformed_every: int = 0) -> Produced:
    """Send ``n`` valid simulated violations stamped within the last 50 s, plus malformed ones."""
    ensure_topics(settings)
    cfg = SimConfig(
        seed=seed, rate=n / 50, incident_share=0, integrity_share=0, call_share=0, late_rate=0,
        duplicate_rate=0, daily_profile=False,
    )  # fmt: skip
    producer = make_producer(settings)
    truth = Produced()
    now = dt.datetime.now(dt.UTC)
    bad = iter(MALFORMED * (n // max(malformed_every, 1) + 1))
    msgs = Simulator(cfg, settings.plate_salt.get_secret_value()).messages(
        now - dt.timedelta(seconds=55), count=n
    )
    for i, m in enumerate(msgs):
        producer.send(settings.topic_violations, key=m.key, value=m.value)
        truth.per_city[m.payload["city"]] += 1
        if malformed_every and i % malformed_every == 0:
            raw, reason = next(bad)
            producer.send(settings.topic_violations, key=b"bad", value=raw)
            truth.malformed.append((raw, reason))
    producer.flush()
    producer.close()
    return truth


def clickhouse_counts(settings: Settings) -> Counter:
    rows = connect(settings).query("SELECT city, count() FROM violations GROUP BY city").result_rows
    return Counter({c: n for c, n in rows})


def wait_for_rows(settings: Settings, expected: int, timeout_s: float = 120.0) -> Counter:
    """Poll ClickHouse until it holds ``expected`` rows (or the timeout), returning per-city counts."""
    deadline = time.monotonic() + timeout_s
    counts: Counter = Counter()
    while time.monotonic() < deadline:
        try:
            counts = clickhouse_counts(settings)
        except Exception:
            counts = Counter()  # database not migrated yet: the worker is still starting
        if sum(counts.values()) >= expected:
            return counts
        time.sleep(0.5)
    return counts
