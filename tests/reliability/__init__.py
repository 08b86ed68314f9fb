"""Outages, restarts, kills, poison messages, duplicates and authenticated Kafka."""

__all__: list[str] = []
