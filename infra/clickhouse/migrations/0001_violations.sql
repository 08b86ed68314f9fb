-- Raw traffic-camera violations, one row per accepted event.
--
-- Ordered by (city, event_time) because every dashboard figure filters by city and a time range
-- ("Astana today", "all cities this minute"); partitioned by day so retention drops whole parts.
-- non_replicated_deduplication_window makes a re-sent insert with the same
-- insert_deduplication_token a no-op on plain MergeTree (it is 0, i.e. off, by default).
CREATE TABLE IF NOT EXISTS violations
(
    event_id        UUID,
    event_time      DateTime64(3, 'UTC'),
    ingest_time     DateTime64(3, 'UTC') DEFAULT now64(3),
    city            LowCardinality(String),
    district        LowCardinality(String),
    camera_id       LowCardinality(String),
    violation_type  LowCardinality(String),
    lat             Float64,
    lon             Float64,
    speed_kmh       Nullable(UInt16),
    speed_limit_kmh Nullable(UInt16),
    plate_hash      FixedString(64),
    plate_masked    String,
    src_partition   UInt16,
    src_offset      UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (city, event_time)
SETTINGS non_replicated_deduplication_window = 10000;
