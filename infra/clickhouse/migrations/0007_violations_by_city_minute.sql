-- Violations per city and minute: the wall screen's "last hour / today / yesterday" for every city
-- read ~50 rows per city and minute of violations_by_minute (districts × types); this roll-up has
-- one. On 30 days of history the query's p95 went from 30–33 ms to 23 ms, most of which is the
-- endpoint's fixed cost per query (~10 ms on an empty table; benchmarks/results/wall_queries.txt).
--
-- The backfill copies what violations_by_minute holds; the view adds everything inserted after it
-- exists. Like every migration it runs before the worker ingests (dozor up and `dozor worker` apply
-- migrations first), so nothing is inserted between the two; the deduplication token makes a
-- second application of the backfill (two workers starting together) a no-op.

CREATE TABLE IF NOT EXISTS violations_by_city_minute
(
    minute      DateTime('UTC'),
    city        LowCardinality(String),
    violations  UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (city, minute)
SETTINGS non_replicated_deduplication_window = 100;

CREATE MATERIALIZED VIEW IF NOT EXISTS violations_by_city_minute_mv TO violations_by_city_minute AS
SELECT toStartOfMinute(event_time) AS minute, city, count() AS violations
FROM violations
GROUP BY minute, city;

INSERT INTO violations_by_city_minute (minute, city, violations)
SETTINGS insert_deduplication_token = '0007_violations_by_city_minute_backfill'
SELECT minute, city, sum(violations) FROM violations_by_minute GROUP BY minute, city ORDER BY minute, city;
