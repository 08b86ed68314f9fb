"""Prometheus metrics of a worker, served at ``/metrics`` by the faust web server."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "EVENTS_IN",
    "ROWS_WRITTEN",
    "NOT_STORED",
    "DEADLETTERED",
    "INSERT_SECONDS",
    "BATCH_ROWS",
    "CONSUMER_LAG",
    "EVENT_TIME_LAG",
    "CLICKHOUSE_FAILURES",
    "PAUSED",
    "DUPLICATES",
    "FLUSH_SECONDS",
    "FETCH_ERRORS",
    "JOIN_EVENTS",
    "JOIN_OUTPUTS",
    "JOIN_STATE",
    "JOIN_EXPIRED",
    "LATE_EVENTS",
    "FIGURES_FAILURES",
]

EVENTS_IN = Counter("dozor_events_in_total", "Messages read from input topics", ["topic"])
ROWS_WRITTEN = Counter("dozor_rows_written_total", "Rows inserted into ClickHouse", ["table"])
NOT_STORED = Counter(
    "dozor_rows_not_stored_total",
    "Rows ClickHouse answered as written but did not store (the flush is retried, never committed)",
    ["table"],
)
DEADLETTERED = Counter(
    "dozor_deadletter_total", "Messages sent to the dead-letter topic", ["topic", "reason"]
)
INSERT_SECONDS = Histogram(
    "dozor_clickhouse_insert_seconds",
    "ClickHouse insert latency",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOOKUP_SECONDS = Histogram(
    "dozor_clickhouse_lookup_seconds",
    "Latency of the duplicate lookup before each insert (grows with the event-time span of a batch)",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_ROWS = Histogram(
    "dozor_batch_rows",
    "Rows per ClickHouse insert",
    ["table"],
    buckets=(1, 10, 100, 1000, 5000, 10000, 50000),
)
DUPLICATES = Counter(
    "dozor_duplicates_total", "Events dropped because their event_id was already stored", ["table"]
)
CONSUMER_LAG = Gauge("dozor_consumer_lag", "Messages behind the log end", ["topic", "partition"])
EVENT_TIME_LAG = Gauge(
    "dozor_event_time_lag_seconds", "Ingest time minus the newest event time written", ["topic"]
)
CLICKHOUSE_FAILURES = Counter(
    "dozor_clickhouse_failures_total", "Failed insert attempts (each retried)", ["table"]
)
PAUSED = Gauge("dozor_ingest_paused", "1 while consumption waits for ClickHouse to come back")
FLUSH_SECONDS = Histogram(
    "dozor_flush_seconds",
    "One flush: lookups, inserts, dead letters and the offset commit",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
FETCH_ERRORS = Counter(
    "dozor_fetch_errors_total",
    "Fetches that failed in the Kafka client (e.g. a batch it could not decode); retried",
    ["error"],
)
JOIN_EVENTS = Counter(
    "dozor_join_events_total", "Incident and dispatch events merged by the join", ["family"]
)
JOIN_OUTPUTS = Counter("dozor_join_outputs_total", "Messages the join published", ["topic"])
JOIN_STATE = Gauge("dozor_join_incidents", "Incidents held in this worker's join table")
JOIN_EXPIRED = Counter(
    "dozor_join_expired_total", "Incidents dropped from the join table after the retention (closed ones)"
)
LATE_EVENTS = Counter(
    "dozor_late_events_total",
    "Events that arrived after their minute's city figures were published (each revises the minute)",
    ["family"],
)
FIGURES_FAILURES = Counter(
    "dozor_figures_failures_total", "Figures ticks that could not read or record ClickHouse (retried)"
)
