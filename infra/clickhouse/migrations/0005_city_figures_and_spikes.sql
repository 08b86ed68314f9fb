-- Per-minute city figures as published on the city_figures topic, and the spike alerts' figures.
--
-- city_figures is written by the figures publisher itself (streams/figures.py), after the message is
-- on the topic: it is the publisher's memory of what it published (revision and content), read back
-- when it starts, and the 30-day trend of response-time percentiles for the dashboards (percentiles
-- cannot be summed from raw minutes, so they are kept as published). Several revisions of a minute
-- may be stored until merges: read with FINAL, or argMax(…, revision).
CREATE TABLE IF NOT EXISTS city_figures
(
    city              LowCardinality(String),
    minute            DateTime('UTC'),
    revision          UInt32,
    event_id          UUID,
    published_at      DateTime64(3, 'UTC') DEFAULT now64(3),
    violations        UInt32,
    incidents_opened  UInt32,
    responses_closed  UInt32,
    response_p50_s    Nullable(Float64),
    response_p90_s    Nullable(Float64),
    late_events       UInt32,
    digest            String,
    body              String
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(minute)
ORDER BY (city, minute);

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS observed Nullable(UInt32) AFTER target_s;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS baseline Nullable(Float64) AFTER observed;
