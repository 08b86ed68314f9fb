"""Replaying real-world records from CSV, JSONL or Parquet into Dozor's input topics.

A small TOML *mapping file* says how the source's columns become a canonical event, so a new
dataset needs a new mapping, not new code (``docs/replay.md`` documents it with an example):

.. code-block:: toml

    family = "violations"                # which event family the rows are
    timezone = "Asia/Almaty"             # zone of timestamps written without one
    [columns]                            # canonical field = source column
    event_time = "Дата и время"
    city = "Город"
    plate = "Госномер"                   # raw plate: hashed and masked here, never sent
    [time]
    format = "%d.%m.%Y %H:%M:%S"         # strptime format; ISO 8601 when absent
    [values.city]                        # source value → canonical value
    "Нур-Султан" = "astana"
    [constants]                          # fields the source lacks
    district = ""

Every mapped row is checked by the same validator the workers run, before it is sent: a row that
would be dead-lettered is reported with its reason instead (and written to ``--rejects``), so a
replay's report says exactly what reached Kafka. Without an ``event_id`` column the id is derived
from the row's content (UUID v5), so replaying the same file twice repeats the same ids and the
workers' deduplication makes the second replay change nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from dozor.errors import DozorError
from dozor.privacy import hash_plate, mask_plate
from dozor.schemas import FAMILIES, INPUT_FAMILIES, InvalidEvent, parse_event

__all__ = ["Mapping", "MappingError", "ReplayReport", "read_rows", "map_rows", "replay"]

#: Namespace of derived event ids: the same row content always gives the same id.
_REPLAY_NS = uuid.UUID("5b0a3c1e-6f0e-4a8e-9a57-0d0f1a6b7c01")
_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_NUMERIC = {"lat", "lon", "speed_kmh", "speed_limit_kmh", "priority"}
_TIMES = {"event_time", "opened_at"}


class MappingError(DozorError):
    """The mapping file is unusable; the message names the key that is wrong."""


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file."""

    family: str
    columns: dict[str, str]
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    time_format: str | None = None
    timezone: str = "Asia/Almaty"
    format: str | None = None

    @classmethod
    def load(cls, path: Path) -> Mapping:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise MappingError(
                f"cannot read mapping {path}: not UTF-8 text (byte {e.start}); save it as UTF-8"
            ) from None
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise MappingError(f"cannot read mapping {path}: {e}") from None
        family = raw.get("family")
        if family not in INPUT_FAMILIES:
            raise MappingError(f"{path}: family must be one of {', '.join(INPUT_FAMILIES)}, not {family!r}")
        columns = raw.get("columns")
        if not isinstance(columns, dict) or not columns:
            raise MappingError(f"{path}: a [columns] table (canonical field = source column) is required")
        model_fields = set(FAMILIES[family].model.model_fields) | {"plate"}
        unknown = set(columns) - model_fields
        if unknown:
            raise MappingError(f"{path}: [columns] names unknown fields: {', '.join(sorted(unknown))}")
        try:
            ZoneInfo(raw.get("timezone", "Asia/Almaty"))
        except Exception:
            raise MappingError(f"{path}: unknown timezone {raw.get('timezone')!r}") from None
        time_format = raw.get("time", {}).get("format")
        if time_format is not None:
            _check_time_format(path, time_format)
        return cls(
            family=family,
            columns=columns,
            values=raw.get("values", {}),
            constants=raw.get("constants", {}),
            time_format=time_format,
            timezone=raw.get("timezone", "Asia/Almaty"),
            format=raw.get("format"),
        )


def _check_time_format(path: Path, fmt: object) -> None:
    """Refuse a [time] format that strptime cannot use, before a single row is read."""
    sample = dt.datetime(2021, 9, 14, 7, 8, 9)
    try:
        if not isinstance(fmt, str) or "%" not in fmt:
            raise ValueError("it has no % directive")
        dt.datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as e:
        raise MappingError(f"{path}: [time] format {fmt!r} cannot be parsed by strptime: {e}") from None


@dataclass
class ReplayReport:
    """What a replay did: rows read, sent, and rejected with reasons."""

    read: int = 0
    sent: int = 0
    rejected: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def summary(self) -> str:
        rate = self.sent / self.elapsed_s if self.elapsed_s else 0.0
        lines = [
            f"read {self.read} rows, sent {self.sent}, rejected {sum(self.rejected.values())} "
            f"in {self.elapsed_s:.1f} s ({rate:,.0f} sent/s)"
        ]
        lines += [f"  rejected {n}: {reason}" for reason, n in self.rejected.most_common()]
        return "\n".join(lines)


