"""Ground truth computed from what was produced, independently of the worker's code.

Districts come from shapely on the shipped boundary file, lifecycles from sorting each incident's
events: the tests compare what Dozor stored and published with these.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from functools import cache

from shapely import contains_xy
from shapely.geometry import shape

from dozor.geo import DISTRICTS_FILE
from dozor.producers.simulator import Message, SimConfig, Simulator

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def simulated_day(cfg: SimConfig) -> tuple[dt.datetime, list[Message]]:
    """A simulated day that ended three hours ago (on the hour), not drained: its start, its messages.

    Within every horizon the workers keep (the figures' is set to 30 h by the tests that need
    it), and wholly in the past, so the validator's future-time limit never cuts it.
    """
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=27)).replace(minute=0, second=0, microsecond=0)
    return start, list(Simulator(cfg, "test-salt").messages(start, until=start + dt.timedelta(days=1)))


@cache
def _areas() -> dict[str, list[tuple[str, object]]]:
    out: dict[str, list[tuple[str, object]]] = {}
    for f in json.loads(DISTRICTS_FILE.read_text())["features"]:
        props = f["properties"]
        out.setdefault(props["city"], []).append((props["district"], shape(f["geometry"])))
    return out


def district_of(payload: dict) -> str:
    """The district whose polygon holds the event's position ('' outside every one)."""
    return next(
        (d for d, g in _areas()[payload["city"]] if contains_xy(g, payload["lon"], payload["lat"])), ""
    )


def to_ms_precision(iso: str) -> dt.datetime:
    """An event time as ClickHouse stores it: truncated to milliseconds."""
    t = dt.datetime.fromisoformat(iso)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def minute_of(iso: str) -> str:
    return to_ms_precision(iso).strftime("%Y-%m-%d %H:%M:00")


def epoch_ms(iso: str) -> int:
    return (dt.datetime.fromisoformat(iso) - EPOCH) // dt.timedelta(milliseconds=1)


def accepted(msgs: list[Message]) -> Iterator[tuple[str, dict]]:
    """(family, payload) of every event a worker must store: the valid ones, each event id once."""
    seen: set[str | None] = set()
    for m in msgs:
        if m.valid and m.event_id not in seen:
            seen.add(m.event_id)
            assert m.payload is not None, "the tests' simulator keeps payloads"
            yield m.family, m.payload


def incidents(msgs: list[Message]) -> dict[str, dict]:
    """Per incident: opened, assigned, on_scene and end ((ms, status)) as known, plus its last event."""
    inc: dict[str, dict] = {}
    for family, p in accepted(msgs):
        if family not in ("incidents", "dispatches"):
            continue
        s = inc.setdefault(p["incident_id"], {})
        t = epoch_ms(p["event_time"])
        if family == "incidents":
            s["payload"] = p
            s["opened"] = min(s.get("opened", t), epoch_ms(p["opened_at"]))
            if p["status"] in ("closed", "cancelled") and t < s.get("end", (t + 1,))[0]:
                s["end"] = (t, p["status"])
        elif p["status"] in ("assigned", "on_scene"):
            s[p["status"]] = min(s.get(p["status"], t), t)
    return inc
