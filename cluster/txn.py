"""Builders for txn compares and operations, producing the gateway's JSON shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cluster.codec import Bytesish, b64, prefix_range_end

CompareOp = Literal["=", "!=", "<", ">"]
_RESULT = {"=": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER"}


@dataclass(frozen=True, slots=True)
class Compare:
    """One guard of a transaction, e.g. ``Compare.create_revision(key, "=", 0)`` for "key absent"."""

    key: bytes | str
    target: Literal["VERSION", "CREATE", "MOD", "VALUE", "LEASE"]
    op: CompareOp
    operand: int | bytes | str

    @classmethod
    def version(cls, key: Bytesish, op: CompareOp, version: int) -> Compare:
        return cls(key, "VERSION", op, version)

    @classmethod
    def create_revision(cls, key: Bytesish, op: CompareOp, revision: int) -> Compare:
        return cls(key, "CREATE", op, revision)

    @classmethod
    def mod_revision(cls, key: Bytesish, op: CompareOp, revision: int) -> Compare:
        return cls(key, "MOD", op, revision)

    @classmethod
    def value(cls, key: Bytesish, op: CompareOp, value: Bytesish) -> Compare:
        return cls(key, "VALUE", op, value)

    @classmethod
    def lease(cls, key: Bytesish, op: CompareOp, lease_id: int) -> Compare:
        return cls(key, "LEASE", op, lease_id)

    def to_json(self) -> dict[str, Any]:
        field = {
            "VERSION": "version",
            "CREATE": "create_revision",
            "MOD": "mod_revision",
            "VALUE": "value",
            "LEASE": "lease",
        }[self.target]
        operand = self.operand
        if self.target == "VALUE":
            if isinstance(operand, int):
                raise TypeError("value compare needs bytes or str")
            encoded = b64(operand)
        else:
            encoded = str(operand)
        return {"key": b64(self.key), "target": self.target, "result": _RESULT[self.op], field: encoded}


def range_body(
    key: Bytesish,
    *,
    prefix: bool = False,
    range_end: Bytesish | None = None,
    revision: int | None = None,
    keys_only: bool = False,
    count_only: bool = False,
    limit: int | None = None,
    serializable: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {"key": b64(key)}
    if prefix:
        body["range_end"] = b64(prefix_range_end(key))
    elif range_end is not None:
        body["range_end"] = b64(range_end)
    if revision:
        body["revision"] = str(revision)
    if keys_only:
        body["keys_only"] = True
    if count_only:
        body["count_only"] = True
    if limit:
        body["limit"] = str(limit)
    if serializable:
        body["serializable"] = True
    return body


def put_body(key: Bytesish, value: Bytesish, *, lease: int = 0, prev_kv: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        body["lease"] = str(lease)
    if prev_kv:
        body["prev_kv"] = True
    return body


def delete_body(
    key: Bytesish, *, prefix: bool = False, range_end: Bytesish | None = None, prev_kv: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {"key": b64(key)}
    if prefix:
        body["range_end"] = b64(prefix_range_end(key))
    elif range_end is not None:
        body["range_end"] = b64(range_end)
    if prev_kv:
        body["prev_kv"] = True
    return body


@dataclass(frozen=True, slots=True)
class Op:
    """One operation inside a txn branch; build with ``Op.get``, ``Op.put`` or ``Op.delete``."""

    body: dict[str, Any]

    @classmethod
    def get(cls, key: Bytesish, **kwargs: Any) -> Op:
        return cls({"request_range": range_body(key, **kwargs)})

    @classmethod
    def put(cls, key: Bytesish, value: Bytesish, *, lease: int = 0, prev_kv: bool = False) -> Op:
        return cls({"request_put": put_body(key, value, lease=lease, prev_kv=prev_kv)})

    @classmethod
    def delete(cls, key: Bytesish, *, prefix: bool = False, prev_kv: bool = False) -> Op:
        return cls({"request_delete_range": delete_body(key, prefix=prefix, prev_kv=prev_kv)})
