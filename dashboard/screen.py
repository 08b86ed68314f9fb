"""Decisions the wall screen makes, kept out of the page script so they can be tested directly."""

from __future__ import annotations

import datetime as dt

from dozor.dashboard.queries import CityRow

__all__ = ["focus_city", "response_status", "ROTATION_SIZE"]

#: Rotation cycles through this many of the busiest cities: a wall cannot usefully show all 20.
ROTATION_SIZE = 5


def focus_city(now: dt.datetime, overview: dict[str, CityRow], chosen: str, rotate_s: int) -> str:
    """The chosen city; with rotation, the one for this time slot among today's busiest.

    Driven by the wall clock, not by a counter in the session, so every screen in the room that
    rotates shows the same city at the same moment, and a reloaded page does not restart the cycle.
    """
    if not rotate_s:
        return chosen
    busiest = sorted(overview.values(), key=lambda r: (-r.today, r.city))[:ROTATION_SIZE]
    ids = [r.city for r in busiest] or [chosen]
    return ids[int(now.timestamp() // rotate_s) % len(ids)]


def response_status(within_target: float | None) -> str:
    """CSS class of a response figure by the share of arrivals within their target."""
    if within_target is None:
        return "none"
    return "ok" if within_target >= 0.9 else "warn" if within_target >= 0.75 else "bad"
