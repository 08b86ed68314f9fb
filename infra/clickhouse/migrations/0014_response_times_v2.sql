-- Response times version 2 (issue #19): the join publishes an incident's response times as soon as
-- a unit is on scene, before the closure, and the ingest stores that stream. An open incident has no
-- closure yet, and many dispatch exports never give one: its closure time and time to closure are
-- null until it closes. Percentiles of time to closure skip the nulls; every figure by closure time
-- (the wall's, the city figures') reads closed and cancelled records only.
ALTER TABLE incident_responses MODIFY COLUMN closed_at Nullable(DateTime64(3, 'UTC'));
ALTER TABLE incident_responses MODIFY COLUMN time_to_closure_s Nullable(Float64);
ALTER TABLE incident_response_latest MODIFY COLUMN time_to_closure_s Nullable(Float64);
