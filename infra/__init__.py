"""The embedded services and their set-up: the Kafka broker from its jars (``kafka``), the ClickHouse
HTTP endpoint over chdb and its policy (``chdb_http``, ``chdb_policy``), migrations and users
(``migrate``, ``clickhouse/``), topics, the local OIDC provider, process helpers and the install
scripts."""

__all__ = ["chdb_http", "chdb_policy", "kafka", "migrate", "oidc_dev", "procs", "stack", "topics"]
