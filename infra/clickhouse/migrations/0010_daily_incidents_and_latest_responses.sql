-- Two read models for the managers' queries over a year or more (benchmarks/results/manager_queries.txt):
--
-- incidents_by_day: incidents opened per Kazakhstan day (Asia/Almaty, the display zone) and
-- district, category, channel, priority. CompStat reads two years of it; the hourly table has 24
-- times its rows. Filled from the hourly roll-up (an hour lies in one local day: the zone's
-- offsets are whole hours), then by its view.
--
-- incident_response_latest: one row per incident and revision, replaced by the newest revision
-- (ReplacingMergeTree(revision), read with FINAL): the join republishes an incident when a late
-- step arrives, and every response figure counts an incident's latest record once. Keyed by
-- opening day (UTC) so a range of opening times reads only its days. Filled from
-- incident_responses, then by its view.

CREATE TABLE IF NOT EXISTS incidents_by_day
(
    day       Date,
    city      LowCardinality(String),
    district  LowCardinality(String),
    category  LowCardinality(String),
    channel   LowCardinality(String),
    priority  UInt8,
    opened    UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (city, day, district, category, channel, priority)
SETTINGS non_replicated_deduplication_window = 100;

CREATE MATERIALIZED VIEW IF NOT EXISTS incidents_by_day_mv TO incidents_by_day AS
SELECT toDate(event_time, 'Asia/Almaty') AS day, city, district, category, channel, priority, count() AS opened
FROM incident_events
WHERE status = 'opened'
GROUP BY day, city, district, category, channel, priority;

INSERT INTO incidents_by_day (day, city, district, category, channel, priority, opened)
SETTINGS insert_deduplication_token = '0010_incidents_by_day_backfill', max_partitions_per_insert_block = 0
SELECT toDate(hour, 'Asia/Almaty') AS d, city, district, category, channel, priority, sum(opened)
FROM incidents_by_hour GROUP BY d, city, district, category, channel, priority ORDER BY d;

CREATE TABLE IF NOT EXISTS incident_response_latest
(
    city                  LowCardinality(String),
    opened_day            Date,
    incident_id           String,
    revision              UInt32,
    district              LowCardinality(String),
    priority              UInt8,
    category              LowCardinality(String),
    channel               LowCardinality(String),
    opened_at             DateTime64(3, 'UTC'),
    time_to_assignment_s  Nullable(Float64),
    time_to_arrival_s     Nullable(Float64),
    time_to_closure_s     Float64,
    arrival_target_s      UInt32,
    arrived_within_target Nullable(Bool)
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(opened_day)
ORDER BY (city, opened_day, incident_id)
SETTINGS non_replicated_deduplication_window = 100;

CREATE MATERIALIZED VIEW IF NOT EXISTS incident_response_latest_mv TO incident_response_latest AS
SELECT city, toDate(opened_at) AS opened_day, incident_id, revision, district, priority, category, channel,
       opened_at, time_to_assignment_s, time_to_arrival_s, time_to_closure_s, arrival_target_s,
       arrived_within_target
FROM incident_responses;

INSERT INTO incident_response_latest
SETTINGS insert_deduplication_token = '0010_incident_response_latest_backfill', max_partitions_per_insert_block = 0
SELECT city, toDate(opened_at), incident_id, revision, district, priority, category, channel, opened_at,
       time_to_assignment_s, time_to_arrival_s, time_to_closure_s, arrival_target_s, arrived_within_target
FROM incident_responses;
