"""The JSON gateway's wire format: base64 keys/values and int64s encoded as strings."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

Bytesish = bytes | str


def to_bytes(data: Bytesish) -> bytes:
    return data.encode() if isinstance(data, str) else data


def b64(data: Bytesish) -> str:
    return base64.b64encode(to_bytes(data)).decode("ascii")


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def as_int(value: Any) -> int:
    """int64 fields arrive as JSON strings and are omitted entirely when zero."""
    return int(value) if value is not None else 0


def prefix_range_end(prefix: Bytesish) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (etcd's range_end recipe)."""
    raw = bytearray(to_bytes(prefix))
    for i in range(len(raw) - 1, -1, -1):
        if raw[i] < 0xFF:
            raw[i] += 1
            return bytes(raw[: i + 1])
    return b"\0"  # all 0xff (or empty): range to the end of the keyspace


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> KeyValue:
        return cls(
            key=unb64(raw.get("key")),
            value=unb64(raw.get("value")),
            create_revision=as_int(raw.get("create_revision")),
            mod_revision=as_int(raw.get("mod_revision")),
            version=as_int(raw.get("version")),
            lease=as_int(raw.get("lease")),
        )


def header_revision(body: dict[str, Any]) -> int:
    return as_int(body.get("header", {}).get("revision"))
