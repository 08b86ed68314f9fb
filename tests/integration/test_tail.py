"""``dozor tail`` shows a topic's messages and flags every one that breaks the published schema."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import orjson
import pytest

from dozor.infra.topics import ensure_topics
from dozor.producers.kafka import Publisher, make_producer

pytestmark = pytest.mark.integration


def test_tail_prints_messages_and_flags_schema_breaks(settings):
    ensure_topics(settings)
    good = {
        "schema_version": 1, "event_id": str(uuid.uuid4()), "event_time": "2026-11-20T10:00:00Z",
        "kind": "incident_waiting", "city": "astana", "district": "yesil", "incident_id": "INC-1",
        "priority": 1, "waited_s": 600.0, "target_s": 600, "detail": "",
    }  # fmt: skip
    bad = {**good, "event_id": str(uuid.uuid4()), "priority": 9}
    pub = Publisher(make_producer(settings))
    for doc in (good, bad):
        pub.send(settings.topic("alerts"), b"astana", orjson.dumps(doc))
    pub.close()

    env = {**os.environ, **settings.to_env()}
    cmd = [sys.executable, "-m", "dozor", "tail", "alerts", "--from-beginning", "--idle", "4"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    headers = [ln for ln in out.stdout.splitlines() if ln.startswith("── ")]
    assert len(headers) == 2
    assert headers[0].endswith(" ok") and "key=astana" in headers[0]
    assert "INVALID (priority: 9 is greater than the maximum of 4)" in headers[1]
    assert '"incident_id": "INC-1"' in out.stdout
    assert "2 messages read, 1 breaking the alerts.v1 schema" in out.stderr
