"""The deduplication lookup's time ranges: every event covered, few ranges, cheap on a sparse day."""

from __future__ import annotations

import bisect
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from dozor.streams.sink import MAX_RANGES, RANGE_GAP, time_ranges

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()
GAP = RANGE_GAP.total_seconds()
offsets = st.lists(st.integers(min_value=0, max_value=86_400_000), min_size=1, max_size=400)


@given(offsets)
def test_every_time_is_covered_by_few_disjoint_ranges(ms: list[int]) -> None:
    times = [T0 + m / 1000 for m in ms]
    ranges = time_ranges(times)
    assert 1 <= len(ranges) <= MAX_RANGES
    assert all(a <= b for a, b in ranges)
    assert all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))
    assert all(any(a <= t <= b for a, b in ranges) for t in times)
    assert ranges[0][0] == min(times) and ranges[-1][1] == max(times)


def test_the_widest_gaps_are_the_ones_kept() -> None:
    # Clusters separated by growing gaps: with too many clusters, the narrowest gaps are closed.
    starts, t = [], T0
    for i in range(MAX_RANGES + 10):
        starts.append(t)
        t += GAP * 2 + i
    ranges = time_ranges(starts)
    assert len(ranges) == MAX_RANGES
    assert ranges[0] == (starts[0], starts[10])  # the ten narrowest gaps were the first ten
    assert ranges[1:] == [(s, s) for s in starts[11:]]


def test_a_sparse_day_in_one_batch_merges_to_the_range_limit_and_covers_every_event() -> None:
    # A replayed day: 50,000 events a few seconds apart, each its own range before merging. (The
    # speed of the merge is measured in benchmarks/, not asserted here: quadratic merging once
    # took minutes; the suite's timeout is the only clock a test may not use.)
    times = [T0 + 3 * i for i in range(50_000)]
    ranges = time_ranges(times)
    assert len(ranges) == MAX_RANGES
    starts = [lo for lo, _ in ranges]

    def covered(t: float) -> bool:
        i = bisect.bisect_right(starts, t) - 1  # the last range starting at or before t
        return i >= 0 and t <= ranges[i][1]

    uncovered = [t for t in times if not covered(t)]
    assert uncovered == [], f"{len(uncovered)} of {len(times)} events outside every range"
