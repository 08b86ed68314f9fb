"""Ground truth computed from what was produced, independently of the worker's code.

Districts come from shapely on the shipped boundary file, lifecycles from sorting each incident's
events: the tests compare what Dozor stored and published with these.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache

from shapely import contains_xy
from shapely.geometry import shape

from dozor.geo import DISTRICTS_FILE
from dozor.producers.simulator import Message

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


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


def incidents(msgs: list[Message]) -> dict[str, dict]:
    """Per incident: opened, assigned, on_scene and end ((ms, status)) as known, plus its last event."""
    seen: set[str] = set()
    inc: dict[str, dict] = {}
    for m in msgs:
        if not m.valid or m.event_id in seen or m.family not in ("incidents", "dispatches"):
            continue
        seen.add(m.event_id)
        p = m.payload
        s = inc.setdefault(p["incident_id"], {})
        t = epoch_ms(p["event_time"])
        if m.family == "incidents":
            s["payload"] = p
            s["opened"] = min(s.get("opened", t), epoch_ms(p["opened_at"]))
            if p["status"] in ("closed", "cancelled") and t < s.get("end", (t + 1,))[0]:
                s["end"] = (t, p["status"])
        elif p["status"] in ("assigned", "on_scene"):
            s[p["status"]] = min(s.get(p["status"], t), t)
    return inc
