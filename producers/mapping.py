"""The mapping file of ``dozor replay``, validated like the settings: every key known, every value
checked, before a single row is read.

A mapping is a TOML file (docs/replay.md documents every key). It is read into pydantic models
with unknown keys refused — a misspelled ``skip_if_emtpy`` once passed silently and 1,454 rows
were then rejected as ``schema`` — and the refusal names the key, where it is, and the closest key
that exists. :class:`Mapping` is the checked result the replay uses.
"""

from __future__ import annotations

import datetime as dt
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from dozor.errors import DozorError
from dozor.geo import AreaMap
from dozor.localtime import AMBIGUOUS_RULES, zone_name
from dozor.schemas import FAMILIES, INPUT_FAMILIES

__all__ = ["Mapping", "MappingError", "MappingFile", "CAD_FIELDS", "ACD_FIELDS", "EPOCHS"]

#: The canonical fields of a ``cad`` row (one row per call).
CAD_FIELDS = frozenset({
    "incident_id", "channel", "category", "priority", "city", "district", "lat", "lon",
    "opened_at", "assigned_at", "en_route_at", "on_scene_at", "cleared_at", "closed_at", "cancelled_at",
    "units", "crew_type", "source_code", "source_area",
})  # fmt: skip
#: The canonical fields of an ``acd`` row (one row per 102 call from the call centre's telephony).
ACD_FIELDS = frozenset({
    "call_id", "channel", "city", "district", "offered_at", "answered_at", "abandoned_at",
    "transferred_at", "ended_at", "position_id", "incident_id",
})  # fmt: skip
#: Time formats that are units of an epoch, and their divisor to seconds.
EPOCHS = {"epoch_s": 1.0, "epoch_ms": 1000.0}


