"""Structured logging: JSON lines for machines, a compact text form for people at a terminal.

Call sites pass context as `extra={...}` (station_id, message_id, action, ...); every line carries the node id.

Warnings and errors repeat per message when a station keeps sending the same bad thing, or when Postgres is
down and every call fails: :class:`RepeatFilter` lets one line of a kind through per interval and puts the
number it held back since into the next one (``repeated=N``), so a station cannot flood the log and an outage
costs one line per interval. A kind is the logger, the message template and the ``station_id`` (if any).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def __init__(self, node_id: str) -> None:
        super().__init__()
        self._node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "node_id": self._node_id,
            **_context(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(line, default=repr).decode()
        except orjson.JSONEncodeError:  # e.g. an unpaired surrogate a station sent: escape it, keep the line
            return json.dumps(line, default=repr, ensure_ascii=True, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def __init__(self, node_id: str) -> None:
        super().__init__("%(asctime)s %(levelname)-7s " + node_id + " %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _context(record)
        if context:
            text += " " + " ".join(f"{k}={v}" for k, v in context.items())
        return text


class RepeatFilter(logging.Filter):
    """At most one WARNING+ record per kind per ``interval`` seconds; the next one let through says how many
    were held back. INFO and below pass untouched. Memory is bounded by ``max_kinds``."""

    def __init__(
        self, interval: float = 10.0, *, max_kinds: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval = interval
        self._max_kinds = max_kinds
        self._clock = clock
        self._kinds: dict[tuple[str, object, object], list[float]] = {}  # kind -> [last let through, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        kind = (record.name, record.msg, getattr(record, "station_id", None))
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self._interval:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.repeated = int(seen[1])
        if seen is None and len(self._kinds) >= self._max_kinds:
            self._forget(now)
        self._kinds[kind] = [now, 0]
        return True

    def _forget(self, now: float) -> None:
        """Drop kinds quiet for an interval (their held-back counts are lost); if none are, drop them all."""
        quiet = [kind for kind, seen in self._kinds.items() if now - seen[0] >= self._interval]
        for kind in quiet or list(self._kinds):
            del self._kinds[kind]


def configure_logging(level: str, fmt: str, node_id: str, repeat_interval: float = 10.0) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatFilter(repeat_interval))
    formatter: logging.Formatter = JsonFormatter(node_id) if fmt == "json" else TextFormatter(node_id)
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("hypercorn.access", "httpx", "httpcore", "trio-websocket"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
