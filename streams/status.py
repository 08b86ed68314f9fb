"""What ``dozor status`` reports for a running stack: lag, rates, dead letters, freshness.

Read from Kafka (the consumer group's committed offsets against the log ends) and ClickHouse (rows
stored in the last minute), not from the workers, so it answers even when no worker runs — which
is exactly when a duty engineer needs it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from dozor.clickhouse import connect
from dozor.settings import Settings
from dozor.streams.ingest import INGESTED_FAMILIES
from dozor.streams.sink import TABLES

__all__ = ["TopicStatus", "TableStatus", "Status", "collect"]


@dataclass(frozen=True)
class TopicStatus:
    topic: str
    end: int
    committed: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


@dataclass(frozen=True)
class TableStatus:
    table: str
    rows: int
    last_minute: int
    newest: dt.datetime | None


@dataclass(frozen=True)
class Status:
    topics: list[TopicStatus]
    deadletters: int
    tables: list[TableStatus]
    #: Committed dead letters per reason (dozor.schemas.REASONS).
    deadletter_reasons: dict[str, int] = field(default_factory=dict)

    def render(self) -> str:
        now = dt.datetime.now(dt.UTC)
        out = [f"{'input topic':<34} {'log end':>10} {'committed':>10} {'lag':>8}"]
        out += [f"{t.topic:<34} {t.end:>10,} {t.committed:>10,} {t.lag:>8,}" for t in self.topics]
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(self.deadletter_reasons.items()))
        out.append(f"dead letters: {self.deadletters:,}" + (f" ({reasons})" if reasons else ""))
        out.append("")
        out.append(f"{'table':<20} {'rows':>12} {'ingested/min':>13} {'newest event':>14}")
        for t in self.tables:
            age = f"{(now - t.newest).total_seconds():,.0f} s ago" if t.newest else "—"
            out.append(f"{t.table:<20} {t.rows:>12,} {t.last_minute:>13,} {age:>14}")
        out.append("")
        out.append("`dozor verify` accounts for every consumed message (stored, dead-lettered, duplicate).")
        return "\n".join(out)


def collect(settings: Settings) -> Status:
    conf = dict(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_config())
    admin = KafkaAdminClient(**conf)
    consumer = KafkaConsumer(**conf)
    try:
        group = settings.consumer_group
        committed = {
            tp: getattr(meta, "offset", meta)
            for tp, meta in admin.list_group_offsets({group: None}).get(group, {}).items()
        }
        topics = []
        for family in INGESTED_FAMILIES:
            topic = settings.topic(family)
            parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            ends = consumer.end_offsets(tps) if tps else {}
            topics.append(
                TopicStatus(topic, sum(ends.values()), sum(max(committed.get(tp, 0), 0) for tp in tps))
            )
        reasons = _deadletter_reasons(settings, conf)
    finally:
        consumer.close()
        admin.close()
    client = connect(settings)
    tables = []
    for family in INGESTED_FAMILIES:
        table = TABLES[family].table
        rows, minute, newest = client.query(
            f"SELECT count(), countIf(ingest_time >= now64(3) - INTERVAL 60 SECOND), max(event_time) "  # noqa: S608
            f"FROM {table}"
        ).result_rows[0]
        newest = newest.replace(tzinfo=dt.UTC) if newest and newest.tzinfo is None else newest
        tables.append(TableStatus(table, int(rows), int(minute), newest if rows else None))
    return Status(topics, sum(reasons.values()), tables, reasons)


def _deadletter_reasons(settings: Settings, conf: dict) -> dict[str, int]:
    """Committed dead letters by reason, read from the topic itself (read_committed: a flush that
    was aborted and sent again counts once; the log end would count commit markers too)."""
    from dozor.streams.verify import read_all

    consumer = KafkaConsumer(enable_auto_commit=False, isolation_level="read_committed", **conf)
    try:
        messages = read_all(consumer, settings.topic_deadletter)
        return dict(Counter(dict(m.headers).get("dozor.reason", b"?").decode() for m in messages))
    finally:
        consumer.close()
