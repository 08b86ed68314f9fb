"""Helpers shared by the benchmark scripts (run as scripts, so this is imported as ``common``)."""

from __future__ import annotations

import datetime as dt
import socket
from collections import Counter
from pathlib import Path

__all__ = ["free_port", "top_frames", "event_start"]


def event_start() -> dt.datetime:
    """Where a benchmark's simulated event time starts: yesterday 12:00 Astana time (07:00 UTC).

    A start computed back from now (count / rate) ran into the future at night: the simulator's
    daily profile thins events out then, so the same count spans more time, and the validator
    refuses times ahead of the clock. Yesterday's midday is always in the past, a day later than
    any run takes, and puts every run at the same point of the daily profile.
    """
    today = dt.datetime.now(dt.UTC).replace(hour=7, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def top_frames(raw: Path, k: int = 25) -> list[str]:
    """Summarise a py-spy ``raw`` profile: share of samples by innermost function (own time)."""
    own: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        own[stack.split(";")[-1]] += int(count)
    return [f"  {100 * c / total:5.1f}%  {frame}" for frame, c in own.most_common(k)]
