"""Where a worker's validation time goes, per event, on one 50k batch of simulated violations.

Run:  .venv/bin/python benchmarks/validate.py

No broker, no ClickHouse: this isolates the Python work of the hot path that
benchmarks/pipeline.py measures end to end. Each figure is the best of ``--repeat`` passes over
the same batch (the machine's noise is one-sided: a pass is only ever slowed down), in microseconds
of wall time per event on one core:

- the JSON decode alone: orjson, and jiter with duplicate keys caught (what ``parse_event`` uses, so
  that a field named twice is refused: the price of that verdict, in the same run);
- pydantic alone (``Violation.model_validate_json``, and ``model_validate`` of jiter's dict);
- ``parse_event``: pydantic plus the domain checks (known city, position, time);
- ``validate_records``: the whole per-batch step of the worker (parse, district, fine, row),
  with the garbage collector as Python starts and after ``gc.freeze()`` as the worker does.

Results go to benchmarks/results/validate.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import time
from collections.abc import Callable
from pathlib import Path

import jiter
import orjson
from aiokafka.structs import ConsumerRecord
from common import event_start

from dozor.enrich import Enricher
from dozor.producers.simulator import SimConfig, Simulator
from dozor.schemas import Violation, parse_event
from dozor.settings import Settings
from dozor.streams.ingest import validate_records
from dozor.streams.sink import PartitionBatch

RESULTS = Path(__file__).resolve().parent / "results" / "validate.txt"


def best_us(fn: Callable[[], object], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    cfg = SimConfig(
        seed=5, rate=2000, incident_share=0, integrity_share=0, call_share=0, late_rate=0, duplicate_rate=0
    )
    msgs = list(Simulator(cfg, "bench").messages(event_start(), count=args.count))
    records = [
        ConsumerRecord("t", 0, i, 0, 0, m.key, m.value, None, len(m.key), len(m.value), [])
        for i, m in enumerate(msgs)
    ]
    n = len(records)
    enricher = Enricher(Settings().mci_kzt)
    now = dt.datetime.now(dt.UTC)

    def pydantic_only() -> None:
        for r in records:
            Violation.model_validate_json(r.value)

    def orjson_only() -> None:
        for r in records:
            orjson.loads(r.value)

    def jiter_checked() -> None:
        for r in records:
            jiter.from_json(r.value, catch_duplicate_keys=True, allow_inf_nan=False)

    def jiter_then_pydantic() -> None:
        for r in records:
            Violation.model_validate(jiter.from_json(r.value, catch_duplicate_keys=True, allow_inf_nan=False))

    def parse_only() -> None:
        for r in records:
            parse_event("violations", r.value, now)

    def whole_step() -> None:
        validate_records(records, PartitionBatch("t", 0, "violations"), enricher)

    lines = [
        f"# Validation per event, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, one core",
        f"# command: .venv/bin/python benchmarks/validate.py --count {args.count} --repeat {args.repeat}",
        f"# {n:,} simulated violations (~375 B JSON); best of {args.repeat} passes, us per event",
        "",
    ]
    figures = [
        ("decode: orjson.loads (keeps the last of a repeated key)", orjson_only),
        ("decode: jiter, repeated keys refused", jiter_checked),
        ("pydantic model_validate_json (no repeated-key check)", pydantic_only),
        ("jiter (repeated keys refused) + model_validate", jiter_then_pydantic),
        ("parse_event (pydantic + domain checks)", parse_only),
        ("validate_records, gc as Python starts", whole_step),
    ]
    for name, fn in figures:
        lines.append(f"{name:<56} {best_us(fn, n, args.repeat):6.2f}")
    gc.collect()
    gc.freeze()
    lines.append(
        f"{'validate_records, after gc.freeze() (the worker)':<56} {best_us(whole_step, n, args.repeat):6.2f}"
    )
    for line in lines:
        print(line)
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
