"""The etcd key layout under one prefix, and the tolerant JSON decoding of the values stored there."""

from __future__ import annotations

import orjson


def decode(raw: bytes) -> dict[str, object]:
    """A JSON object, or {} for anything else (a value someone else wrote must not crash the node)."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class Keys:
    """``nodes/{node}``, ``owners/{station}``, ``leader``, ``fence-domain`` and ``singletons/{group}/{name}``
    (an exclusive job's key: ``singletons/exclusive/{job}/holder``) under ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.owners = f"{self.prefix}owners/"
        self.nodes = f"{self.prefix}nodes/"
        self.leader = f"{self.prefix}leader"
        self.domain = f"{self.prefix}fence-domain"

    def owner(self, station_id: str) -> str:
        return self.owners + station_id

    def station_of(self, key: bytes) -> str:
        return key[len(self.owners) :].decode(errors="replace")

    def node_of(self, key: bytes) -> str:
        return key[len(self.nodes) :].decode(errors="replace")

    def singletons(self, group: str) -> str:
        return f"{self.prefix}singletons/{group}/"
