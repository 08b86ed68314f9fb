-- A position is optional (issue #19): many CAD and camera exports carry none, and an event without
-- one is still counted by its district. Both coordinates, or neither (the schema says so).
ALTER TABLE violations MODIFY COLUMN lat Nullable(Float64);
ALTER TABLE violations MODIFY COLUMN lon Nullable(Float64);
ALTER TABLE incident_events MODIFY COLUMN lat Nullable(Float64);
ALTER TABLE incident_events MODIFY COLUMN lon Nullable(Float64);
