-- city_figures is now stored by the ingest worker from the city_figures topic, like response
-- times and alerts (docs/guarantees.md, "Derived outputs"), instead of by the figures publisher.
-- The ingest's sink needs what every table it writes has: the event time (its duplicate lookup reads
-- by event-time ranges), the Kafka position of the message, and the time it was stored (dozor status
-- reads every ingested table's freshness from it).
ALTER TABLE city_figures ADD COLUMN IF NOT EXISTS event_time DateTime64(3, 'UTC') DEFAULT minute + 60 AFTER event_id;
ALTER TABLE city_figures ADD COLUMN IF NOT EXISTS src_partition UInt16 DEFAULT 0;
ALTER TABLE city_figures ADD COLUMN IF NOT EXISTS src_offset UInt64 DEFAULT 0;
ALTER TABLE city_figures ADD COLUMN IF NOT EXISTS ingest_time DateTime64(3, 'UTC') DEFAULT now64(3);
-- The sink's retries carry an insert_deduplication_token, which a MergeTree honours only with a window.
ALTER TABLE city_figures MODIFY SETTING non_replicated_deduplication_window = 10000;
