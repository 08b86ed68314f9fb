-- Simulated history is marked from its first row and can be resumed (issue #26): `dozor up`'s
-- first start writes a row with complete = 0 before it generates anything, so the pages say
-- "simulated" even if the generation is interrupted, and the next start finishes the same range
-- (every generated insert carries a deduplication token, so what was written is not written again).
-- Rows written before this migration were complete.
ALTER TABLE simulated_history ADD COLUMN IF NOT EXISTS complete UInt8 DEFAULT 1;
