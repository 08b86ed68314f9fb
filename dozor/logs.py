"""Structured logging: one JSON object per line, so log shippers need no parsing rules."""

from __future__ import annotations

import datetime as dt
import logging
import sys

import orjson

__all__ = ["configure_logging"]


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg"}`` plus the exception text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def configure_logging(level: str = "INFO", json: bool | None = None) -> None:
    """JSON when stderr is not a terminal (services, CI); readable lines for a person at a terminal."""
    use_json = (not sys.stderr.isatty()) if json is None else json
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if use_json
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("kafka", "aiokafka", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
