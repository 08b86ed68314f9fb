"""How much happens in a simulated city: one volume model for the history and the live feed.

A demo whose live feed sent Astana a thousand camera violations a minute beside a history of 770 a
day cried "spike" on every start and read "+3,724 % against yesterday": the two had been sized
apart. Both are sized here, per city and day, proportional to population:

- camera violations: :data:`VIOLATIONS_PER_1000` per 1,000 residents a day on weekdays
  (:data:`WEEKEND_VIOLATIONS` of that on weekends). Astana, 1.42 million: about 770 a day, 23.6
  thousand in a January — the seed articles' figure is about 23.8 thousand camera violations in
  January 2023;
- incidents: :data:`INCIDENTS_PER_1000` per 1,000 residents a day (:data:`WEEKEND_INCIDENTS` on
  weekends): Astana about 430 a day (102 calls, the app, SOS, front offices, patrols together);
  East Kazakhstan's police took about 204 thousand calls in 2025, some 560 a day for 1.4 million;
- 102 calls: :data:`CALLS_PER_1000` per 1,000 residents a day, East Kazakhstan's 204 thousand calls
  of 2025 for its 1.37 million; the calls that open an incident are part of the incidents' figure
  (every incident from the 102 line, the app or an SOS button begins with its call), the rest
  (advice, hang-ups, calls for another service) are simulated as calls alone;
- integrity reports: about one a day for the country (bribe attempts reported rose from 13 to 34
  in one January).

The whole country (the 20 cities of :mod:`dozor.cities`) is then about 5,200 violations and 2,900
incidents a day: 0.09 events a second. Both the history (``producers/backfill.py``) and the live
feed (:func:`live_config`) read these numbers; a load test multiplies the live feed
(``dozor up --rate N``), and the wall says so on screen.
"""

from __future__ import annotations

from dataclasses import replace

from dozor.cities import CITIES

__all__ = [
    "VIOLATIONS_PER_1000",
    "INCIDENTS_PER_1000",
    "INTEGRITY_PER_DAY",
    "CALLS_PER_1000",
    "WEEKEND_VIOLATIONS",
    "WEEKEND_INCIDENTS",
    "national_per_day",
    "live_config",
]

VIOLATIONS_PER_1000 = 0.54
INCIDENTS_PER_1000 = 0.30
INTEGRITY_PER_DAY = 1.0
CALLS_PER_1000 = 0.41
#: Weekends: less commuting traffic, more domestic incidents and hooliganism.
WEEKEND_VIOLATIONS = 0.85
WEEKEND_INCIDENTS = 1.15


def national_per_day() -> tuple[float, float]:
    """(violations, incidents) a weekday for the whole country, from the cities' populations."""
    thousands = sum(c.population for c in CITIES) / 1000
    return thousands * VIOLATIONS_PER_1000, thousands * INCIDENTS_PER_1000


def live_config(base: object, multiplier: float = 1.0) -> object:
    """``base`` (a :class:`~dozor.producers.simulator.SimConfig`) sized by this model, times
    ``multiplier`` (1: a real country's pace; more for a load test)."""
    from dozor.producers.simulator import CALL_SHARE_OF_INCIDENTS, messages_per_root

    violations, incidents = national_per_day()
    thousands = sum(c.population for c in CITIES) / 1000
    calls_alone = max(thousands * CALLS_PER_1000 - incidents * CALL_SHARE_OF_INCIDENTS, 0.0)
    roots = violations + incidents + calls_alone + INTEGRITY_PER_DAY
    share_inc, share_call = incidents / roots, calls_alone / roots
    # ``rate`` counts messages: an incident's lifecycle is several (a rate of roots here gave Astana
    # 183 violations a day live beside 770 in the history).
    return replace(
        base,  # type: ignore[type-var]
        rate=roots * messages_per_root(share_inc, share_call) / 86_400 * multiplier,
        incident_share=share_inc,
        integrity_share=INTEGRITY_PER_DAY / roots,
        call_share=share_call,
    )
