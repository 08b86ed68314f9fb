"""Replaying real-world records from CSV, JSONL or Parquet into Dozor's input topics.

A TOML *mapping file* says how the source's columns become canonical events, so a department's
export needs a mapping, not new code (``docs/replay.md`` documents every key, with three complete
examples under ``docs/examples/``):

.. code-block:: toml

    family = "cad"                        # one row per call: several events (see below)
    timezone = "America/New_York"         # zone of times written without one
    [columns]                             # canonical field = source column(s)
    incident_id = "Incident Number"
    opened_at = ["Date", "Received"]      # a field from several columns, joined by a space
    on_scene_at = ["Date", "Arrived"]
    units = "Units"                       # "1A12, 1B03": one dispatch per unit and moment
    [time]
    format = "%m/%d/%y %H:%M"             # strptime, or "epoch_s" / "epoch_ms"
    roll_past_midnight = true             # 23:50 received, 00:05 arrived: the next day
    [values.category]
    "BURGLARY" = "theft"
    "*" = "other"                         # default for every other value (reported)

Families: ``violations``, ``incidents``, ``dispatches``, ``integrity``, ``calls`` (one event per
row); ``cad`` — one row per call with several moments, which becomes an incident opened event, for
each unit a dispatch event per moment that is filled (assigned, en route, on scene, cleared) and a
closure, in that order, all keyed by the incident so the join reads them in order; and ``acd`` —
one row per 102 call from the call centre's telephony (offered, answered, transferred, ended), which
becomes a call event per moment that is filled. An ACD row with no answer but an end is an abandoned
call (the caller hung up in the queue), as ACD reports count it.

Every event is checked by the same validator the workers run before it is sent: one that would be
dead-lettered is reported with its reason instead (and written to ``--rejects``), so the report says
exactly what reached Kafka. Without an id column an event's id is derived from the file's name,
the row number and the event's place in the row (UUID v5): replaying the file again repeats the
ids, and two distinct rows that look alike stay two events.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from dozor.cities import CITY_IDS, city, resolve_district
from dozor.geo import AreaMap
from dozor.localtime import BadLocalTime, localize
from dozor.privacy import hash_plate, mask_plate
from dozor.producers.mapping import ACD_FIELDS, CAD_FIELDS, EPOCHS, Mapping, MappingError
from dozor.schemas import EARLIEST_EVENT, FAMILIES, InvalidEvent, parse_event

__all__ = [
    "Mapping", "MappingError", "ReplayReport", "Mapped", "CAD_FIELDS", "ACD_FIELDS", "read_rows", "map_rows",
    "replay",
]  # fmt: skip

#: Namespace of derived event ids: the same file, row and event always give the same id.
_REPLAY_NS = uuid.UUID("5b0a3c1e-6f0e-4a8e-9a57-0d0f1a6b7c01")
_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_NUMERIC = {"lat", "lon", "speed_kmh", "speed_limit_kmh", "priority"}

#: A cad row's moments, in the order a unit goes through them, with the dispatch status of each.
_UNIT_MOMENTS = (("assigned_at", "assigned"), ("en_route_at", "en_route"), ("on_scene_at", "on_scene"),
                 ("cleared_at", "cleared"))  # fmt: skip


@dataclass
class ReplayReport:
    """What a replay did: rows read, events sent per family, rows skipped and rejected with reasons
    (and examples), and the source values that fell to a mapping's default."""

    read: int = 0
    sent: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    defaulted: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    elapsed_s: float = 0.0
    earliest: dt.datetime | None = None
    latest: dt.datetime | None = None
    #: Incident and dispatch events older than the newest before them by more than the join keeps
    #: incidents: the join drops those (its state is bounded), so their response times are lost.
    out_of_order: int = 0
    join_retention: dt.timedelta = dt.timedelta(hours=24)
    #: District names that are no district of their city: stored without one, never moved.
    unknown_districts: Counter = field(default_factory=Counter)
    #: Calls naming an area the ``[areas]`` file does not have (kept as given), and calls whose
    #: position lies in none of its areas (or that have none) when the area comes from the position.
    unknown_areas: Counter = field(default_factory=Counter)
    unplaced: int = 0
    areas_source: str = ""
    #: Areas the ``[areas]`` file names without a shape: known ids, but no position falls in them.
    areas_without_geometry: list[str] = field(default_factory=list)

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())

    def summary(self, dry_run: bool = False) -> str:
        rate = self.sent_total / self.elapsed_s if self.elapsed_s else 0.0
        verb = "would send" if dry_run else "sent"
        by_family = ", ".join(f"{n} {fam}" for fam, n in sorted(self.sent.items())) or "0"
        lines = [
            f"read {self.read} rows, {verb} {self.sent_total} events ({by_family}), rejected "
            f"{sum(self.rejected.values())}, skipped {sum(self.skipped.values())} in "
            f"{self.elapsed_s:.1f} s ({rate:,.0f} events/s)"
        ]
        if self.earliest and self.latest:
            lines.append(f"  events from {self.earliest:%Y-%m-%d %H:%M} to {self.latest:%Y-%m-%d %H:%M} UTC")
        if self.out_of_order:
            hours = self.join_retention.total_seconds() / 3600
            lines.append(
                f"  WARNING: {self.out_of_order} incident/dispatch events come more than {hours:g} h after "
                "a later one; the join drops them and their response times are lost: sort the file by "
                "time first (or raise DOZOR_JOIN_RETENTION_HOURS)"
            )
        for reason, n in self.rejected.most_common():
            lines.append(f"  rejected {n}: {reason}")
            lines += [f"      e.g. {x}" for x in self.examples[reason]]
        lines += [f"  skipped {n}: {why}" for why, n in self.skipped.most_common()]
        for name, values in sorted(self.defaulted.items()):
            lines.append(f"  {name}: {sum(values.values())} values fell to the default: {_top(values)}")
        if self.unknown_districts:
            n = sum(self.unknown_districts.values())
            lines.append(f"  district: {n} events name no district of their city, stored without one "
                         f"(never moved by position): {_top(self.unknown_districts)}")  # fmt: skip
        if self.unknown_areas:
            lines.append(f"  source_area: {sum(self.unknown_areas.values())} calls name no area of "
                         f"{self.areas_source}, kept as given: {_top(self.unknown_areas)}")  # fmt: skip
        if self.areas_without_geometry:
            ids = ", ".join(self.areas_without_geometry[:8])
            n = len(self.areas_without_geometry)
            lines.append(f"  [areas] {self.areas_source}: {n} areas have no geometry (known by id; no "
                         f"position falls in them): {ids}")  # fmt: skip
        if self.unplaced:
            lines.append(f"  source_area: {self.unplaced} calls lie in no area of {self.areas_source} "
                         "(or have no position): stored without one")  # fmt: skip
        return "\n".join(lines)


