"""A sign-in ends after DOZOR_SESSION_IDLE_MINUTES without activity; reloads are the same sign-in."""

from __future__ import annotations

import datetime as dt

from dozor.dashboard import signin


def test_reloads_are_one_sign_in_and_idleness_ends_it(monkeypatch):
    monkeypatch.setenv("DOZOR_SESSION_IDLE_MINUTES", "30")
    signin.data.settings.clear()
    key = ("astana.head@police.kz", "1764600000")
    signin._SIGN_INS.pop(key, None)
    assert signin._touch(key) == (True, False)  # the first page after signing in
    assert signin._touch(key) == (False, False)  # a reload, a second tab: not a new sign-in
    signin._SIGN_INS[key] = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31)
    assert signin._touch(key) == (False, True)  # back after 31 idle minutes: signed out
