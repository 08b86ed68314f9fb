"""The faust worker: the ingest service (Kafka → ClickHouse, exactly once), the incident join
(response times, waiting alerts), the city figures and spike alerts, the sink, dead letters,
metrics, status and the reconciliation (``verify``)."""

__all__ = [
    "app",
    "deadletter",
    "faults",
    "figures",
    "ingest",
    "join_state",
    "metrics",
    "responses",
    "sink",
    "spikes",
    "status",
    "verify",
]
