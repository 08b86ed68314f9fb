"""Outages, restarts, kills, poison messages, duplicates and authenticated Kafka."""
