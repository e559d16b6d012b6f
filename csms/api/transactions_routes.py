"""Transactions: list (filters), one with its meter values, and an operator's close of a stale one."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.errors import ApiError
from csms.api.models.bodies import TransactionClose
from csms.api.models.fields import INT32_MAX
from csms.api.responses import JsonResponse
from csms.api.validation import bad, json_body, page_limit, parse, parse_bool, parse_datetime, parse_id
from csms.transactions import TransactionLedger

log = logging.getLogger(__name__)


def _path_transaction_id(request: Request) -> int:
    raw = request.path_params["transaction_id"]
    if not (raw.isascii() and raw.isdigit()) or int(raw) > INT32_MAX:
        raise ApiError(400, "bad_request", "a transaction id is a positive 32-bit integer")
    return int(raw)


def _id_tag_filter(raw: str | None) -> str | None:
    if raw is not None and not 1 <= len(raw) <= 36:
        raise ApiError(400, "bad_request", "id_tag must be 1-36 characters (OCPP IdToken)")
    return raw


def transaction_routes(auth: TokenAuth, ledger: TransactionLedger) -> list[Route]:
    async def list_transactions(request: Request) -> Response:
        auth.require(request, "read")
        q = request.query_params
        limit = page_limit(request)
        items = await ledger.page(
            station_id=q.get("station_id"),
            id_tag=_id_tag_filter(q.get("id_tag")),
            active=parse_bool(q.get("active"), "active"),
            since=parse_datetime(q.get("since"), "since"),
            limit=limit,
            before_id=parse_id(q.get("before"), "before", maximum=INT32_MAX),
        )
        next_before = items[-1]["id"] if len(items) == limit else None
        return JsonResponse({"items": items, "next": next_before})

    async def get_transaction(request: Request) -> Response:
        auth.require(request, "read")
        transaction_id = _path_transaction_id(request)
        transaction = await ledger.get(transaction_id)
        if transaction is None:
            raise ApiError(404, "not_found", f"transaction {transaction_id} does not exist")
        return JsonResponse(transaction)

    async def close_transaction(request: Request) -> Response:
        """For a transaction whose StopTransaction will never come (station replaced, queue lost)."""
        role = auth.require(request, "operator")
        transaction_id = _path_transaction_id(request)
        body = parse(TransactionClose, await json_body(request))
        reason, meter_stop = body.reason, body.meter_stop
        requested_by = f"token:{role}"
        outcome, meter_start = await ledger.close_by_operator(
            transaction_id, reason=reason, meter_stop=meter_stop, requested_by=requested_by
        )
        if outcome == "unknown":
            raise ApiError(404, "not_found", f"transaction {transaction_id} does not exist")
        if outcome == "already-closed":
            raise ApiError(409, "conflict", f"transaction {transaction_id} is already closed")
        if outcome == "below-start":
            raise bad(f"meter_stop must be at least the transaction's meter_start ({meter_start} Wh)")
        log.info(
            "transaction closed by an operator",
            extra={"transaction_id": transaction_id, "requested_by": requested_by, "reason": reason},
        )
        return JsonResponse(await ledger.get(transaction_id))

    return [
        Route("/api/v1/transactions", list_transactions),
        Route("/api/v1/transactions/{transaction_id}", get_transaction),
        Route("/api/v1/transactions/{transaction_id}/close", close_transaction, methods=["POST"]),
    ]