def _top(values: Counter) -> str:
    more = f" and {len(values) - 8} more" if len(values) > 8 else ""
    return ", ".join(f"{v!r} ×{n}" for v, n in values.most_common(8)) + more


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


def count_rows(path: Path, fmt: str | None = None) -> int | None:
    """Rows in the file, for the progress bar's ETA: a pass over its bytes (CSV, JSONL; a quoted
    cell with a line break counts twice, so the ETA errs early) or Parquet's metadata."""
    fmt = fmt or _FORMATS.get(path.suffix.lower())
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if fmt not in ("csv", "jsonl"):
        return None
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
    return max(lines - (fmt == "csv"), 0)


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _read_time(value: Any, fmt: str | None) -> dt.datetime:
    """A cell as a time: aware when the cell says its zone (epoch numbers, ISO with an offset, a
    datetime with one), else a naive wall-clock time. Epoch seconds or milliseconds by ``fmt`` (a
    bare number without one is seconds), a strptime format, or ISO 8601."""
    if isinstance(value, dt.datetime):
        return value
    if fmt in EPOCHS or (fmt is None and isinstance(value, int | float)):
        return dt.datetime.fromtimestamp(float(value) / EPOCHS.get(fmt or "epoch_s", 1.0), dt.UTC)
    s = str(value).strip()
    if fmt is None and _NUMBER.match(s):
        raise ValueError(f'{s!r} is a number: say [time] format = "epoch_s" or "epoch_ms"')
    return dt.datetime.strptime(s, fmt) if fmt and fmt != "iso" else dt.datetime.fromisoformat(s)


