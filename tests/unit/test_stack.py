"""`dozor up` stops the services that use the broker and ClickHouse before either of them: the
worker's last flush must still reach both."""

from __future__ import annotations

from dozor.infra.stack import stop_waves


def test_users_of_the_broker_and_clickhouse_stop_before_them_and_kafka_last():
    started = ["kafka", "clickhouse", "worker", "join", "simulator", "oidc", "dashboard"]
    assert stop_waves(started) == [
        ["worker", "join", "simulator", "oidc", "dashboard"], ["clickhouse"], ["kafka"],
    ]  # fmt: skip


def test_a_start_that_failed_early_stops_only_what_runs():
    assert stop_waves(["kafka"]) == [["kafka"]]
    assert stop_waves(["kafka", "clickhouse"]) == [["clickhouse"], ["kafka"]]
    assert stop_waves([]) == []
