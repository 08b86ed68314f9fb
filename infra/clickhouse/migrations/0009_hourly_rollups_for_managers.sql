-- Hourly roll-ups for the managers' pages (CompStat, trends, heat maps) over months and years.
-- A year of violations_by_minute is ~60× the rows of a year of hours; an hour still gives every
-- local day (Kazakhstan's offsets are whole hours, UTC+6 before 2024-03-01 and UTC+5 since) and the
-- hour-of-day × weekday heat map. Raw rows stay the truth for percentiles (incident_responses).
--
-- The backfills copy what the per-minute tables hold; the views add everything inserted after.
-- Migrations run before any worker ingests, and the tokens make a second application a no-op.
-- A backfill may span more than 100 monthly partitions (years of history): the limit is lifted
-- for it alone.

CREATE TABLE IF NOT EXISTS violations_by_hour
(
    hour            DateTime('UTC'),
    city            LowCardinality(String),
    district        LowCardinality(String),
    violation_type  LowCardinality(String),
    violations      UInt64,
    fines_kzt       UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (city, hour, district, violation_type)
SETTINGS non_replicated_deduplication_window = 100;

CREATE MATERIALIZED VIEW IF NOT EXISTS violations_by_hour_mv TO violations_by_hour AS
SELECT toStartOfHour(event_time) AS hour, city, district, violation_type,
       count() AS violations, sum(fine_kzt) AS fines_kzt
FROM violations
GROUP BY hour, city, district, violation_type;

INSERT INTO violations_by_hour (hour, city, district, violation_type, violations, fines_kzt)
SETTINGS insert_deduplication_token = '0009_violations_by_hour_backfill', max_partitions_per_insert_block = 0
SELECT toStartOfHour(minute) AS h, city, district, violation_type, sum(violations), sum(fines_kzt)
FROM violations_by_minute GROUP BY h, city, district, violation_type ORDER BY h;

CREATE TABLE IF NOT EXISTS incidents_by_hour
(
    hour      DateTime('UTC'),
    city      LowCardinality(String),
    district  LowCardinality(String),
    category  LowCardinality(String),
    channel   LowCardinality(String),
    priority  UInt8,
    opened    UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (city, hour, district, category, channel, priority)
SETTINGS non_replicated_deduplication_window = 100;

CREATE MATERIALIZED VIEW IF NOT EXISTS incidents_by_hour_mv TO incidents_by_hour AS
SELECT toStartOfHour(event_time) AS hour, city, district, category, channel, priority, count() AS opened
FROM incident_events
WHERE status = 'opened'
GROUP BY hour, city, district, category, channel, priority;

INSERT INTO incidents_by_hour (hour, city, district, category, channel, priority, opened)
SETTINGS insert_deduplication_token = '0009_incidents_by_hour_backfill', max_partitions_per_insert_block = 0
SELECT toStartOfHour(minute) AS h, city, district, category, channel, priority, sum(opened)
FROM incidents_by_minute GROUP BY h, city, district, category, channel, priority ORDER BY h;

-- What `dozor backfill` generated: the pages say "simulated" for any range that overlaps one.
CREATE TABLE IF NOT EXISTS simulated_history
(
    generated_at  DateTime64(3, 'UTC') DEFAULT now64(3),
    first_day     Date,
    last_day      Date,
    violations    UInt64,
    incidents     UInt64,
    seed          UInt32
)
ENGINE = MergeTree
ORDER BY generated_at;
