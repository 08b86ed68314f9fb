-- Derived streams stored for the dashboards: per-incident response times and alerts.
--
-- incident_responses holds every revision the join published (a late dispatch step revises an
-- incident's figures); read the latest per incident: ORDER BY revision DESC LIMIT 1 BY incident_id.
-- Ordered by (city, event_time) like the raw tables: the worker's deduplication looks event ids up
-- by event-time range, and every figure filters by city and time.
CREATE TABLE IF NOT EXISTS incident_responses
(
    event_id              UUID,
    event_time            DateTime64(3, 'UTC'),
    ingest_time           DateTime64(3, 'UTC') DEFAULT now64(3),
    incident_id           String,
    revision              UInt32,
    status                LowCardinality(String),
    city                  LowCardinality(String),
    district              LowCardinality(String),
    priority              UInt8,
    category              LowCardinality(String),
    channel               LowCardinality(String),
    opened_at             DateTime64(3, 'UTC'),
    first_assigned_at     Nullable(DateTime64(3, 'UTC')),
    first_on_scene_at     Nullable(DateTime64(3, 'UTC')),
    closed_at             DateTime64(3, 'UTC'),
    time_to_assignment_s  Nullable(Float64),
    time_to_arrival_s     Nullable(Float64),
    time_to_closure_s     Float64,
    arrival_target_s      UInt32,
    arrived_within_target Nullable(Bool),
    src_partition         UInt16,
    src_offset            UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (city, event_time)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS alerts
(
    event_id      UUID,
    event_time    DateTime64(3, 'UTC'),
    ingest_time   DateTime64(3, 'UTC') DEFAULT now64(3),
    kind          LowCardinality(String),
    city          LowCardinality(String),
    district      LowCardinality(String),
    incident_id   Nullable(String),
    priority      Nullable(UInt8),
    waited_s      Nullable(Float64),
    target_s      Nullable(UInt32),
    detail        String,
    src_partition UInt16,
    src_offset    UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (city, event_time)
SETTINGS non_replicated_deduplication_window = 10000;
