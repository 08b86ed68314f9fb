"""After a simulated day with late, out-of-order and duplicate events, every aggregate in ClickHouse
equals the ground truth computed here from what was produced.

The truth is computed independently of the worker: districts by point-in-polygon with shapely on the
shipped boundary file, latest states by sorting each incident's and unit's events.
"""

from __future__ import annotations

from collections import Counter

import pytest

from dozor.clickhouse import connect
from dozor.enrich import fine_mci
from dozor.producers.simulator import Message, SimConfig
from tests.helpers.stack import WORKER, Truth, assert_exact, produce
from tests.helpers.truth import accepted, district_of, minute_of, simulated_day, to_ms_precision

pytestmark = pytest.mark.integration

INCIDENT_RANK = {"opened": 1, "in_progress": 2, "closed": 3, "cancelled": 4}
DISPATCH_RANK = {"assigned": 1, "en_route": 2, "on_scene": 3, "cleared": 4}


def _truth(msgs: list[Message], mci: dict[int, int]) -> dict[str, Counter]:
    district = district_of
    _ms, _minute = to_ms_precision, minute_of
    violations: Counter = Counter()
    fines: Counter = Counter()
    opened: Counter = Counter()
    incident_last: dict[tuple, tuple] = {}
    ended: dict[tuple, bool] = {}
    unit_last: dict[tuple, tuple] = {}
    incident_district: dict[str, str] = {}
    for family, p in accepted(msgs):
        if family == "violations":
            key = (_minute(p["event_time"]), p["city"], district(p), p["violation_type"])
            violations[key] += 1
            t = _ms(p["event_time"])
            fines[key] += fine_mci(p["violation_type"], p["speed_kmh"], p["speed_limit_kmh"]) * mci[t.year]
        elif family == "incidents":
            d = district(p)
            incident_district[p["incident_id"]] = d
            if p["status"] == "opened":
                key = (_minute(p["event_time"]), p["city"], d, p["category"], p["channel"], p["priority"])
                opened[key] += 1
            rank = (_ms(p["event_time"]), INCIDENT_RANK[p["status"]])
            k = (p["city"], p["incident_id"])
            if k not in incident_last or rank > incident_last[k][0]:
                incident_last[k] = (rank, p["status"])
            ended[k] = ended.get(k, False) or p["status"] in ("closed", "cancelled")
        elif family == "dispatches":
            rank = (_ms(p["event_time"]), DISPATCH_RANK[p["status"]])
            k = (p["city"], p["unit_id"])
            if k not in unit_last or rank > unit_last[k][0]:
                unit_last[k] = (rank, p["status"])
    open_now = Counter((c,) for (c, _), (_, s) in incident_last.items() if s not in ("closed", "cancelled"))
    units = Counter((c, s) for (c, _), (_, s) in unit_last.items())
    # The wall screen's rule: open until a closed or cancelled event (whatever comes after it).
    not_ended = Counter((c,) for (c, _), e in ended.items() if not e)
    by_city = Counter()
    for (minute, city, _, _), n in violations.items():
        by_city[(minute, city)] += n
    return {"violations": violations, "by_city": by_city, "fines": fines, "opened": opened,
            "open_now": open_now, "not_ended": not_ended, "units": units}  # fmt: skip


def _stored(client) -> dict[str, Counter]:  # noqa: ANN001 - a clickhouse-connect client
    def counter(sql: str) -> Counter:
        return Counter({tuple(r[:-1]): r[-1] for r in client.query(sql).result_rows if r[-1]})

    return {
        "violations": counter(
            "SELECT toString(minute), city, district, violation_type, sum(violations) "
            "FROM violations_by_minute GROUP BY ALL"
        ),
        "by_city": counter(
            "SELECT toString(minute), city, sum(violations) FROM violations_by_city_minute GROUP BY ALL"
        ),
        "fines": counter(
            "SELECT toString(minute), city, district, violation_type, sum(fines_kzt) "
            "FROM violations_by_minute GROUP BY ALL"
        ),
        "opened": counter(
            "SELECT toString(minute), city, district, category, channel, priority, sum(opened) "
            "FROM incidents_by_minute GROUP BY ALL"
        ),
        "open_now": Counter({(c,): n for c, n in client.query(
            "SELECT city, countIf(s NOT IN ('closed', 'cancelled')) FROM "
            "(SELECT city, incident_id, argMaxMerge(status) AS s FROM incident_status "
            " GROUP BY city, incident_id) "
            "GROUP BY city").result_rows if n}),
        "not_ended": counter("SELECT city, count() FROM incident_status FINAL WHERE ended = 0 GROUP BY city"),
        "units": counter(
            "SELECT city, s, count() FROM (SELECT city, unit_id, argMaxMerge(status) AS s "
            "FROM unit_state GROUP BY city, unit_id) GROUP BY city, s"
        ),
    }  # fmt: skip


def test_aggregates_equal_the_truth_after_a_simulated_day(settings_factory, start_service):
    settings = settings_factory(topic_partitions=4)
    cfg = SimConfig(
        seed=81, rate=0.25, incident_share=0.3, integrity_share=0.01, late_rate=0.05,
        duplicate_rate=0.03, bad_rate=0.02, daily_profile=True,
    )  # fmt: skip
    # Not drained: incidents and units still busy when the day ends make "open now" non-trivial.
    start, msgs = simulated_day(cfg)
    assert sum(1 for m in msgs if m.duplicate) and sum(1 for m in msgs if not m.valid)
    assert any(m.payload and m.payload.get("district") == "" for m in msgs if m.family == "violations")

    truth = Truth()
    start_service(WORKER, settings, "worker")
    produce(settings, msgs, truth)
    assert_exact(settings, truth, timeout_s=180)

    expected = _truth(msgs, settings.mci_kzt)
    stored = _stored(connect(settings))
    assert sum(expected["violations"].values()) > 3000
    assert sum(expected["open_now"].values()) > 0 and len(expected["units"]) > 20
    unknown = sum(n for k, n in expected["violations"].items() if k[2] == "")
    assert unknown == 0, "every simulated camera is inside its city's district map"
    for name in expected:
        assert stored[name] == expected[name], name
