"""Creating Dozor's Kafka topics with the configured partitions and replication."""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from dozor.settings import Settings

__all__ = ["ensure_topics", "dozor_topics"]

log = logging.getLogger("dozor.infra.topics")


def dozor_topics(settings: Settings) -> dict[str, dict[str, str]]:
    """Every topic Dozor owns, with its topic-level configuration."""
    from dozor.schemas import PUBLISHED

    day_ms = 24 * 3600 * 1000
    inputs_ms = str(int(settings.topic_retention_days * day_ms))
    topics = {
        fam.topic(settings.topic_prefix): {"retention.ms": inputs_ms, "compression.type": "producer"}
        for fam in PUBLISHED.values()
    }
    month_ms = str(int(settings.derived_topic_retention_days * day_ms))
    # Derived streams are what downstream teams build on (DOZOR_DERIVED_TOPIC_RETENTION_DAYS, a
    # month by default), so a consumer can be rebuilt.
    # Response times are keyed by incident and revised in place, so compaction keeps the latest
    # revision of every incident as well (README, output topics).
    for version in ("v1", "v2"):
        topics[PUBLISHED[f"response_times.{version}"].topic(settings.topic_prefix)] = {
            "retention.ms": month_ms, "cleanup.policy": "compact,delete"
        }  # fmt: skip
    topics[settings.topic("alerts")] = {"retention.ms": month_ms}
    topics[settings.topic("city_figures")] = {"retention.ms": month_ms}
    # The join's changelog, created here rather than by faust: a join worker starting beside the
    # ingest worker otherwise raced faust's own creation and crashed on PartitionsMismatch. Same
    # partition count as its source topics (co-partitioning); compacted, it is the state itself.
    topics[settings.topic_join_changelog] = {"cleanup.policy": "compact"}
    # Rejected input is evidence: kept as long as the derived streams, to inspect and replay.
    topics[settings.topic_deadletter] = {"retention.ms": month_ms}
    return topics


def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; returns the names created now. Existing topics are left as they are."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_config()
    )
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                name,
                settings.topic_partitions,
                settings.topic_replication_factor,
                topic_configs=conf,
            )
            for name, conf in dozor_topics(settings).items()
            if name not in existing
        ]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process won the race; the topic is there, which is all we need
            log.info("created topics %s", ", ".join(t.name for t in wanted))
        return [t.name for t in wanted]
    finally:
        admin.close()
