"""Parsed responses of the KV, lease and watch calls (plain frozen dataclasses, no JSON leaks out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cluster.codec import KeyValue, as_int, header_revision


@dataclass(frozen=True, slots=True)
class RangeResult:
    revision: int
    kvs: list[KeyValue]
    count: int
    more: bool

    @classmethod
    def from_json(cls, body: dict[str, Any], *, revision: int | None = None) -> RangeResult:
        return cls(
            revision=header_revision(body) if revision is None else revision,
            kvs=[KeyValue.from_json(kv) for kv in body.get("kvs", [])],
            count=as_int(body.get("count")),
            more=bool(body.get("more", False)),
        )

    def first(self) -> KeyValue | None:
        return self.kvs[0] if self.kvs else None


@dataclass(frozen=True, slots=True)
class PutResult:
    revision: int
    prev_kv: KeyValue | None

    @classmethod
    def from_json(cls, body: dict[str, Any], *, revision: int | None = None) -> PutResult:
        prev = body.get("prev_kv")
        return cls(
            revision=header_revision(body) if revision is None else revision,
            prev_kv=KeyValue.from_json(prev) if prev else None,
        )


@dataclass(frozen=True, slots=True)
class DeleteResult:
    revision: int
    deleted: int
    prev_kvs: list[KeyValue]

    @classmethod
    def from_json(cls, body: dict[str, Any], *, revision: int | None = None) -> DeleteResult:
        return cls(
            revision=header_revision(body) if revision is None else revision,
            deleted=as_int(body.get("deleted")),
            prev_kvs=[KeyValue.from_json(kv) for kv in body.get("prev_kvs", [])],
        )


OpResult = RangeResult | PutResult | DeleteResult


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool
    revision: int
    responses: list[OpResult]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> TxnResult:
        revision = header_revision(body)
        parsed: list[OpResult] = []
        for item in body.get("responses", []):
            if "response_range" in item:
                parsed.append(RangeResult.from_json(item["response_range"], revision=revision))
            elif "response_put" in item:
                parsed.append(PutResult.from_json(item["response_put"], revision=revision))
            elif "response_delete_range" in item:
                parsed.append(DeleteResult.from_json(item["response_delete_range"], revision=revision))
            else:  # nested txn responses are not used by this project
                raise ValueError(f"unsupported txn response: {sorted(item)}")
        return cls(succeeded=bool(body.get("succeeded", False)), revision=revision, responses=parsed)


@dataclass(frozen=True, slots=True)
class Lease:
    id: int
    ttl: int


@dataclass(frozen=True, slots=True)
class LeaseTimeToLive:
    id: int
    ttl: int  # -1 when the lease is gone
    granted_ttl: int
    keys: list[bytes]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev_kv: KeyValue | None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> WatchEvent:
        prev = raw.get("prev_kv")
        return cls(
            type="DELETE" if raw.get("type") == "DELETE" else "PUT",
            kv=KeyValue.from_json(raw["kv"]),
            prev_kv=KeyValue.from_json(prev) if prev else None,
        )
