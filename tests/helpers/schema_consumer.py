"""A downstream consumer written only from Dozor's published JSON Schema files: no project imports.

It stands for a team that receives ``docs/schemas/*.json`` and a broker address, nothing more, and
checks that what Dozor publishes is readable with that alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker
from kafka import KafkaConsumer

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def read_topic(bootstrap: str, topic: str, schema_file: str, idle_ms: int = 4000) -> list[dict]:
    """Every message on ``topic`` (committed only), each validated against ``schema_file``."""
    schema = json.loads((SCHEMAS / schema_file).read_text())
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=idle_ms,
        isolation_level="read_committed",
    )
    out = []
    for msg in consumer:
        doc = json.loads(msg.value)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            raise AssertionError(
                f"{topic}@{msg.partition}:{msg.offset} breaks {schema_file}: {errors[0].message}"
            )
        out.append(doc)
    consumer.close()
    return out
