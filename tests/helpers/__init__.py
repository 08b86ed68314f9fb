"""What tests share, one home each: ``ports`` (free loopback ports), ``endpoint`` (a ClickHouse
endpoint process), ``stack`` (worker commands, producing feeds with their truth, waiting for
ClickHouse and Kafka), ``pipeline`` (the walking skeleton's feed), ``truth`` (figures computed from
what was produced), ``schema_consumer`` (reading an output topic against its JSON Schema),
``examples`` (docs/examples paths) and ``chromium`` (the browser's path and flags).

Tests import from here, never from another test module or a ``conftest``."""
