"""The join of incidents and dispatches: response times and waiting alerts equal the truth computed
here from what was produced, on the output topics and in ClickHouse, also across a kill -9."""

from __future__ import annotations

import datetime as dt
import re
import time
import urllib.request

import pytest
from kafka.partitioner.default import murmur2

from dozor.clickhouse import connect
from dozor.producers.simulator import Message, SimConfig, Simulator
from dozor.schemas import RESPONSE_TIMES_V1
from tests.helpers.schema_consumer import read_topic
from tests.helpers.stack import JOIN, WORKER, Truth, poll, produce
from tests.helpers.truth import epoch_ms, incidents

pytestmark = pytest.mark.integration

_ms = epoch_ms


def _feed(seed: int, hours: float, late_rate: float) -> list[Message]:
    cfg = SimConfig(
        seed=seed, rate=0.5, incident_share=1.0, integrity_share=0.0, late_rate=late_rate,
        duplicate_rate=0.03, bad_rate=0.01, daily_profile=False,
    )  # fmt: skip
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours + 4)
    return list(
        Simulator(cfg, "test-salt").messages(start, until=start + dt.timedelta(hours=hours), drain=True)
    )


def _truth(msgs: list[Message], version: int = 1) -> dict[str, tuple]:
    """Per closed incident (v1), or per incident closed or with a unit assigned or on scene (v2):
    (status, opened, first assigned, first on scene, closed), in ms; an open incident has status
    "open". v2 counts a call assigned and never reached, so its time to assignment is kept."""
    inc = incidents(msgs)
    return {
        iid: (s["end"][1], s["opened"], s.get("assigned"), s.get("on_scene"), s["end"][0]) if "end" in s
        else ("open", s["opened"], s.get("assigned"), s.get("on_scene"), None)
        for iid, s in inc.items()
        if "opened" in s and ("end" in s or (version == 2 and ("on_scene" in s or "assigned" in s)))
    }  # fmt: skip


def _from_topic(bootstrap: str, topic: str, version: int = 1) -> dict[str, tuple]:
    latest: dict[str, dict] = {}
    for doc in read_topic(bootstrap, topic, f"response_times.v{version}.json"):
        if doc["incident_id"] not in latest or doc["revision"] > latest[doc["incident_id"]]["revision"]:
            latest[doc["incident_id"]] = doc

    def ms(v: str | None) -> int | None:
        return None if v is None else _ms(v)

    return {
        iid: (d["status"], ms(d["opened_at"]), ms(d["first_assigned_at"]), ms(d["first_on_scene_at"]),
              ms(d["closed_at"]))
        for iid, d in latest.items()
    }  # fmt: skip


def _from_clickhouse(settings) -> dict[str, tuple]:  # noqa: ANN001
    rows = (
        connect(settings)
        .query(
            "SELECT incident_id, status, toUnixTimestamp64Milli(opened_at), "
            "toUnixTimestamp64Milli(first_assigned_at), toUnixTimestamp64Milli(first_on_scene_at), "
            "toUnixTimestamp64Milli(closed_at) FROM incident_responses "
            "ORDER BY revision DESC LIMIT 1 BY incident_id"
        )
        .result_rows
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def _join_port(settings) -> dict[str, str]:  # noqa: ANN001
    return {"DOZOR_WORKER_WEB_PORT": str(settings.worker_web_port + 1)}


def _wait_for(fetch, expected: dict, timeout_s: float = 180) -> dict:  # noqa: ANN001
    """What ``fetch`` returns once it equals ``expected``, or at the timeout (the caller compares)."""
    return poll(fetch, lambda got: got == expected, timeout_s, every_s=1)


def _v1_topic(settings) -> str:  # noqa: ANN001
    return RESPONSE_TIMES_V1.topic(settings.topic_prefix)


def _check(settings, msgs: list[Message]) -> None:  # noqa: ANN001
    """v1 holds every closed incident; v2 and ClickHouse every incident closed or with a unit
    assigned or on scene, an incident still open with what it has so far (the latest revision)."""
    bootstrap = settings.kafka_bootstrap_servers
    expected = _truth(msgs)
    assert len(expected) > 300
    v1 = _wait_for(lambda: _from_topic(bootstrap, _v1_topic(settings)), expected)
    assert v1 == expected
    expected_v2 = _truth(msgs, version=2)
    assert sum(1 for t in expected_v2.values() if t[0] == "open") > 0, "some incidents must stay open"
    v2_topic = settings.topic("response_times")
    assert _wait_for(lambda: _from_topic(bootstrap, v2_topic, version=2), expected_v2) == expected_v2
    assert _wait_for(lambda: _from_clickhouse(settings), expected_v2) == expected_v2


def _join_metrics(settings) -> dict[str, float]:  # noqa: ANN001
    port = settings.worker_web_port + 1
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        name: float(m.group(1)) if (m := re.search(rf"^{name} (\S+)$", text, re.M)) else 0.0
        for name in ("dozor_join_incidents", "dozor_join_expired_total")
    }


