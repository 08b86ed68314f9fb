"""Producers against the real broker: what the simulator and replay say they sent is in Kafka."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer

from dozor.cli import cli
from dozor.errors import DozorError
from dozor.producers import kafka as producer_mod
from dozor.schemas import INPUT_FAMILIES
from tests.helpers.examples import MAPPING, SAMPLE
from tests.helpers.ports import free_port

pytestmark = pytest.mark.integration


def _consume(settings, topic: str) -> list:
    c = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=4000,
    )
    msgs = list(c)
    c.close()
    return msgs


def test_simulate_fast_sends_every_family_keyed_for_joins(settings, monkeypatch):
    for k, v in settings.to_env().items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(
        cli, ["simulate", "--fast", "--count", "3000", "--bad-rate", "0.02", "--incident-share", "0.1"]
    )
    assert r.exit_code == 0, r.output
    per_topic = {name: _consume(settings, settings.topic(name)) for name in INPUT_FAMILIES}
    total = sum(len(v) for v in per_topic.values())
    reported = int(r.output.split("sent ")[1].split(" ")[0])
    assert total == reported
    assert per_topic["incidents"] and per_topic["dispatches"]
    # Dispatches land on the partition of their incident: same key, same partition count.
    incident_partition = {}
    for m in per_topic["incidents"]:
        incident_partition.setdefault(m.key, m.partition)
    joined = [m for m in per_topic["dispatches"] if m.key in incident_partition]
    assert joined and all(incident_partition[m.key] == m.partition for m in joined)


def test_replay_cli_sends_what_it_reports(settings, monkeypatch, tmp_path):
    for k, v in settings.to_env().items():
        monkeypatch.setenv(k, v)
    rejects = tmp_path / "rejects.jsonl"
    r = CliRunner().invoke(cli, ["replay", str(SAMPLE), "--mapping", str(MAPPING), "--rejects", str(rejects)])
    assert r.exit_code == 0, r.output
    assert "read 10 rows, sent 6 events (6 violations), rejected 4" in r.output
    msgs = _consume(settings, settings.topic("violations"))
    assert len(msgs) == 6
    assert {orjson.loads(m.value)["city"] for m in msgs} == {"astana", "almaty", "shymkent", "karaganda"}
    reasons = Counter(orjson.loads(line)["reason"] for line in rejects.read_bytes().splitlines())
    assert reasons == Counter({"schema": 1, "bad_position": 1, "unmappable": 1, "unknown_city": 1})


def test_unreachable_broker_is_a_clear_error_not_a_hang(settings_factory, monkeypatch):
    settings = settings_factory(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    monkeypatch.setattr(producer_mod, "CONNECT_ATTEMPTS", 2)
    with pytest.raises(DozorError, match="is not reachable"):
        producer_mod.make_producer(settings, bootstrap_timeout_ms=500)


def test_bad_cli_argument_is_one_line():
    r = CliRunner().invoke(cli, ["simulate", "--fast"])
    assert r.exit_code == 2
    assert "--fast needs --count" in r.output
