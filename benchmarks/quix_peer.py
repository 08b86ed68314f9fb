"""The peer for benchmarks/pipeline.py: validate → deduplicate → insert written with quixstreams.

Benchmark-only (quixstreams is not a product dependency). It runs the same validator, the same
event-id lookup and the same clickhouse-connect inserts as Dozor's worker, so the comparison is of
the stream frameworks, not of the work. Usage (by pipeline.py):

    python benchmarks/quix_peer.py BOOTSTRAP TOPIC GROUP CLICKHOUSE_URL DATABASE
"""

from __future__ import annotations

import sys

from quixstreams import Application
from quixstreams.sinks.base import BatchingSink, SinkBatch

from dozor.schemas import InvalidEvent, parse_event
from dozor.settings import Settings
from dozor.streams.sink import TABLES, ClickHouseWriter, PartitionBatch, Row


class DozorClickHouseSink(BatchingSink):
    """quixstreams hands a batch per topic-partition at each checkpoint; insert it like Dozor does."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        from dozor.clickhouse import connect
        from dozor.enrich import Enricher

        self.writer = ClickHouseWriter(connect(settings), TABLES["violations"])
        self.enricher = Enricher(settings.mci_kzt)

    def write(self, batch: SinkBatch) -> None:
        pb = PartitionBatch(batch.topic, batch.partition, "violations")
        spec = TABLES["violations"]
        for item in batch:
            ev = item.value
            pb.cover(item.offset)
            row = spec.row(ev, self.enricher.extras(ev), batch.partition, item.offset)
            row[spec.district_index] = self.enricher.district(ev)  # as the worker does
            pb.rows.append(Row(ev.event_id, ev.event_time.timestamp(), row))
        self.writer.write([pb])


def main() -> None:
    bootstrap, topic_name, group, url, database = sys.argv[1:6]
    settings = Settings(kafka_bootstrap_servers=bootstrap, clickhouse_url=url, clickhouse_database=database)
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=1.0,
        loglevel="WARNING",
        use_changelog_topics=False,
    )
    topic = app.topic(topic_name, value_deserializer="bytes", key_deserializer="bytes")
    sdf = app.dataframe(topic)

    def validate(value: bytes, key: object, timestamp: int, headers: object) -> object:
        try:
            return parse_event("violations", value)
        except InvalidEvent:
            return None

    sdf = sdf.apply(validate, metadata=True).filter(lambda ev: ev is not None)
    sdf.sink(DozorClickHouseSink(settings))
    app.run()


if __name__ == "__main__":
    main()
