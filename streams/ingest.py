"""The ingest hot path: Kafka → validate → ClickHouse, in batches, with commits after inserts.

Why a batch loop and not a faust agent: faust's per-event stream path (one ``asyncio.wait`` and
several futures per message) was measured at ~14k events/s on this class of machine, while the
same consumer group read with aiokafka's ``getmany`` reaches ~1M/s (shared ARCHITECTURE.md). So
the loop below is a :class:`mode.Service` started by the faust App (``app.add_dependency``): it
shares the worker's lifecycle, logging and web server, and uses aiokafka directly for the hot path.

Durability, in order, for every flush (see :meth:`IngestService._flush`):

1. insert each partition's rows with a deterministic deduplication token;
2. send the batch's rejected messages to the dead-letter topic and wait for the broker's ack;
3. only then commit the partitions' offsets.

A crash anywhere before 3 re-delivers the batch; the repeated insert is discarded by ClickHouse.
ClickHouse unavailable: the batch is held (not acked, not committed) and retried with backoff;
no new messages are read meanwhile, so consumption pauses instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterable

import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from dozor.clickhouse import connect
from dozor.schemas import InvalidEvent, parse_violation
from dozor.settings import Settings
from dozor.streams.metrics import (
    CLICKHOUSE_FAILURES,
    CONSUMER_LAG,
    DEADLETTERED,
    EVENT_TIME_LAG,
    EVENTS_IN,
    PAUSED,
)
from dozor.streams.sink import VIOLATION_COLUMNS, ClickHouseWriter, PartitionBatch, violation_row

__all__ = ["IngestService", "Rejected", "validate_records"]

log = logging.getLogger("dozor.ingest")

#: Backoff while ClickHouse is away: start fast (a restart takes seconds), cap so recovery is quick.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 15.0

#: aiokafka leaves the group if getmany is not called within max_poll_interval; holding a batch
#: through a long ClickHouse outage must not cost the partitions (faust notes §5).
MAX_POLL_INTERVAL_MS = 30 * 60 * 1000


class Rejected:
    """A message refused by validation, on its way to the dead-letter topic."""

    __slots__ = ("record", "reason", "detail")

    def __init__(self, record: ConsumerRecord, reason: str, detail: str) -> None:
        self.record, self.reason, self.detail = record, reason, detail


def validate_records(
    records: Iterable[ConsumerRecord], batch: PartitionBatch, rejected: list[Rejected]
) -> dt.datetime | None:
    """Validate records into ``batch.rows`` and ``rejected``; return the newest event time seen.

    Runs in a thread: pydantic validation of a 50k batch takes long enough to delay heartbeats.
    """
    newest: dt.datetime | None = None
    for rec in records:
        batch.cover(rec.offset)
        try:
            ev = parse_violation(rec.value if rec.value is not None else b"")
        except InvalidEvent as e:
            rejected.append(Rejected(rec, e.reason, e.detail))
            continue
        batch.rows.append(violation_row(ev, rec.partition, rec.offset))
        if newest is None or ev.event_time > newest:
            newest = ev.event_time
    return newest


class IngestService(mode.Service):
    """Consumes the violations topic and keeps ClickHouse's ``violations`` table complete."""

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.topic = settings.topic_violations
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._writer: ClickHouseWriter | None = None
        self.last_flush_monotonic: float | None = None
        self.clickhouse_ok = True

    async def on_start(self) -> None:
        s = self.settings
        common = dict(bootstrap_servers=s.kafka_bootstrap_servers, **s.kafka_client_config())
        self._consumer = AIOKafkaConsumer(
            self.topic,
            group_id=s.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **common,
        )
        self._producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **common)
        await self._producer.start()
        await self._consumer.start()
        self._writer = ClickHouseWriter(await asyncio.to_thread(connect, s), "violations", VIOLATION_COLUMNS)
        log.info("ingest consuming %s as group %s", self.topic, s.consumer_group)

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    @mode.Service.task
    async def _run(self) -> None:
        assert self._consumer is not None
        s = self.settings
        while not self.should_stop:
            batches: dict[TopicPartition, PartitionBatch] = {}
            rejected: list[Rejected] = []
            newest: dt.datetime | None = None
            deadline = time.monotonic() + s.batch_max_seconds
            rows = 0
            while rows < s.batch_max_rows and time.monotonic() < deadline and not self.should_stop:
                got = await self._consumer.getmany(
                    timeout_ms=max(1, int((deadline - time.monotonic()) * 1000)),
                    max_records=s.batch_max_rows - rows,
                )
                for tp, records in got.items():
                    EVENTS_IN.labels(tp.topic).inc(len(records))
                    batch = batches.setdefault(tp, PartitionBatch(tp.topic, tp.partition))
                    before = len(batch.rows) + len(rejected)
                    t = await asyncio.to_thread(validate_records, records, batch, rejected)
                    rows += len(batch.rows) + len(rejected) - before
                    if t is not None and (newest is None or t > newest):
                        newest = t
            if batches:
                await self._flush(batches, rejected)
                if newest is not None:
                    EVENT_TIME_LAG.labels(self.topic).set((dt.datetime.now(dt.UTC) - newest).total_seconds())
            await self._record_lag()

    async def _flush(self, batches: dict[TopicPartition, PartitionBatch], rejected: list[Rejected]) -> None:
        assert self._consumer is not None and self._writer is not None
        for batch in batches.values():
            await self._insert_until_done(batch)
        await self._deadletter(rejected)
        offsets = {tp: b.last_offset + 1 for tp, b in batches.items()}
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as e:
            # The group moved on (rebalance): the new owner re-reads from the last commit, and its
            # repeated inserts carry the same tokens only if its batches line up; see the note in
            # docs/guarantees.md on what the event-id deduplication adds.
            log.warning("offset commit failed, batch will be re-read: %s", e)
        self.last_flush_monotonic = time.monotonic()

    async def _insert_until_done(self, batch: PartitionBatch) -> None:
        assert self._writer is not None
        delay = RETRY_FIRST_S
        while True:
            try:
                await asyncio.to_thread(self._writer.insert, batch)
                if not self.clickhouse_ok:
                    log.info("ClickHouse is back; ingest resumed")
                self.clickhouse_ok = True
                PAUSED.set(0)
                return
            except Exception as e:  # network, HTTP 5xx, server errors: all are held and retried
                CLICKHOUSE_FAILURES.labels("violations").inc()
                if self.clickhouse_ok:
                    log.error("ClickHouse insert failed, pausing ingest and retrying: %s", e)
                self.clickhouse_ok = False
                PAUSED.set(1)
                if self.should_stop:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    async def _deadletter(self, rejected: list[Rejected]) -> None:
        """Send rejected messages with the reason in headers; the value is the original bytes."""
        if not rejected:
            return
        assert self._producer is not None
        now = dt.datetime.now(dt.UTC).isoformat().encode()
        futures = []
        for r in rejected:
            rec = r.record
            headers = [
                ("dozor.reason", r.reason.encode()),
                ("dozor.detail", r.detail[:1000].encode()),
                ("dozor.source.topic", rec.topic.encode()),
                ("dozor.source.partition", str(rec.partition).encode()),
                ("dozor.source.offset", str(rec.offset).encode()),
                ("dozor.failed_at", now),
            ]
            futures.append(
                await self._producer.send(
                    self.settings.topic_deadletter, value=rec.value, key=rec.key, headers=headers
                )
            )
            DEADLETTERED.labels(rec.topic, r.reason).inc()
            log.warning(
                "dead-lettered %s[%d]@%d: %s (%s)",
                rec.topic, rec.partition, rec.offset, r.reason, r.detail[:200],
            )  # fmt: skip
        await asyncio.gather(*futures)

    async def _record_lag(self) -> None:
        """Consumer lag per partition: the log end the last fetch saw minus our position."""
        c = self._consumer
        if c is None:
            return
        for tp in c.assignment():
            end = c.highwater(tp)
            if end is not None:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - await c.position(tp)))
