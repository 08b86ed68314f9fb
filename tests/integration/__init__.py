"""Tests against the real Kafka broker and ClickHouse endpoint, one per session."""
