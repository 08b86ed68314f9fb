-- "Incidents open now" reads only recent incidents: incident_status is incident_state re-keyed by
-- the day each incident was opened, so the wall screen's filter on the last few days is a range of
-- the primary key instead of a scan of every incident ever recorded (119 ms at 30 days of history
-- on the benchmark machine; benchmarks/results/wall_queries.txt).
--
-- "Open" is "no closed or cancelled event yet" (ended = 0): the join uses the same rule (the earliest
-- terminal event ends an incident), and a max over a flag merges far cheaper than argMax over a
-- status (FINAL over 3 days of incidents: ~15 ms instead of ~100 ms).
--
-- Every event of an incident repeats its opened_at, so opened_day is the same in all of them and
-- the rows of one incident still merge into one. All columns are min/max/argMax states, so the
-- backfill may overlap with rows the new view already added: adding a row twice changes nothing.

CREATE TABLE IF NOT EXISTS incident_status
(
    city        LowCardinality(String),
    opened_day  Date,
    incident_id String,
    district    SimpleAggregateFunction(max, String),
    priority    SimpleAggregateFunction(max, UInt8),
    opened_at   SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_change SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    ended       SimpleAggregateFunction(max, UInt8),
    status      AggregateFunction(argMax, String, Tuple(DateTime64(3, 'UTC'), UInt8))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(opened_day)
ORDER BY (city, opened_day, incident_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS incident_status_mv TO incident_status AS
SELECT city, day AS opened_day, incident_id, max(district) AS district,
       max(priority) AS priority, min(opened) AS opened_at, max(event_time) AS last_change,
       max(toUInt8(st IN ('closed', 'cancelled'))) AS ended,
       argMaxState(toString(st), (event_time, toUInt8(indexOf(['opened', 'in_progress', 'closed', 'cancelled'], st)))) AS status
FROM (SELECT *, opened_at AS opened, status AS st, toDate(opened_at) AS day FROM incident_events)
GROUP BY city, day, incident_id;

INSERT INTO incident_status
SELECT city, toDate(opened_at) AS day, incident_id, max(district), max(priority), min(opened_at),
       max(event_time), max(toUInt8(status IN ('closed', 'cancelled'))),
       argMaxState(toString(status), (event_time, toUInt8(indexOf(['opened', 'in_progress', 'closed', 'cancelled'], status))))
FROM incident_events
GROUP BY city, day, incident_id;

DROP VIEW IF EXISTS incident_state_mv;
DROP TABLE IF EXISTS incident_state;
