-- Dozor's two ClickHouse users on a real server, with the grants the embedded endpoint enforces
-- itself (infra/chdb_policy.py). Rendered and applied by `dozor clickhouse create-users`, run once by
-- an administrator (a user with access management) against the production server:
--
--   DOZOR_CLICKHOUSE_ADMIN_USER=admin DOZOR_CLICKHOUSE_ADMIN_PASSWORD=… dozor clickhouse create-users
--
-- {writer}, {reader} and {database} are checked to be plain identifiers; passwords arrive only as
-- their SHA-256 ({writer_sha256}, {reader_sha256}), so no secret is ever written into SQL text.
--
-- The writer (workers, migrations): reads, inserts and changes the schema of Dozor's database, and
-- nothing else: no access to other databases, to files, URLs or other servers (those need grants
-- such as FILE, URL, REMOTE, S3, which it does not have).
CREATE USER IF NOT EXISTS {writer} IDENTIFIED WITH sha256_hash BY '{writer_sha256}';
ALTER USER {writer} IDENTIFIED WITH sha256_hash BY '{writer_sha256}';
GRANT CREATE DATABASE ON {database}.* TO {writer};
GRANT SELECT, INSERT, ALTER, CREATE TABLE, CREATE VIEW, DROP TABLE, DROP VIEW, TRUNCATE, OPTIMIZE, SHOW TABLES ON {database}.* TO {writer};
-- The reader (the dashboard): SELECT on Dozor's tables only; it may change output settings but not
-- raise its limits (CONST), as the embedded endpoint's reader cannot.
CREATE USER IF NOT EXISTS {reader} IDENTIFIED WITH sha256_hash BY '{reader_sha256}' SETTINGS readonly = 2 CONST, max_execution_time = 30 CONST, max_memory_usage = 2147483648 CONST, max_threads = 2 CONST;
ALTER USER {reader} IDENTIFIED WITH sha256_hash BY '{reader_sha256}' SETTINGS readonly = 2 CONST, max_execution_time = 30 CONST, max_memory_usage = 2147483648 CONST, max_threads = 2 CONST;
GRANT SELECT ON {database}.* TO {reader};
