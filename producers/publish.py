"""Running a source into Kafka: the simulator (and, in :mod:`dozor.producers.replay`, files)."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field, replace

from dozor.infra.topics import ensure_topics
from dozor.producers.kafka import Publisher, make_producer
from dozor.producers.simulator import SimConfig, Simulator, activity
from dozor.producers.volume import WEEKEND_VIOLATIONS
from dozor.schemas import INPUT_FAMILIES
from dozor.settings import Settings

__all__ = ["SimStats", "run_simulation", "fast_start"]


@dataclass
class SimStats:
    """What a simulation sent, for the closing line and the benchmark."""

    per_family: Counter = field(default_factory=Counter)
    malformed: int = 0
    duplicates: int = 0
    late: int = 0
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.per_family.values())

    def summary(self) -> str:
        fams = ", ".join(f"{k} {v}" for k, v in sorted(self.per_family.items()))
        rate = self.total / self.elapsed_s if self.elapsed_s else 0.0
        return (
            f"sent {self.total} messages ({fams}) in {self.elapsed_s:.1f} s, {rate:,.0f}/s; "
            f"of them malformed {self.malformed}, duplicates {self.duplicates}, late {self.late}"
        )


_STEP = dt.timedelta(minutes=1)


def fast_start(cfg: SimConfig, count: int, now: dt.datetime) -> dt.datetime:
    """Where event time starts so that ``count`` messages end about now, never in the future.

    Walks back from ``now`` a minute at a time through the daily profile: at night the feed is a
    tenth of its daytime rate, so ``count / rate`` seconds held only part of the messages and a
    fast run at night stopped short of ``--count``. Weekends are priced at the violations'
    factor, the lowest. The 30% margin covers the Poisson spread and the incidents' later steps
    (dispatch, arrival, closure), scheduled up to hours after the opening: those still due after
    ``now`` are not sent, and a 5% margin fell 16% short in the morning rush.
    """
    need = count * 1.3 / cfg.rate  # seconds at the mean rate
    t = now
    while need > 0:
        t -= _STEP
        need -= _STEP.total_seconds() * activity(cfg, t, WEEKEND_VIOLATIONS)
    return t


def run_simulation(
    settings: Settings, cfg: SimConfig, count: int | None = None, paced: bool = True
) -> SimStats:
    """Produce the simulated feed. Paced: in real time, event time = wall clock. Otherwise as fast
    as possible, with event times from the past up to now. Ctrl-C stops it after a flush."""
    ensure_topics(settings)
    # Nothing here reads a message's payload dict: only its bytes are sent.
    sim = Simulator(replace(cfg, keep_payload=False), settings.plate_salt.get_secret_value())
    topics = {name: settings.topic(name) for name in INPUT_FAMILIES}
    pub = Publisher(make_producer(settings))
    stats = SimStats()
    now = dt.datetime.now(dt.UTC)
    if paced:
        messages = sim.messages(now, count=count)
    else:
        assert count is not None
        messages = sim.messages(fast_start(cfg, count, now), count=count, until=now)
    t0_wall, t0_event = time.monotonic(), now
    try:
        for m in messages:
            if paced:
                ahead = (m.send_time - t0_event).total_seconds() - (time.monotonic() - t0_wall)
                if ahead > 0.005:
                    time.sleep(ahead)
            pub.send(topics[m.family], m.key, m.value)
            stats.per_family[m.family] += 1
            if not m.valid:
                stats.malformed += 1
            elif m.duplicate:
                stats.duplicates += 1
    except KeyboardInterrupt:
        pass
    finally:
        pub.close()
        stats.elapsed_s = time.monotonic() - t0_wall
    return stats
