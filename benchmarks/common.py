"""Helpers shared by the benchmark scripts (run as scripts, so this is imported as ``common``)."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

__all__ = ["free_port", "top_frames"]


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