def read_rows(path: Path, fmt: str | None = None) -> Iterator[dict[str, Any]]:
    """Stream rows as dicts, without loading the file into memory."""
    fmt = fmt or _FORMATS.get(path.suffix.lower())
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            yield from csv.DictReader(f)
    elif fmt == "jsonl":
        with path.open("rb") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        obj = orjson.loads(line)
                    except orjson.JSONDecodeError as e:
                        yield {"__error__": f"line {n}: not JSON ({e})"}
                        continue
                    yield obj if isinstance(obj, dict) else {"__error__": f"line {n}: not an object"}
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            yield from batch.to_pylist()
    else:
        raise MappingError(f"cannot tell the format of {path.name}: use .csv, .jsonl or .parquet")


def _parse_time(value: Any, m: Mapping, tz: ZoneInfo) -> str:
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, int | float):
        t = dt.datetime.fromtimestamp(value, dt.UTC)
    else:
        s = str(value).strip()
        t = dt.datetime.strptime(s, m.time_format) if m.time_format else dt.datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _map_row(row: dict[str, Any], m: Mapping, tz: ZoneInfo, salt: str) -> dict[str, Any]:
    """Source row → canonical payload. Raises ValueError/KeyError with a readable message."""
    if "__error__" in row:
        raise ValueError(row["__error__"])
    out: dict[str, Any] = {"schema_version": FAMILIES[m.family].version, **m.constants}
    for target, source in m.columns.items():
        if source not in row:
            raise KeyError(f"column {source!r} (for {target}) is not in the file")
        value = row[source]
        if isinstance(value, str):
            value = value.strip()
        if value in ("", None):
            continue
        if target in m.values:
            value = m.values[target].get(str(value), value)
        if target in _TIMES:
            value = _parse_time(value, m, tz)
        elif target in _NUMERIC:
            value = float(str(value).replace(",", ".")) if target in ("lat", "lon") else int(float(value))
        out[target] = value
    plate = out.pop("plate", None)
    if plate is not None:
        out["plate_hash"] = hash_plate(str(plate), salt)
        out["plate_masked"] = mask_plate(str(plate))
    if "event_id" not in out:
        # Derived from the mapped content (the plate already hashed): stable across replays.
        out["event_id"] = str(uuid.uuid5(_REPLAY_NS, orjson.dumps(out, option=orjson.OPT_SORT_KEYS).decode()))
    return out


@dataclass(frozen=True)
class Mapped:
    """A row after mapping: a payload to send, or the reason it cannot be."""

    row_number: int
    payload: dict[str, Any] | None
    value: bytes | None
    reason: str | None = None
    detail: str = ""


def map_rows(rows: Iterator[dict[str, Any]], m: Mapping, salt: str) -> Iterator[Mapped]:
    """Map and validate every row, in order."""
    tz = ZoneInfo(m.timezone)
    for n, row in enumerate(rows, 1):
        try:
            payload = _map_row(row, m, tz, salt)
        except (ValueError, KeyError, TypeError) as e:
            yield Mapped(n, None, None, "unmappable", str(e).strip("'\""))
            continue
        value = orjson.dumps(payload)
        try:
            parse_event(m.family, value)
        except InvalidEvent as e:
            yield Mapped(n, payload, value, e.reason, e.detail)
            continue
        yield Mapped(n, payload, value)


def replay(
    path: Path,
    mapping: Mapping,
    send: Any,
    salt: str,
    speed: float | None = None,
    rejects: Path | None = None,
    progress: bool = True,
) -> ReplayReport:
    """Send a file's valid rows through ``send(key, value)``.

    :param speed: None: as fast as possible; 1.0: the original pace (gaps between event times are
        slept); N: N times faster.
    """
    from tqdm import tqdm

    fam = FAMILIES[mapping.family]
    report = ReplayReport()
    t0 = time.monotonic()
    first_event: dt.datetime | None = None
    reject_file = rejects.open("wb") if rejects else None
    bar = tqdm(unit=" rows", disable=not progress, desc=path.name, mininterval=0.5)
    try:
        for item in map_rows(read_rows(path, mapping.format), mapping, salt):
            report.read += 1
            bar.update()
            if item.reason:
                report.rejected[item.reason] += 1
                if reject_file:
                    reject_file.write(
                        orjson.dumps({"row": item.row_number, "reason": item.reason, "detail": item.detail})
                        + b"\n"
                    )
                continue
            assert item.payload is not None and item.value is not None
            if speed:
                at = dt.datetime.fromisoformat(item.payload["event_time"])
                first_event = first_event or at
                due = (at - first_event).total_seconds() / speed - (time.monotonic() - t0)
                if due > 0.002:
                    time.sleep(due)
            send(str(item.payload[fam.key_field]).encode(), item.value)
            report.sent += 1
    finally:
        bar.close()
        if reject_file:
            reject_file.close()
        report.elapsed_s = time.monotonic() - t0
    return report
