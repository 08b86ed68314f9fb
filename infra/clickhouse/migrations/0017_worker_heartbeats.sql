-- The ingest workers' heartbeat (issue #26): every few seconds each worker records that it is
-- reading, and how far behind the log end it is. The wall judges "stale" by this, not by the newest
-- event: at a real country's pace a city is quiet for minutes at night, and a quiet city is not a
-- stopped feed. Kept a week (the wall reads the last minute).
CREATE TABLE IF NOT EXISTS worker_heartbeats
(
    at         DateTime64(3, 'UTC'),
    worker     String,
    partitions UInt16,
    lag        UInt64
)
ENGINE = MergeTree
ORDER BY at
TTL toDateTime(at) + INTERVAL 7 DAY;