def test_response_times_and_waiting_alerts_equal_the_truth(settings_factory, start_service):
    # A short retention, so that closed incidents leave the join table during the run.
    settings = settings_factory(topic_partitions=3, join_retention_hours=0.5)
    # In event-time order (no late sends): which incidents wait past their target is then defined
    # by the feed alone. Late sends are covered by the kill test below.
    msgs = _feed(seed=91, hours=3, late_rate=0.0)
    start_service(WORKER, settings, "worker")
    start_service(JOIN, settings, "join", env=_join_port(settings))
    produce(settings, msgs, Truth())
    _check(settings, msgs)

    # Waiting alerts: no unit on scene and not closed by opened + target, and both topics of the
    # incident's partition got past that deadline in event time.
    targets = {int(p): m * 60_000 for p, m in settings.arrival_target_minutes.items()}
    parts = settings.topic_partitions
    progress: dict[tuple[str, int], int] = {}
    info: dict[str, tuple] = {}
    for m in msgs:
        if not m.valid or m.family not in ("incidents", "dispatches"):
            continue
        p = m.payload
        part = (murmur2(m.key) & 0x7FFFFFFF) % parts
        progress[(m.family, part)] = max(progress.get((m.family, part), 0), _ms(p["event_time"]))
        if m.family == "incidents":  # every incident event repeats opened_at and the priority
            info[p["incident_id"]] = (part, _ms(p["opened_at"]) + targets[p["priority"]], p["city"])
    inc = incidents(msgs)
    should = {
        iid for iid, (part, deadline, _) in info.items()
        if deadline <= min(progress[("incidents", part)], progress[("dispatches", part)])
        and not inc[iid].get("on_scene", deadline + 1) <= deadline
        and not inc[iid].get("end", (deadline + 1,))[0] <= deadline
    }  # fmt: skip
    assert should, "the feed must leave some incidents waiting past their target"
    alerts = read_topic(settings.kafka_bootstrap_servers, settings.topic("alerts"), "alerts.v1.json")
    raised = {a["incident_id"] for a in alerts if a["kind"] == "incident_waiting"}
    assert raised == should
    for a in alerts:
        part, deadline, city = info[a["incident_id"]]
        assert (_ms(a["event_time"]), a["city"]) == (deadline, city)  # raised at the deadline itself

    # Incidents closed more than the retention ago have left the table; the rest are still held.
    seen = len(inc)
    deadline = time.monotonic() + 60
    while (m := _join_metrics(settings))["dozor_join_incidents"] + m["dozor_join_expired_total"] < seen:
        assert time.monotonic() < deadline, m
        time.sleep(1)
    assert m["dozor_join_incidents"] + m["dozor_join_expired_total"] == seen
    assert 0 < m["dozor_join_incidents"] < seen / 2, m


def test_join_state_recovers_from_its_changelog_after_kill_9(settings_factory, start_service):
    settings = settings_factory(topic_partitions=3)
    msgs = _feed(seed=92, hours=3, late_rate=0.05)
    half = len(msgs) // 2
    start_service(WORKER, settings, "worker")
    join = start_service(JOIN, settings, "join-1", env=_join_port(settings))
    produce(settings, msgs[:half], Truth())
    first = _truth(msgs[:half])
    poll(lambda: _from_topic(settings.kafka_bootstrap_servers, _v1_topic(settings)),
         lambda got: len(got) >= len(first) // 2, timeout_s=120)  # fmt: skip
    join.kill()  # mid-join: incidents of the first half are open in the table
    second = start_service(JOIN, settings, "join-2", env=_join_port(settings))
    produce(settings, msgs[half:], Truth())
    _check(settings, msgs)
    recovered = re.search(r"join state recovered: (\d+) incidents", second.log_path.read_text())
    assert recovered and int(recovered.group(1)) > 0, "the state must come back from the changelog"
