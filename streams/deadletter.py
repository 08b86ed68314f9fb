"""The dead-letter topic's records: what was refused, why, and where it came from.

One home for the record's shape, used by every worker that refuses something: the ingest
(validation, storage) and the join (processing). The value is the message as it arrived; the
headers say why (``dozor.reason``, one of :data:`dozor.schemas.REASONS`, and ``dozor.detail``),
where from (``dozor.source.topic/partition/offset``) and when (``dozor.failed_at``).
"""

from __future__ import annotations

import hashlib

from dozor.schemas import MAX_MESSAGE_BYTES

__all__ = ["Rejected", "deadletter_record", "DEADLETTER_MAX_VALUE"]


class Rejected:
    """A message refused (by validation, by ClickHouse, by a derived-output worker), on its way to
    the dead-letter topic."""

    __slots__ = ("topic", "partition", "offset", "key", "value", "reason", "detail")

    def __init__(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        reason: str, detail: str,
    ) -> None:  # fmt: skip
        self.topic, self.partition, self.offset = topic, partition, offset
        self.key, self.value, self.reason, self.detail = key, value, reason, detail


#: A dead letter carries at most this much of the original value. A message near the broker's size
#: limit could not be sent again whole with the reason headers added; the commit that carried it
#: would fail, and the partition would be read again forever. Oversize messages are refused at
#: MAX_MESSAGE_BYTES, so only they are ever cut.
DEADLETTER_MAX_VALUE = MAX_MESSAGE_BYTES


def deadletter_record(r: Rejected, failed_at: bytes) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """The dead-letter value and headers of ``r``: the reason, where it came from, and — when the
    value had to be cut — its original size and SHA-256, so it can still be found and matched."""
    headers = [
        ("dozor.reason", r.reason.encode()),
        ("dozor.detail", r.detail[:1000].encode()),
        ("dozor.source.topic", r.topic.encode()),
        ("dozor.source.partition", str(r.partition).encode()),
        ("dozor.source.offset", str(r.offset).encode()),
        ("dozor.failed_at", failed_at),
    ]
    value = r.value
    if value is not None and len(value) > DEADLETTER_MAX_VALUE:
        headers += [
            ("dozor.truncated", b"1"),
            ("dozor.original_size", str(len(value)).encode()),
            ("dozor.original_sha256", hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[:DEADLETTER_MAX_VALUE]
    return value, headers
