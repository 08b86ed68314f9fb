"""The ingest hot path: Kafka → validate → ClickHouse, in batches, offsets committed after inserts.

Why a batch loop and not a faust agent: faust's per-event stream path (an ``asyncio.wait`` and
several futures per message) was measured at ~14k events/s on this class of machine, while the same
consumer group read with aiokafka's ``getmany`` reaches ~1M/s (shared ARCHITECTURE.md). So the loop
below is a :class:`mode.Service` started by the faust App (``app.add_dependency``): it shares the
worker's lifecycle, logging and web server, and uses aiokafka directly for the hot path.

Every flush (:meth:`IngestService._flush`) does, in this order:

1. for each table, look up which event ids are already stored and insert only the new rows, with
   a deduplication token (:mod:`dozor.streams.sink`);
2. in one Kafka transaction, send the flush's rejected messages to the dead-letter topic and
   commit the offsets of every partition read (``send_offsets_to_transaction``).

A crash anywhere before the transaction commits re-delivers the batch: the lookups make the
repeated inserts change nothing, and the aborted transaction's dead letters are never seen by a
``read_committed`` consumer, so the dead-letter topic holds each rejected message exactly once.
ClickHouse unavailable: the batch is held (nothing committed) and retried with backoff; no new
messages are read meanwhile, so consumption pauses instead of buffering without bound.
When a rebalance revokes partitions, everything read so far is flushed and committed first
(commit on revoke), so the next owner starts exactly where this worker stopped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import socket
import time
import uuid

import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CorruptRecordException, KafkaError, UnsupportedCodecError

from dozor.clickhouse import connect
from dozor.enrich import Enricher
from dozor.errors import ClickHouseUnavailable
from dozor.localtime import day_start
from dozor.schemas import (
    EARLIEST_EVENT,
    ENGINE_EARLIEST,
    FAMILIES,
    UNIT_ID_RE,
    InvalidEvent,
    is_historical,
    parse_event,
)
from dozor.settings import Settings
from dozor.streams.deadletter import Rejected, deadletter_record
from dozor.streams.faults import failpoint
from dozor.streams.metrics import (
    CLICKHOUSE_FAILURES,
    CONSUMER_LAG,
    DEADLETTERED,
    EVENT_TIME_LAG,
    EVENTS_IN,
    FETCH_ERRORS,
    FLUSH_SECONDS,
    PAUSED,
)
from dozor.streams.sink import TABLES, ClickHouseWriter, PartitionBatch, Row, StorageRefusal

__all__ = ["IngestService", "validate_records", "INGESTED_FAMILIES"]

log = logging.getLogger("dozor.ingest")

#: The families this service stores, each in its table in TABLES: every input and every derived
#: family, so what the workers derive takes the path the inputs take (docs/guarantees.md).
INGESTED_FAMILIES = tuple(f for f in FAMILIES if f in TABLES)

#: Backoff while ClickHouse is away: start fast (a restart takes seconds), cap so recovery is quick.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0

#: aiokafka leaves the group if getmany is not called within max_poll_interval; holding a batch
#: through a long ClickHouse outage must not cost the partitions (faust notes §5).
MAX_POLL_INTERVAL_MS = 30 * 60 * 1000

#: Fetch errors that mean a batch cannot be decoded (rather than the broker being away).
UNDECODABLE = (CorruptRecordException, UnsupportedCodecError)
#: How long a probe for an undecodable batch waits for one partition's fetch.
PROBE_TIMEOUT_MS = 5_000

#: How often a worker records its heartbeat (worker_heartbeats, migration 0017), and its columns.
HEARTBEAT_S = 10.0
HEARTBEAT_COLUMNS = ("at", "worker", "partitions", "lag")

#: On shutdown, how long to wait for the batch in hand to be flushed and committed.
SHUTDOWN_DRAIN_S = 30.0


def validate_records(
    records: list, batch: PartitionBatch, enricher: Enricher, unit_id: re.Pattern[str] = UNIT_ID_RE,
    earliest: dt.datetime = EARLIEST_EVENT, retained_since: dt.datetime | None = None,
) -> float | None:  # fmt: skip
    """Validate and enrich records into ``batch.rows`` and ``batch.rejected``; return the newest
    event time (a POSIX timestamp).

    Runs in a thread: validating a 50k batch takes long enough to delay heartbeats on the loop.
    """
    spec = TABLES[batch.family]
    district_at = spec.district_index
    day_only = spec.day_only
    newest: float | None = None
    # One clock reading per batch, not per event: the batch spans under a second, the future-time
    # limit is ten minutes, and reading the clock per event halved validation throughput.
    now = dt.datetime.now(dt.UTC)
    if records:  # in offset order: every message read counts, valid or dead-lettered
        batch.cover(records[0].offset)
        batch.cover(records[-1].offset)
    for rec in records:
        try:
            raw = rec.value if rec.value is not None else b""
            # A historical import's messages may be as old as the engine stores (its header says).
            oldest = ENGINE_EARLIEST if rec.headers and is_historical(rec.headers) else earliest
            ev = parse_event(batch.family, raw, now, unit_id, oldest, retained_since)
        except InvalidEvent as e:
            batch.rejected.append(
                Rejected(rec.topic, rec.partition, rec.offset, rec.key, rec.value, e.reason, e.detail)
            )
            continue
        row = spec.row(ev, enricher.extras(ev), rec.partition, rec.offset)
        if district_at is not None:
            # The resolved id goes straight into the row: a model_copy per renamed district cost
            # as much as the rest of the enrichment.
            row[district_at] = enricher.district(ev)
        d = ev.__dict__
        ts = d["event_time"].timestamp()
        if day_only:
            ts = day_start(ts, d.get("region") or d.get("city") or "")
            row[1] = dt.datetime.fromtimestamp(ts, dt.UTC)
        batch.rows.append(Row(d["event_id"], ts, row, rec))
        if newest is None or ts > newest:
            newest = ts
    return newest


def _storage_rejection(refusal: StorageRefusal) -> Rejected:
    """A row ClickHouse refused, as a dead letter carrying the message as it arrived."""
    rec = refusal.row.source
    code = refusal.error.code
    detail = f"ClickHouse {'code ' + str(code) if code is not None else 'client'}: {refusal.error}"
    return Rejected(rec.topic, rec.partition, rec.offset, rec.key, rec.value, "storage", detail)


class _Revocations(ConsumerRebalanceListener):
    def __init__(self, service: IngestService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Flush everything read so far (insert, then commit), while this worker still owns it.

        aiokafka runs this in its coordinator task, concurrently with the ingest loop, and hands the
        partitions to their next owner only when it returns. Flushing here (commit on revoke, as
        Kafka's own consumers do) leaves committed offsets equal to what was stored, so the next
        owner neither re-inserts rows this worker wrote nor skips rows it read. Two designs that
        looked simpler failed the tests: dropping unflushed rows lost some (a fetch in flight
        returned later offsets, whose commit skipped the dropped ones), and not waiting for a flush
        in flight let the next owner insert the same rows.
        """
        failpoint("on_revoke")
        svc = self.service
        async with svc.flush_lock:
            await svc._settle()
            if svc.pending:
                batches, svc.pending = svc.pending, {}
                await svc._flush(batches)
            # A commit that failed now is not retried here: the partitions' next owners (this
            # worker too, after the rebalance) start from the committed offsets.
            svc._rewind = {}
        if revoked:
            log.info("partitions revoked: %s", sorted(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned:
            log.info("partitions assigned: %s", sorted(assigned))


class IngestService(mode.Service):
    """Consumes the input topics and keeps ClickHouse's raw tables complete, each event once."""

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.family_of = {settings.topic(f): f for f in INGESTED_FAMILIES}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._writers: dict[str, ClickHouseWriter] = {}
        self._enricher = Enricher(settings.mci_kzt)
        self.pending: dict[TopicPartition, PartitionBatch] = {}
        self.last_flush_monotonic: float | None = None
        self.clickhouse_ok = True
        self.fetch_ok = True
        self.flush_lock = asyncio.Lock()
        #: The flush in flight (at most one), and where to read again if its commit failed.
        self._flushing: asyncio.Task[None] | None = None
        self._rewind: dict[TopicPartition, int] = {}
        self._loop_running = False
        self._loop_done = asyncio.Event()
        self._worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._beat_at = 0.0
        self._lag = 0
        self._beating: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        s = self.settings
        common = dict(bootstrap_servers=s.kafka_bootstrap_servers, **s.kafka_client_config(aiokafka=True))
        self._consumer = AIOKafkaConsumer(
            group_id=s.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **common,
        )
        self._consumer.subscribe(list(self.family_of), listener=_Revocations(self))
        # One transactional id per worker process: dead letters and offsets commit atomically.
        self._producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            transactional_id=f"{s.consumer_group}-{uuid.uuid4()}",
            # A worker killed inside a transaction leaves it open, and read_committed readers of
            # the dead-letter topic stop at it until the broker aborts it. A transaction here only
            # sends dead letters and commits offsets (milliseconds), so 10 s bounds that stall
            # instead of aiokafka's 60 s default.
            transaction_timeout_ms=10_000,
            **common,
        )
        await self._producer.start()
        await self._consumer.start()
        client = await asyncio.to_thread(connect, s)
        self._writers = {f: ClickHouseWriter(client, TABLES[f]) for f in INGESTED_FAMILIES}
        log.info("ingest consuming %s as group %s", ", ".join(self.family_of), s.consumer_group)

    async def on_stop(self) -> None:
        # mode calls on_stop *before* cancelling the service's tasks. Stopping the producer while
        # the loop is inside a flush left a transaction open; a read_committed consumer of the
        # dead-letter topic then stalled at it until the transaction timed out. So let the loop
        # see should_stop, make its last flush and commit, and only then close the clients.
        if self._loop_running:
            try:
                await asyncio.wait_for(self._loop_done.wait(), timeout=SHUTDOWN_DRAIN_S)
            except TimeoutError:
                log.warning("ingest loop did not finish within %.0f s; stopping anyway", SHUTDOWN_DRAIN_S)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    @mode.Service.task
    async def _run(self) -> None:
        assert self._consumer is not None
        self._loop_running = True
        try:
            await self._consume()
        finally:
            self._loop_done.set()

    async def _consume(self) -> None:
        """Read and validate the next batch while the previous one is written (one flush in flight).

        The two overlap because they use different resources: validation is this process's CPU,
        while most of a flush is waiting for ClickHouse (another process) and the broker. Flushes
        stay strictly sequential, so a batch's duplicate lookup sees every row of the one before.
        """
        assert self._consumer is not None
        try:
            while not self.should_stop:
                newest = await self._read_batch()
                async with self.flush_lock:
                    await self._settle()
                    if self.pending:
                        batches, self.pending = self.pending, {}
                        self._flushing = asyncio.create_task(self._flush(batches))
                now = time.time()
                for family, t in newest.items():
                    EVENT_TIME_LAG.labels(self.settings.topic(family)).set(now - t)
                await self._record_lag()
                self._heartbeat()
        finally:
            async with self.flush_lock:
                await self._settle()

    async def _read_batch(self) -> dict[str, float]:
        """Fetch and validate into :attr:`pending` until the batch is full or its time is up."""
        assert self._consumer is not None
        s = self.settings
        newest: dict[str, float] = {}
        deadline = time.monotonic() + s.batch_max_seconds
        read = 0
        while read < s.batch_max_rows and time.monotonic() < deadline and not self.should_stop:
            try:
                got = await self._consumer.getmany(
                    timeout_ms=max(1, int((deadline - time.monotonic()) * 1000)),
                    max_records=s.batch_max_rows - read,
                )
            except KafkaError as e:
                # aiokafka decodes batches lazily and raises here (corrupt CRC, a codec it
                # cannot undo) without handing over the bytes: find that batch and dead-letter
                # it. Anything else (the broker away): stay up, say so, retry; the worker
                # reports itself degraded until the fetch succeeds.
                FETCH_ERRORS.labels(type(e).__name__).inc()
                if isinstance(e, UNDECODABLE) and await self._skip_unreadable(e):
                    continue
                self.fetch_ok = False
                log.error("fetching from Kafka failed, retrying in 1 s: %s: %s", type(e).__name__, e)
                await asyncio.sleep(1.0)
                continue
            self.fetch_ok = True
            async with self.flush_lock:
                # A rebalance may have run while fetching: records of partitions no longer
                # ours belong to their new owner, who reads them from the committed offset.
                assigned = self._consumer.assignment()
                for tp, records in got.items():
                    if tp not in assigned:
                        continue
                    EVENTS_IN.labels(tp.topic).inc(len(records))
                    read += len(records)
                    batch = self._pending_for(tp)
                    t = await asyncio.to_thread(
                        validate_records,
                        records,
                        batch,
                        self._enricher,
                        self.settings.unit_id_re,
                        self.settings.earliest_event,
                        self.settings.retained_since(batch.family),
                    )
                    if t is not None and (batch.family not in newest or t > newest[batch.family]):
                        newest[batch.family] = t
        return newest

    def assigned(self) -> list[str]:
        """The partitions this worker owns now, as ``topic[partition]``: which worker reads what."""
        if self._consumer is None:
            return []
        return [f"{tp.topic}[{tp.partition}]" for tp in sorted(self._consumer.assignment())]

    def _pending_for(self, tp: TopicPartition) -> PartitionBatch:
        """The batch under construction for ``tp``, started if this is its first record."""
        batch = self.pending.get(tp)
        if batch is None:
            batch = self.pending[tp] = PartitionBatch(tp.topic, tp.partition, self.family_of[tp.topic])
        return batch

    async def _skip_unreadable(self, error: KafkaError) -> bool:
        """Dead-letter the batch a partition cannot decode and read on after it; False if none found.

        aiokafka raises a CRC or codec error from ``getmany`` without the batch's bytes, drops the
        good records fetched with it, and raises again on every later fetch: the partition would
        stall for good. So the partition is read one record at a time up to the failing offset
        (the one its error message names first, else each in turn), and offsets after it are
        tried one by one: the broker answers a fetch with the whole batch holding an offset, so
        the first that reads starts the next batch. Each offset in between gets a dead letter with
        reason ``undecodable``, an empty value (the bytes cannot be had) and its source
        coordinates, so an operator can find the batch in the log; they commit with the next
        flush, as any rejected message does. Only a log damaged after the broker accepted it gets
        here: the broker validates every batch it takes, and every codec Kafka has is installed
        with the worker.
        """
        assert self._consumer is not None
        c = self._consumer
        async with self.flush_lock:
            assigned = sorted(c.assignment())
            named = [tp for tp in assigned if str(tp) in str(error)]
            for tp in named or assigned:
                start = await self._read_up_to_failure(tp)
                if start is None:
                    continue
                end = (await c.end_offsets([tp]))[tp]
                after = start + 1
                while after < end and not await self._readable(tp, after):
                    after += 1
                batch = self._pending_for(tp)
                detail = f"batch at offsets {start}-{after - 1} failed to decode: {error}"
                for offset in range(start, after):
                    batch.cover(offset)
                    batch.rejected.append(
                        Rejected(tp.topic, tp.partition, offset, None, b"", "undecodable", detail)
                    )
                c.seek(tp, after)
                log.error("%s; dead-lettered, reading on from offset %d", detail, after)
                return True
        return False

    async def _read_up_to_failure(self, tp: TopicPartition) -> int | None:
        """Take in ``tp``'s records one at a time; the offset that fails to decode, None if none does.

        Stops at the log end seen when it started. The records read go into :attr:`pending` like
        any others. Callers hold :attr:`flush_lock`.
        """
        assert self._consumer is not None
        c = self._consumer
        end = c.highwater(tp)
        while end is not None and await c.position(tp) < end:
            try:
                got = await c.getmany(tp, timeout_ms=PROBE_TIMEOUT_MS, max_records=1)
            except UNDECODABLE:
                return await c.position(tp)
            records = got.get(tp, [])
            if not records:
                return None
            EVENTS_IN.labels(tp.topic).inc(len(records))
            batch = self._pending_for(tp)
            validate_records(
                records, batch, self._enricher, self.settings.unit_id_re, self.settings.earliest_event,
                self.settings.retained_since(batch.family),
            )  # fmt: skip
        return None

    async def _readable(self, tp: TopicPartition, offset: int) -> bool:
        """Whether a fetch of ``tp`` from ``offset`` decodes; the position is left at ``offset``."""
        assert self._consumer is not None
        self._consumer.seek(tp, offset)
        try:
            await self._consumer.getmany(tp, timeout_ms=PROBE_TIMEOUT_MS, max_records=1)
            return True
        except UNDECODABLE:
            return False
        finally:
            self._consumer.seek(tp, offset)

    async def _settle(self) -> None:
        """Wait for the flush in flight; if its commit failed, read its batch again.

        Callers hold :attr:`flush_lock`. A failed commit means the batch's dead letters were
        aborted with its transaction, so everything read since its first offsets is dropped and
        the consumer seeks back there: the rows are found already stored by the lookup, and the
        dead letters are sent again. Partitions no longer ours are left to their next owner, who
        starts at the committed offset anyway.
        """
        if self._flushing is not None:
            task, self._flushing = self._flushing, None
            await task
        if self._rewind:
            assert self._consumer is not None
            assigned = self._consumer.assignment()
            for tp, offset in self._rewind.items():
                if tp in assigned:
                    self._consumer.seek(tp, offset)
            log.warning("re-reading %d partition(s) from their last commit", len(self._rewind))
            self._rewind = {}
            self.pending = {}

    async def _flush(self, batches: dict[TopicPartition, PartitionBatch]) -> None:
        """Write ``batches`` to ClickHouse, then commit their offsets and dead letters in one transaction."""
        assert self._consumer is not None
        t0 = time.perf_counter()
        rejected = [r for b in batches.values() for r in b.rejected]
        by_family: dict[str, list[PartitionBatch]] = {}
        for b in batches.values():
            by_family.setdefault(b.family, []).append(b)
        failpoint("before_insert")
        for i, (family, group) in enumerate(sorted(by_family.items())):
            if i:
                failpoint("between_tables")
            rejected += await self._write_until_done(family, group)
        failpoint("after_insert")
        offsets = {tp: b.last_offset + 1 for tp, b in batches.items()}
        assert self._producer is not None
        try:
            async with self._producer.transaction():
                await self._deadletter(rejected)
                await self._producer.send_offsets_to_transaction(offsets, self.settings.consumer_group)
            for r in rejected:
                DEADLETTERED.labels(r.topic, r.reason).inc()
        except KafkaError as e:
            # The group moved on (a rebalance) or the broker went away: the transaction is aborted
            # and the batch is read again from its first offsets (see _settle); the lookups make
            # the repeated inserts a no-op.
            log.warning("committing offsets and dead letters failed; the batch will be read again: %s", e)
            self._rewind = {tp: b.first_offset for tp, b in batches.items()}
        self.last_flush_monotonic = time.monotonic()
        FLUSH_SECONDS.observe(time.perf_counter() - t0)

    async def _write_until_done(self, family: str, group: list[PartitionBatch]) -> list[Rejected]:
        """Store ``group``'s rows; return the ones ClickHouse refused, for the dead-letter topic.

        Acts on the sink's typed errors: unavailability (the server away, overloaded, or answering
        "written" for rows it did not store) holds the batch and retries with backoff, consumption
        paused; rows whose values the engine refuses are dead-lettered with reason ``storage`` and
        the server's code and text, while the rest of the batch is stored (inside ``write``). An
        unexpected error is held and retried too, logged with its traceback as the bug it is:
        dropping the rows would lose them, and a bug is not an outage to wait out quietly.
        """
        writer = self._writers[family]
        delay = RETRY_FIRST_S
        while True:
            error: Exception
            try:
                _, refused = await asyncio.to_thread(writer.write, group)
            except ClickHouseUnavailable as e:
                self._held(writer.spec.table, f"ClickHouse is unavailable: {e}", bug=False)
                error, wait = e, max(delay, e.retry_after)
            except Exception as e:
                self._held(writer.spec.table, f"{type(e).__name__}: {e}", bug=True)
                error, wait = e, delay
            else:
                if not self.clickhouse_ok:
                    log.info("ClickHouse is back; ingest resumed")
                self.clickhouse_ok = True
                PAUSED.set(0)
                return [_storage_rejection(r) for r in refused]
            if self.should_stop:
                raise error  # the offsets stay uncommitted: the next owner reads the batch again
            await asyncio.sleep(wait)
            delay = min(delay * 2, RETRY_MAX_S)

    def _held(self, table: str, why: str, bug: bool) -> None:
        """A write failed and its batch is held: pause consumption, and say so once per outage."""
        CLICKHOUSE_FAILURES.labels(table).inc()
        if self.clickhouse_ok and bug:
            log.exception("writing to %s failed unexpectedly; holding the batch and retrying: %s", table, why)
        elif self.clickhouse_ok:
            log.error("write to %s held, consumption paused, retrying with backoff: %s", table, why)
        self.clickhouse_ok = False
        PAUSED.set(1)

    async def _deadletter(self, rejected: list[Rejected]) -> None:
        """Send rejected messages with the reason in headers; the value is the original bytes.

        Called inside the flush's transaction: nothing here is visible until the offsets commit.
        """
        if not rejected:
            return
        assert self._producer is not None
        now = dt.datetime.now(dt.UTC).isoformat().encode()
        futures = []
        for r in rejected:
            value, headers = deadletter_record(r, now)
            futures.append(
                await self._producer.send(
                    self.settings.topic_deadletter, value=value, key=r.key, headers=headers
                )
            )
            log.warning(
                "dead-lettered %s[%d]@%d: %s (%s)", r.topic, r.partition, r.offset, r.reason, r.detail[:200]
            )
        await asyncio.gather(*futures)

    async def _record_lag(self) -> None:
        """Consumer lag per partition: the log end the last fetch saw minus our position."""
        c = self._consumer
        if c is None:
            return
        total = 0
        for tp in c.assignment():
            end = c.highwater(tp)
            if end is not None:
                lag = max(0, end - await c.position(tp))
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
                total += lag
        self._lag = total

    def _heartbeat(self) -> None:
        """Every :data:`HEARTBEAT_S`, record in ClickHouse that this worker reads and how far behind
        it is: what the wall calls a live feed (a quiet city at night is not a stopped one). In the
        background, one at a time; a failure is logged and the next beat tries again."""
        now = time.monotonic()
        if now - self._beat_at < HEARTBEAT_S or (self._beating is not None and not self._beating.done()):
            return
        self._beat_at = now
        assigned = len(self._consumer.assignment()) if self._consumer is not None else 0
        row = [dt.datetime.now(dt.UTC), self._worker_id, assigned, self._lag]
        writer = next(iter(self._writers.values()), None)
        if writer is None:
            return

        async def beat() -> None:
            try:
                await asyncio.to_thread(
                    writer.client.insert,
                    "worker_heartbeats",
                    [row],
                    column_names=list(HEARTBEAT_COLUMNS),
                )
            except Exception as e:  # noqa: BLE001 - a missed beat is not a reason to stop ingesting
                log.warning("heartbeat not recorded: %s", e)

        self._beating = asyncio.create_task(beat())
