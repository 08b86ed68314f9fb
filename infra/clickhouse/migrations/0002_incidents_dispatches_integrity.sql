-- Raw incident events (opened, status changes, closure): one row per accepted event.
-- Ordered by (city, event_time) like violations: the figures filter by city and time, and the
-- worker's deduplication looks event ids up by event-time range.
CREATE TABLE IF NOT EXISTS incident_events
(
    event_id      UUID,
    event_time    DateTime64(3, 'UTC'),
    ingest_time   DateTime64(3, 'UTC') DEFAULT now64(3),
    incident_id   String,
    status        LowCardinality(String),
    channel       LowCardinality(String),
    category      LowCardinality(String),
    priority      UInt8,
    city          LowCardinality(String),
    district      LowCardinality(String),
    lat           Float64,
    lon           Float64,
    opened_at     DateTime64(3, 'UTC'),
    src_partition UInt16,
    src_offset    UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (city, event_time)
SETTINGS non_replicated_deduplication_window = 10000;

-- Raw dispatch events: a unit's assignment to an incident, step by step.
CREATE TABLE IF NOT EXISTS dispatch_events
(
    event_id      UUID,
    event_time    DateTime64(3, 'UTC'),
    ingest_time   DateTime64(3, 'UTC') DEFAULT now64(3),
    dispatch_id   String,
    incident_id   String,
    unit_id       LowCardinality(String),
    crew_type     LowCardinality(String),
    status        LowCardinality(String),
    city          LowCardinality(String),
    district      LowCardinality(String),
    src_partition UInt16,
    src_offset    UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (city, event_time)
SETTINGS non_replicated_deduplication_window = 10000;

-- Integrity reports: region, kind and service only; no officer is identifiable.
CREATE TABLE IF NOT EXISTS integrity_reports
(
    event_id      UUID,
    event_time    DateTime64(3, 'UTC'),
    ingest_time   DateTime64(3, 'UTC') DEFAULT now64(3),
    region        LowCardinality(String),
    kind          LowCardinality(String),
    service       LowCardinality(String),
    src_partition UInt16,
    src_offset    UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (region, event_time)
SETTINGS non_replicated_deduplication_window = 10000;