class MappingError(DozorError):
    """The mapping file is unusable; the message names the key that is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeTable(_Strict):
    format: str | None = None
    formats: dict[str, str] = {}
    roll_past_midnight: bool = False
    ambiguous: Literal["refuse", "earlier", "later"] = "refuse"


class CadTable(_Strict):
    close_at: Literal["closed_at", "cleared_at"] = "closed_at"
    units_separator: str = ","


class AreasTable(_Strict):
    file: str
    id: str


class MappingFile(_Strict):
    """The TOML file as written, before its columns are checked against the family."""

    family: Literal["violations", "incidents", "dispatches", "integrity", "calls", "cad", "acd"]
    columns: dict[str, str | list[str]]
    timezone: str | None = None
    format: Literal["csv", "jsonl", "parquet"] | None = None
    values: dict[str, dict[str, Any]] = {}
    constants: dict[str, Any] = {}
    time: TimeTable = TimeTable()
    cad: CadTable = CadTable()
    areas: AreasTable | None = None
    filter: dict[str, Any] = {}
    skip_if_empty: list[str] = []

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        if not v:
            raise ValueError("a [columns] table (canonical field = source column) is required")
        for name, source in v.items():
            if isinstance(source, list) and not source:
                raise ValueError(f"{name} must be a column name or a list of them")
        return v


#: Every key of the file, by table, for "did you mean".
_KEYS: dict[tuple[str, ...], list[str]] = {
    (): list(MappingFile.model_fields),
    ("time",): list(TimeTable.model_fields),
    ("cad",): list(CadTable.model_fields),
    ("areas",): list(AreasTable.model_fields),
}


def _explain(path: Path, e: ValidationError) -> str:
    """The first problem of a mapping, said as one line: where, what, and the closest known key."""
    err = e.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    where = ".".join(loc)
    if err["type"] == "extra_forbidden":
        known = _KEYS.get(loc[:-1], [])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        hint = (
            f"; did you mean {'.'.join((*loc[:-1], close[0]))}?" if close else f" (known: {', '.join(known)})"
        )
        table = f" in [{'.'.join(loc[:-1])}]" if loc[:-1] else ""
        return f"{path}: unknown key {loc[-1]!r}{table}{hint}"
    if err["type"] == "missing":
        return f"{path}: {where} is required"
    if err["type"] == "literal_error":
        expected = str(err["ctx"]["expected"]).replace("'", "").replace(" or ", ", ")
        return f"{path}: {where} must be one of {expected}, not {err['input']!r}"
    return f"{path}: {where}: {err['msg']}"


@dataclass(frozen=True)
class Mapping:
    """A parsed, checked mapping file."""

    family: str
    columns: dict[str, str | list[str]]
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    time_format: str | None = None
    time_formats: dict[str, str] = field(default_factory=dict)
    roll_past_midnight: bool = False
    #: Zone of times written without one: the mapping's ``timezone``, else the zone of its city
    #: (``[constants] city``) from :mod:`dozor.localtime`.
    timezone: str = "Asia/Almaty"
    #: What a wall-clock time that happened twice (the hour summer time ends) means.
    ambiguous: str = "refuse"
    format: str | None = None
    include: dict[str, list[str]] = field(default_factory=dict)
    exclude: dict[str, list[str]] = field(default_factory=dict)
    skip_if_empty: tuple[str, ...] = ()
    units_separator: str = ","
    close_at: str = "closed_at"
    #: The department's own areas (``[areas]``): each call's ``source_area`` is checked against
    #: them, or found from its position when the export has no area column.
    areas: AreaMap | None = field(default=None, compare=False)

    @property
    def families(self) -> tuple[str, ...]:
        """The topics' families this mapping sends to."""
        return {"cad": ("incidents", "dispatches"), "acd": ("calls",)}.get(self.family, (self.family,))

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
        try:
            f = MappingFile.model_validate(raw)
        except ValidationError as e:
            raise MappingError(_explain(path, e)) from None
        return cls._checked(path, f)

    @classmethod
    def _checked(cls, path: Path, f: MappingFile) -> Mapping:
        known = {"cad": CAD_FIELDS, "acd": ACD_FIELDS}.get(f.family) or (
            set(FAMILIES[f.family].model.model_fields) | {"plate"}
        )
        unknown = set(f.columns) - known
        if unknown:
            hints = []
            for name in sorted(unknown):
                close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
                hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
            raise MappingError(f"{path}: [columns] names unknown fields: {', '.join(hints)}")
        if f.family == "cad" and "opened_at" not in f.columns:
            raise MappingError(f"{path}: a cad mapping needs opened_at (when the call was received)")
        if f.family == "acd" and "offered_at" not in f.columns:
            raise MappingError(f"{path}: an acd mapping needs offered_at (when the call entered the queue)")
        assert f.family in (*INPUT_FAMILIES, "cad", "acd")
        city = f.constants.get("city")
        tz = f.timezone or (zone_name(str(city)) if city else "Asia/Almaty")
        try:
            ZoneInfo(tz)
        except Exception:
            raise MappingError(
                f"{path}: unknown timezone {tz!r} (an IANA name such as 'Asia/Almaty')"
            ) from None
        if f.time.format is not None:
            _check_time_format(path, "format", f.time.format)
        for name, fmt in f.time.formats.items():
            _check_time_format(path, f"formats.{name}", fmt)
        stray = set(f.skip_if_empty) - set(f.columns)
        if stray:
            raise MappingError(
                f"{path}: skip_if_empty must list fields of [columns]; not there: {sorted(stray)}"
            )
        include: dict[str, list[str]] = {}
        exclude: dict[str, list[str]] = {}
        for column, allowed in f.filter.items():
            if column == "exclude" and isinstance(allowed, dict):
                for col, refused in allowed.items():
                    if not isinstance(refused, list):
                        raise MappingError(f"{path}: [filter.exclude] {col} must be a list of values")
                    exclude[col] = [str(x) for x in refused]
            elif isinstance(allowed, list):
                include[column] = [str(x) for x in allowed]
            else:
                raise MappingError(f"{path}: [filter] {column} must be a list of values")
        assert f.time.ambiguous in AMBIGUOUS_RULES
        return cls(
            family=f.family, columns=f.columns, values=f.values, constants=f.constants,
            time_format=f.time.format, time_formats=f.time.formats,
            roll_past_midnight=f.time.roll_past_midnight, timezone=tz, ambiguous=f.time.ambiguous,
            format=f.format, include=include, exclude=exclude, skip_if_empty=tuple(f.skip_if_empty),
            units_separator=f.cad.units_separator, close_at=f.cad.close_at, areas=_load_areas(path, f.areas),
        )  # fmt: skip


def _load_areas(path: Path, table: AreasTable | None) -> AreaMap | None:
    """The ``[areas]`` table: ``file`` (GeoJSON, relative to the mapping) and ``id`` (the property
    holding each area's own id)."""
    if table is None:
        return None
    file = (path.parent / table.file).resolve()
    try:
        return AreaMap.load(file, table.id)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MappingError(f"{path}: [areas] {file.name}: {e}") from None


def _check_time_format(path: Path, key: str, fmt: object) -> None:
    """Refuse a [time] format that neither strptime nor an epoch unit can use, before any row."""
    if fmt in EPOCHS or fmt == "iso":
        return
    sample = dt.datetime(2021, 9, 14, 7, 8, 9)
    try:
        if not isinstance(fmt, str) or "%" not in fmt:
            raise ValueError("it has no % directive (or use epoch_s, epoch_ms, iso)")
        dt.datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as e:
        raise MappingError(f"{path}: [time] {key} {fmt!r} cannot be parsed: {e}") from None
