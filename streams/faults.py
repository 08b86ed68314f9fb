"""Failpoints: named places where a test can make the worker die as ``kill -9`` would.

``DOZOR_FAILPOINTS="after_insert=3"`` kills the process with SIGKILL the third time it reaches
``after_insert``. Unset (always, outside tests), :func:`failpoint` is one dict lookup. This is how
the crash tests hit exact moments (mid-batch, between insert and commit, during a rebalance)
instead of hoping a timed kill lands there.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter

__all__ = ["failpoint", "FAILPOINTS"]

log = logging.getLogger("dozor.faults")

#: The places the worker marks, in the order a flush reaches them.
FAILPOINTS = ("before_insert", "between_tables", "after_insert", "on_revoke")


def _parse(spec: str) -> dict[str, int]:
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, nth = part.partition("=")
        if name not in FAILPOINTS:
            raise ValueError(f"unknown failpoint {name!r}; known: {', '.join(FAILPOINTS)}")
        out[name] = int(nth or 1)
    return out


_armed = _parse(os.environ.get("DOZOR_FAILPOINTS", ""))
_hits: Counter = Counter()


def failpoint(name: str) -> None:
    """Die with SIGKILL here if the environment armed this point for this hit."""
    if name in _armed:
        _hits[name] += 1
        if _hits[name] == _armed[name]:
            log.critical("failpoint %s hit %d time(s): killing this process", name, _hits[name])
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)
