-- Enrichment columns and the aggregating tables every figure is read from.
--
-- Why materialized views: the wall screens ask "this minute / today / against yesterday" every
-- few seconds, and managers ask for 30-day trends; reading raw rows for those grows with traffic.
-- Each view below runs on every insert into its raw table and adds the insert's rows to a small
-- per-minute table, so a figure over 30 days reads 30 × 1440 rows per city at most.
-- Exactly once carries over: the worker inserts each event once (streams/sink.py), and an insert
-- that ClickHouse discards by its deduplication token is not passed to the views either.
-- Summing/Aggregating tables merge in the background: always read them with sum()/…Merge() and
-- GROUP BY, never as if one row were one key (dashboard/queries.py does).

ALTER TABLE violations ADD COLUMN IF NOT EXISTS fine_mci UInt16 DEFAULT 0 AFTER plate_masked;
ALTER TABLE violations ADD COLUMN IF NOT EXISTS fine_kzt UInt32 DEFAULT 0 AFTER fine_mci;

-- Violations per city, district, type and minute (event time, UTC).
CREATE TABLE IF NOT EXISTS violations_by_minute
(
    minute          DateTime('UTC'),
    city            LowCardinality(String),
    district        LowCardinality(String),
    violation_type  LowCardinality(String),
    violations      UInt64,
    fines_kzt       UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (city, minute, district, violation_type);

CREATE MATERIALIZED VIEW IF NOT EXISTS violations_by_minute_mv TO violations_by_minute AS
SELECT toStartOfMinute(event_time) AS minute, city, district, violation_type,
       count() AS violations, sum(fine_kzt) AS fines_kzt
FROM violations
GROUP BY minute, city, district, violation_type;

-- Incidents opened per city, district, category, channel, priority and minute.
CREATE TABLE IF NOT EXISTS incidents_by_minute
(
    minute    DateTime('UTC'),
    city      LowCardinality(String),
    district  LowCardinality(String),
    category  LowCardinality(String),
    channel   LowCardinality(String),
    priority  UInt8,
    opened    UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (city, minute, district, category, channel, priority);

CREATE MATERIALIZED VIEW IF NOT EXISTS incidents_by_minute_mv TO incidents_by_minute AS
SELECT toStartOfMinute(event_time) AS minute, city, district, category, channel, priority,
       count() AS opened
FROM incident_events
WHERE status = 'opened'
GROUP BY minute, city, district, category, channel, priority;

-- Each incident's latest status: "open now" is a scan of incidents, not of their events.
-- The status rank breaks ties between events of the same millisecond in lifecycle order.
CREATE TABLE IF NOT EXISTS incident_state
(
    city        LowCardinality(String),
    incident_id String,
    district    SimpleAggregateFunction(max, String),
    priority    SimpleAggregateFunction(max, UInt8),
    opened_at   SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_change SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    status      AggregateFunction(argMax, String, Tuple(DateTime64(3, 'UTC'), UInt8))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(opened_at)
ORDER BY (city, incident_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS incident_state_mv TO incident_state AS
SELECT city, incident_id, max(district) AS district, max(priority) AS priority,
       min(opened_at) AS opened_at, max(event_time) AS last_change,
       argMaxState(toString(status), (event_time, toUInt8(indexOf(['opened', 'in_progress', 'closed', 'cancelled'], status)))) AS status
FROM incident_events
GROUP BY city, incident_id;

-- Each unit's latest dispatch status: units en route / on scene / free, now.
CREATE TABLE IF NOT EXISTS unit_state
(
    city        LowCardinality(String),
    unit_id     String,
    last_change SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    status      AggregateFunction(argMax, String, Tuple(DateTime64(3, 'UTC'), UInt8))
)
ENGINE = AggregatingMergeTree
ORDER BY (city, unit_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS unit_state_mv TO unit_state AS
SELECT city, unit_id, max(event_time) AS last_change,
       argMaxState(toString(status), (event_time, toUInt8(indexOf(['assigned', 'en_route', 'on_scene', 'cleared'], status)))) AS status
FROM dispatch_events
GROUP BY city, unit_id;
