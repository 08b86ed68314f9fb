"""What puts events into Kafka: the simulator, the replay of real exports (``replay``), the Kafka
publisher they share (``kafka``, ``publish``), and the simulated history generated inside
ClickHouse (``backfill``)."""

__all__ = ["backfill", "kafka", "publish", "replay", "simulator"]
