-- The source system's own call type or code and its own area (beat, sector, substation), kept
-- beside Dozor's category and district: an imported CAD export maps its 114 call types onto ten
-- categories, and the analyst still asks for "BURG in beat B3".
ALTER TABLE incident_events ADD COLUMN IF NOT EXISTS source_code LowCardinality(String) DEFAULT '' AFTER opened_at;
ALTER TABLE incident_events ADD COLUMN IF NOT EXISTS source_area LowCardinality(String) DEFAULT '' AFTER source_code;
