"""What tests share, one home each: ``ports`` (free loopback ports), ``endpoint`` (a ClickHouse
endpoint process), ``stack`` (worker commands, producing feeds with their truth, waiting for
ClickHouse and Kafka), ``pipeline`` (the walking skeleton's feed), ``truth`` (figures computed from
what was produced), ``schema_consumer`` (reading an output topic against its JSON Schema),
``examples`` (docs/examples paths), ``chromium`` (the browser's path and flags) and ``apptest``
(a Streamlit page under AppTest as a user of a given scope).

Tests import from here, never from another test module or a ``conftest``."""

__all__ = [
    "apptest",
    "chromium",
    "endpoint",
    "examples",
    "pipeline",
    "ports",
    "schema_consumer",
    "stack",
    "truth",
]
