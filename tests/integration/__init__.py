"""Tests against the real Kafka broker and ClickHouse endpoint, one per session."""

__all__: list[str] = []
