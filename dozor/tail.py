"""``dozor tail``: read a Dozor topic as a downstream consumer would, checking every message.

Each message is printed as indented JSON under a header (topic, partition, offset, key, broker
time) and checked against the family's published JSON Schema with ``jsonschema`` (the validator a
consumer in another language would also use), so a contract break shows up here first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from kafka import KafkaConsumer

from dozor.errors import DozorError
from dozor.schemas import FAMILIES, PUBLISHED, Family, json_schema
from dozor.settings import Settings

__all__ = ["TailStats", "resolve_family", "tail"]


@dataclass
class TailStats:
    read: int = 0
    invalid: int = 0


def resolve_family(settings: Settings, name: str) -> Family:
    """A family from its name ("alerts": its current version) or its full topic name ("dozor.alerts.v1")."""
    if name in FAMILIES:
        return FAMILIES[name]
    for family in PUBLISHED.values():
        if name == family.topic(settings.topic_prefix):
            return family
    example = settings.topic("alerts")
    raise DozorError(f"unknown topic {name!r}; one of: {', '.join(FAMILIES)} (or a full name like {example})")


def check(validator: Draft202012Validator, raw: bytes) -> str | None:
    """Why ``raw`` breaks the schema, or None when it conforms."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return f"not JSON: {e}"
    err = best_match(validator.iter_errors(doc))  # the most specific error inside anyOf branches
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "message"
    return f"{where}: {err.message}"


def tail(
    settings: Settings,
    family: Family,
    *,
    from_beginning: bool = False,
    max_messages: int | None = None,
    idle_seconds: float | None = None,
    emit: Callable[[str], None] = print,
) -> TailStats:
    """Print messages of ``family``'s topic until ``max_messages`` or ``idle_seconds`` without any."""
    validator = Draft202012Validator(json_schema(family), format_checker=FormatChecker())
    consumer = KafkaConsumer(
        family.topic(settings.topic_prefix),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        consumer_timeout_ms=int(idle_seconds * 1000) if idle_seconds else float("inf"),
        **settings.kafka_client_config(),
    )
    stats = TailStats()
    try:
        for msg in consumer:
            stats.read += 1
            when = dt.datetime.fromtimestamp(msg.timestamp / 1000, dt.UTC).isoformat(timespec="milliseconds")
            key = msg.key.decode(errors="replace") if msg.key else "-"
            problem = check(validator, msg.value or b"")
            mark = "ok" if problem is None else f"INVALID ({problem})"
            emit(f"── {msg.topic}[{msg.partition}]@{msg.offset}  key={key}  {when}  {mark}")
            try:
                emit(orjson.dumps(orjson.loads(msg.value), option=orjson.OPT_INDENT_2).decode())
            except orjson.JSONDecodeError:
                emit(repr(msg.value))
            if problem is not None:
                stats.invalid += 1
            if max_messages is not None and stats.read >= max_messages:
                break
    finally:
        consumer.close()
    return stats
