-- Who did what in the dashboard: sign-ins, refused access, page views, filter changes, exports.
-- Append-only for the dashboard (its reader user may INSERT here and nowhere else), kept at least a
-- year (TTL from DOZOR_RETENTION_AUDIT_DAYS, applied by migrate), readable by the ministry role.
CREATE TABLE IF NOT EXISTS audit_log
(
    at        DateTime64(3, 'UTC') DEFAULT now64(3),
    user      String,
    role      LowCardinality(String),
    action    LowCardinality(String),
    page      LowCardinality(String),
    detail    String,
    rows      UInt64 DEFAULT 0,
    address   String DEFAULT ''
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, user);
