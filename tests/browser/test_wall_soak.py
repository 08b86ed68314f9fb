"""The wall screen's memory over a long run: the soak benchmark, as a test that can fail.

Marked slow: 30 minutes by default, so CI (``-m "not slow"``) leaves it out and the benchmark
command runs it (README, Benchmarks). ``DOZOR_SOAK_MINUTES`` shortens it for a quick check of the
mechanics; the verdict needs at least 20 minutes, since the server warms up for about 15.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
MINUTES = int(os.environ.get("DOZOR_SOAK_MINUTES", "30"))
#: Growth allowed over the second half of the run: a leak of a refresh's worth of objects a second
#: would show as tens of MiB; caches settling move it by well under one.
MAX_SECOND_HALF_GROWTH_MIB = 3.0


# The suite's 600 s per-test limit (pyproject) would stop the soak a third of the way through.
@pytest.mark.timeout(60 * (MINUTES + 15))
def test_wall_screen_memory_stays_flat_while_it_refreshes_every_second(artifacts_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "wall_screen.py"), "soak", "--minutes", str(MINUTES)],
        capture_output=True, text=True, timeout=60 * (MINUTES + 10), check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    (artifacts_dir / "wall_soak.txt").write_text(out)
    rows = [
        (int(m), float(rss), None if today == "—" else int(today))
        for m, rss, today in re.findall(r"^\s*(\d+)\s+([\d.]+)\s+(\d+|—)\s*$", out, re.MULTILINE)
    ]
    assert len(rows) == MINUTES + 1, out
    todays = [t for _, _, t in rows if t is not None]
    assert todays and todays[-1] > todays[0], "the wall stopped updating its figures"
    if MINUTES < 20:
        # The server warms up for about 15 minutes: a shorter run shows the mechanics only, and the
        # result says so instead of passing as if memory had been judged.
        pytest.skip(f"memory not judged: {MINUTES} min < 20 (set DOZOR_SOAK_MINUTES); figures updated")
    half = rows[len(rows) // 2 :]
    growth = max(r[1] for r in half) - half[0][1]
    assert growth <= MAX_SECOND_HALF_GROWTH_MIB, f"RSS grew {growth:.1f} MiB over the second half\n{out}"
