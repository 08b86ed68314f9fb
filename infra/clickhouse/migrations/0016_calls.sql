-- Raw 102 call events from the call centre's telephony (issue #27): one row per accepted moment of a
-- call (offered, answered, abandoned, transferred, ended). No caller, no operator: a call is its id,
-- channel and place; who answered is an operator position. Ordered by (city, event_time) like the
-- other raw tables: the figures filter by city and time, the worker's deduplication looks event ids
-- up by event-time range. A call's figures (answer time, abandonment) are computed from its events
-- grouped by call_id: every event repeats offered_at, so the wait is known from any one of them.
CREATE TABLE IF NOT EXISTS call_events
(
    event_id      UUID,
    event_time    DateTime64(3, 'UTC'),
    ingest_time   DateTime64(3, 'UTC') DEFAULT now64(3),
    call_id       String,
    status        LowCardinality(String),
    channel       LowCardinality(String),
    city          LowCardinality(String),
    district      LowCardinality(String),
    offered_at    DateTime64(3, 'UTC'),
    position_id   LowCardinality(Nullable(String)),
    incident_id   Nullable(String),
    src_partition UInt16,
    src_offset    UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (city, event_time)
SETTINGS non_replicated_deduplication_window = 10000;
