"""Roles and scopes from the access file, and query functions that refuse what a scope lacks."""

from __future__ import annotations

import pytest

from dozor.access import DEV_ACCESS_FILE, AccessDenied, AccessPolicy, Scope
from dozor.dashboard import queries
from dozor.errors import ConfigError

ASTANA = Scope("a@x", "city_head", frozenset({"astana"}))
YESIL = Scope("y@x", "district_head", frozenset({"astana"}), frozenset({"yesil"}))
INTEGRITY = Scope("i@x", "integrity_officer", None, integrity=True, operations=False)


def test_the_demo_file_gives_each_user_their_scope():
    policy = AccessPolicy.load(DEV_ACCESS_FILE)
    assert policy.scope_for("astana.head@police.kz").cities == frozenset({"astana"})
    assert policy.scope_for("ASTANA.HEAD@police.kz") is not None  # e-mail case does not matter
    analyst = policy.scope_for("analyst@mvd.kz")
    assert analyst.cities is None and analyst.integrity
    assert policy.scope_for("stranger@example.com") is None


def test_a_group_assigns_a_role():
    policy = AccessPolicy([{"group": "Almaty-Duty", "role": "duty_officer", "cities": ["almaty"]}], "t")
    assert policy.scope_for("someone@x", ["other", "almaty-duty"]).cities == frozenset({"almaty"})
    assert policy.scope_for("someone@x", ["other"]) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"user": "u", "role": "king"}, "role must be one of"),
        ({"user": "u", "role": "city_head"}, "needs cities"),
        ({"user": "u", "role": "city_head", "cities": ["gotham"]}, "unknown cities"),
        ({"user": "u", "role": "district_head", "cities": ["astana", "almaty"], "districts": ["yesil"]},
         "exactly one city"),
        ({"user": "u", "role": "district_head", "cities": ["astana"], "districts": ["mars"]},
         "unknown districts"),
        ({"role": "city_head", "cities": ["astana"]}, "needs user"),
    ],
)  # fmt: skip
def test_a_wrong_access_file_is_refused_in_one_line(entry, message):
    with pytest.raises(ConfigError, match=message):
        AccessPolicy([entry], "access.toml")


@pytest.mark.parametrize(
    "call",
    [
        lambda s: queries.districts(None, "almaty", "Asia/Almaty", s),
        lambda s: queries.map_points(None, "almaty", s),
        lambda s: queries.alerts(None, s, city="almaty"),
    ],
    ids=["districts", "map_points", "alerts"],
)
@pytest.mark.parametrize("scope", [ASTANA, YESIL, INTEGRITY], ids=["city_head", "district_head", "integrity"])
def test_every_query_function_refuses_a_city_outside_its_scope(call, scope):
    # Refused before any SQL is sent: the client here is None and is never reached.
    with pytest.raises(AccessDenied):
        call(scope)


def test_a_district_scope_covers_only_its_districts():
    assert YESIL.covers_district("astana", "yesil")
    assert not YESIL.covers_district("astana", "nura")
    assert not YESIL.covers_district("astana", "")  # events without a district are the city's
    with pytest.raises(AccessDenied):
        YESIL.require_district("astana", "nura")
    with pytest.raises(AccessDenied):
        ASTANA.require_integrity()
    INTEGRITY.require_integrity()
    assert INTEGRITY.visible_cities() == []  # the integrity unit sees no operational figures