def _parse_time(
    value: Any, fmt: str | None, tz: ZoneInfo, ambiguous: str = "refuse", after: dt.datetime | None = None
) -> dt.datetime:
    """A cell as an aware UTC time. A wall-clock time is read in ``tz`` through
    :func:`dozor.localtime.localize`: one inside a clock change's gap is refused, one in its
    overlap too unless ``ambiguous`` says which (:class:`~dozor.localtime.BadLocalTime`).

    With ``after`` (the call's opening, for ``roll_past_midnight``), a moment earlier than it is on
    the next *local* day: 23:55 received, 00:06 arrived is eleven minutes on the night clocks move,
    not 24 UTC hours on (which gave 71 and 1,391 minutes in Los Angeles' two changes of 2021-22).
    """
    t = _read_time(value, fmt)
    if after is not None and (t.tzinfo is None or t < after):
        wall = t if t.tzinfo is None else t.astimezone(tz).replace(tzinfo=None)
        opened = after.astimezone(tz).replace(tzinfo=None)
        for _ in range(2):
            if wall >= opened:
                break
            wall += dt.timedelta(days=1)
        if t.tzinfo is None or wall != t.astimezone(tz).replace(tzinfo=None):
            t = wall
    if t.tzinfo is None:
        t = localize(t, tz, ambiguous)  # type: ignore[arg-type]
    return t.astimezone(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class _Row:
    """One source row, read through the mapping: cells, filters, value maps and times."""

    def __init__(self, row: dict[str, Any], m: Mapping, tz: ZoneInfo, report: ReplayReport) -> None:
        self.row, self.m, self.tz, self.report = row, m, tz, report
        self._values: dict[str, Any] = {}

    def cell(self, name: str) -> Any:
        """The canonical field's raw value, or None when empty or unmapped."""
        source = self.m.columns.get(name)
        if source is None:
            return None
        sources = [source] if isinstance(source, str) else source
        parts = []
        for s in sources:
            if s not in self.row:
                raise KeyError(f"column {s!r} (for {name}) is not in the file")
            v = self.row[s]
            if isinstance(v, str):
                v = v.strip()
            if v in ("", None):
                if len(sources) > 1:
                    return None  # a date without its time (or the reverse) is no moment
                continue
            parts.append(v)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else " ".join(str(p) for p in parts)

    def value(self, name: str) -> Any:
        """The field's canonical value: the cell through ``[values.<name>]`` (with ``"*"`` as the
        default, counted once per row in the report), a number for numeric fields, or a constant."""
        if name not in self._values:
            self._values[name] = self._value(name)
        return self._values[name]

    def _value(self, name: str) -> Any:
        v = self.cell(name)
        if v is None:
            return self.m.constants.get(name)
        table = self.m.values.get(name)
        if table is not None:
            key = str(v)
            if key in table:
                v = table[key]
            elif "*" in table:
                self.report.defaulted[name][key] += 1
                v = table["*"]
        if name in _NUMERIC and isinstance(v, str | int | float):
            v = float(str(v).replace(",", ".")) if name in ("lat", "lon") else int(float(v))
        return v

    def time(self, name: str, after: dt.datetime | None = None) -> dt.datetime | None:
        """The field as a UTC time; with ``roll_past_midnight``, a time of day earlier than
        ``after`` (the call's opening) is on the next local day."""
        v = self.cell(name)
        if v is None:
            c = self.m.constants.get(name)
            return None if c is None else _parse_time(c, None, self.tz, self.m.ambiguous)
        fmt = self.m.time_formats.get(name, self.m.time_format)
        return _parse_time(v, fmt, self.tz, self.m.ambiguous, after if self.m.roll_past_midnight else None)

    def skip_reason(self) -> str | None:
        """Why the row is left out by the mapping's filter or skip_if_empty, if it is."""
        for column, allowed in self.m.include.items():
            if str(self.row.get(column, "")).strip() not in allowed:
                return f"filter: {column} not in {allowed}"
        for column, refused in self.m.exclude.items():
            if str(self.row.get(column, "")).strip() in refused:
                return f"filter: {column} in {refused}"
        for name in self.m.skip_if_empty:
            if self.cell(name) is None:
                return f"{name} is empty"
        return None


def _event_id(source: str, row_number: int, part: str) -> str:
    """An id from the file and the row: for events with nothing of their own to be known by."""
    return str(uuid.uuid5(_REPLAY_NS, f"{source}:{row_number}:{part}"))


def _natural_id(*parts: object) -> str:
    """An id from what the event *is* — the incident (or camera) and the moment — so the same call in
    two overlapping exports (a daily export repeats yesterday's late rows) is one event, whatever
    file or row it comes in. The real CAD log repeated 1,013 of 19,063 calls this way."""
    return str(uuid.uuid5(_REPLAY_NS, "\x1f".join(str(p) for p in parts)))


#: The fields that say what a one-event row is, per family: its id is made from them when the
#: export has no id column. Integrity reports have nothing of their own: their id stays the row's.
_NATURAL_KEYS = {
    "violations": ("city", "camera_id", "event_time", "violation_type", "plate_hash"),
    "incidents": ("city", "incident_id", "status", "event_time"),
    "dispatches": ("city", "incident_id", "unit_id", "status", "event_time"),
    "calls": ("city", "call_id", "status", "event_time"),
}


def _single(r: _Row, m: Mapping, salt: str, source: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    """A one-event row (violations, incidents, dispatches, integrity)."""
    out: dict[str, Any] = {"schema_version": FAMILIES[m.family].version, **m.constants}
    times = {
        name
        for name in FAMILIES[m.family].model.model_fields
        if name in ("event_time", "opened_at", "offered_at")
    }
    for name in m.columns:
        if name in times:
            t = r.time(name)
            if t is not None:
                out[name] = _iso(t)
            continue
        v = r.value(name)
        if v is not None:
            out[name] = v
    plate = out.pop("plate", None)
    if plate is not None:
        out["plate_hash"] = hash_plate(str(plate), salt)
        out["plate_masked"] = mask_plate(str(plate))
    key = _NATURAL_KEYS.get(m.family)
    if key and all(out.get(k) is not None for k in key):
        out.setdefault("event_id", _natural_id(m.family, *(out[k] for k in key)))
    out.setdefault("event_id", _event_id(source, n, m.family))
    return [(m.family, out)]


def _cad(r: _Row, m: Mapping, source: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    """A call with several moments: incident opened, each unit's filled moments, the closure."""
    opened = r.time("opened_at")
    if opened is None:
        raise ValueError("opened_at is empty")
    given = r.value("incident_id")
    incident_id = given or f"{Path(source).stem[:40]}-{n}"
    incident_id = re.sub(r"[^A-Za-z0-9_-]", "-", str(incident_id)).strip("-_")[:64] or f"row-{n}"
    place = {k: r.value(k) for k in ("city", "district") if r.value(k) is not None}

    def eid(part: str) -> str:
        # A call with its own number is known by it (and its city) in every export; one without,
        # by its file and row.
        if given:
            return _natural_id("cad", place.get("city"), incident_id, part)
        return _event_id(source, n, part)

    incident = {"incident_id": incident_id, "opened_at": _iso(opened), **place,
                **{k: r.value(k) for k in ("channel", "category", "priority", "lat", "lon", "source_code",
                                           "source_area") if r.value(k) is not None}}  # fmt: skip
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "incidents",
            {
                "schema_version": 1,
                "event_id": eid("opened"),
                "status": "opened",
                "event_time": _iso(opened),
                **incident,
            },
        )  # fmt: skip
    ]
    units_cell = r.value("units")
    units = [u.strip() for u in str(units_cell).split(m.units_separator) if u.strip()] if units_cell else []
    crew = r.value("crew_type") or "car"
    moments = [(status, r.time(name, after=opened)) for name, status in _UNIT_MOMENTS]
    for unit in units:
        for status, t in moments:
            if t is not None:
                events.append(("dispatches", {
                    "schema_version": 1, "event_id": eid(f"{unit}:{status}"),
                    "event_time": _iso(t), "dispatch_id": f"{incident_id}-{unit}"[:64],
                    "incident_id": incident_id, "unit_id": unit, "crew_type": crew, "status": status, **place,
                }))  # fmt: skip
    cancelled = r.time("cancelled_at", after=opened)
    closed = r.time(m.close_at, after=opened)
    end, status = (cancelled, "cancelled") if cancelled is not None else (closed, "closed")
    if end is not None:
        events.append(("incidents", {"schema_version": 1, "event_id": eid(status),
                                     "status": status, "event_time": _iso(end), **incident}))  # fmt: skip
    return events


def _acd(r: _Row, m: Mapping, source: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    """A 102 call with several moments: offered, answered (or abandoned), transferred, ended."""
    offered = r.time("offered_at")
    if offered is None:
        raise ValueError("offered_at is empty")
    given = r.value("call_id")
    call_id = re.sub(r"[^A-Za-z0-9_-]", "-", str(given or f"{Path(source).stem[:40]}-{n}")).strip("-_")[:64]
    call_id = call_id or f"row-{n}"
    place = {k: r.value(k) for k in ("city", "district") if r.value(k) is not None}

    def eid(part: str) -> str:
        if given:
            return _natural_id("acd", place.get("city"), call_id, part)
        return _event_id(source, n, part)

    base = {"schema_version": 1, "call_id": call_id, "offered_at": _iso(offered),
            "channel": r.value("channel") or "line_102", **place}  # fmt: skip
    position = r.value("position_id")
    incident = r.value("incident_id")
    moments = {name: r.time(name, after=offered) for name in ("answered_at", "abandoned_at", "transferred_at",
                                                            "ended_at")}  # fmt: skip
    answered, ended = moments["answered_at"], moments["ended_at"]
    abandoned = moments["abandoned_at"] or (ended if answered is None else None)
    steps: list[tuple[str, dt.datetime | None, dict[str, Any]]] = [
        ("offered", offered, {}),
        ("answered", answered, {"position_id": position}),
        ("abandoned", abandoned, {}),
        ("transferred", moments["transferred_at"], {"position_id": position}),
        (
            "ended",
            ended if answered is not None else None,
            {"position_id": position, "incident_id": incident},
        ),
    ]
    events = []
    for status, at, extra in steps:
        if at is None:
            continue
        payload = {**base, "event_id": eid(status), "event_time": _iso(at), "status": status,
                   **{k: v for k, v in extra.items() if v is not None}}  # fmt: skip
        if status != "offered" and position is not None and "position_id" in extra:
            payload["position_id"] = str(position)
        events.append(("calls", payload))
    return events


@dataclass(frozen=True)
class Mapped:
    """One event of a row after mapping: a payload to send, or the reason it cannot be."""

    row_number: int
    family: str
    payload: dict[str, Any] | None
    value: bytes | None
    reason: str | None = None
    detail: str = ""


def map_rows(
    rows: Iterator[dict[str, Any]], m: Mapping, salt: str, source: str = "",
    report: ReplayReport | None = None, earliest: dt.datetime = EARLIEST_EVENT,
    retained_since: dict[str, dt.datetime] | None = None,
) -> Iterator[Mapped]:  # fmt: skip
    """Map and validate every row, in order; ``source`` (the file's name) seeds derived ids. Rows
    left out by the mapping's filter are counted in ``report.skipped`` and yield nothing."""
    tz = ZoneInfo(m.timezone)
    report = report if report is not None else ReplayReport()
    if m.areas is not None:
        report.areas_source = m.areas.source
        report.areas_without_geometry = list(m.areas.without_geometry)
    for n, row in enumerate(rows, 1):
        report.read += 1
        try:
            if "__error__" in row:
                raise ValueError(row["__error__"])
            r = _Row(row, m, tz, report)
            skip = r.skip_reason()
            if skip:
                report.skipped[skip] += 1
                continue
            if m.family == "cad":
                events = _cad(r, m, source, n)
            elif m.family == "acd":
                events = _acd(r, m, source, n)
            else:
                events = _single(r, m, salt, source, n)
        except BadLocalTime as e:
            yield Mapped(n, m.families[0], None, None, "bad_time", str(e))
            continue
        except (ValueError, KeyError, TypeError, OverflowError) as e:
            yield Mapped(n, m.families[0], None, None, "unmappable", str(e).strip("'\""))
            continue
        if m.areas is not None:
            _place(events, m.areas, report)
        for family, payload in events:
            value = orjson.dumps(payload)
            try:
                parse_event(
                    family, value, earliest=earliest, retained_since=(retained_since or {}).get(family)
                )
            except InvalidEvent as e:
                yield Mapped(n, family, payload, value, e.reason, e.detail)
                continue
            _check_district(payload, report)
            yield Mapped(n, family, payload, value)


def _place(events: list[tuple[str, dict[str, Any]]], areas: AreaMap, report: ReplayReport) -> None:
    """Check a call's own area against the department's areas, or find it from the position."""
    calls = [p for family, p in events if family == "incidents"]
    if not calls:
        return
    report.areas_source = areas.source
    given, lat, lon = calls[0].get("source_area"), calls[0].get("lat"), calls[0].get("lon")
    if given:
        if str(given) not in areas.ids:
            report.unknown_areas[str(given)] += 1
        return
    found = areas.area_at(lat, lon) if lat is not None and lon is not None else ""
    if not found:
        report.unplaced += 1
    for p in calls:
        p["source_area"] = found


def _check_district(payload: dict[str, Any], report: ReplayReport) -> None:
    """Count a district name the worker will not know (it stores the event without a district)."""
    name, city_id = payload.get("district"), payload.get("city")
    if name and city_id in CITY_IDS and name not in city(city_id).district_ids and not resolve_district(
            city_id, str(name)):  # fmt: skip
        report.unknown_districts[str(name)] += 1


def replay(
    path: Path,
    mapping: Mapping,
    send: Callable[[str, bytes, bytes], object] | None,
    salt: str,
    speed: float | None = None,
    rejects: Path | None = None,
    progress: bool = True,
    earliest: dt.datetime = EARLIEST_EVENT,
    join_retention: dt.timedelta = dt.timedelta(hours=24),
    retained_since: dict[str, dt.datetime] | None = None,
) -> ReplayReport:
    """Send a file's valid events through ``send(family, key, value)``; with ``send=None`` (a dry
    run) map and validate only.

    :param speed: None: as fast as possible; 1.0: the original pace (gaps between event times are
        slept); N: N times faster.
    :param earliest: the oldest event time accepted (``DOZOR_EARLIEST_EVENT_DATE``; the workers
        must use the same).
    :param retained_since: per family, where its table's retention starts: older events are
        refused as ``expired``, as the workers refuse them, rather than stored and deleted.
    """
    from tqdm import tqdm

    report = ReplayReport(join_retention=join_retention)
    newest_joined: dt.datetime | None = None
    t0 = time.monotonic()
    first_event: dt.datetime | None = None
    reject_file = rejects.open("wb") if rejects else None
    total = count_rows(path, mapping.format) if progress else None
    bar = tqdm(total=total, unit=" rows", disable=not progress, desc=path.name, mininterval=0.5)
    try:
        rows = read_rows(path, mapping.format)
        for item in map_rows(rows, mapping, salt, path.name, report, earliest, retained_since):
            if report.read != bar.n:
                bar.update(report.read - bar.n)
            if item.reason:
                report.rejected[item.reason] += 1
                if len(report.examples[item.reason]) < 3:
                    report.examples[item.reason].append(f"row {item.row_number}: {item.detail}"[:200])
                if reject_file:
                    reject_file.write(orjson.dumps(
                        {"row": item.row_number, "family": item.family, "reason": item.reason,
                         "detail": item.detail}) + b"\n")  # fmt: skip
                continue
            assert item.payload is not None and item.value is not None
            at = dt.datetime.fromisoformat(item.payload["event_time"])
            report.earliest = at if report.earliest is None or at < report.earliest else report.earliest
            report.latest = at if report.latest is None or at > report.latest else report.latest
            if item.family in ("incidents", "dispatches"):
                if newest_joined is not None and at < newest_joined - join_retention:
                    report.out_of_order += 1
                newest_joined = at if newest_joined is None or at > newest_joined else newest_joined
            if speed and send is not None:
                first_event = first_event or at
                due = (at - first_event).total_seconds() / speed - (time.monotonic() - t0)
                if due > 0.002:
                    time.sleep(due)
            if send is not None:
                key = str(item.payload[FAMILIES[item.family].key_field]).encode()
                send(item.family, key, item.value)
            report.sent[item.family] += 1
    finally:
        bar.close()
        if reject_file:
            reject_file.close()
        report.elapsed_s = time.monotonic() - t0
    return report
