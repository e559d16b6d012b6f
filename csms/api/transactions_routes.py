"""Transactions: list (filters), one with its meter values, and an operator's close of a stale one."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.contract import Answer, Operation, query, route
from csms.api.errors import ApiError
from csms.api.models import bodies, queries, resources
from csms.api.models.fields import INT32_MAX
from csms.api.responses import JsonResponse
from csms.api.validation import bad, json_body, parse
from csms.transactions import TransactionLedger

log = logging.getLogger(__name__)

TAG = "transactions"
LIST = Operation(
    "GET", "/api/v1/transactions", "listTransactions", TAG, "List transactions", "read",
    {200: Answer(resources.TransactionPage, "A page.")}, (400,), query=queries.TransactionQuery,
)  # fmt: skip
GET = Operation(
    "GET", "/api/v1/transactions/{transaction_id}", "getTransaction", TAG, "A transaction with its meter values",
    "read", {200: Answer(resources.TransactionDetail, "The transaction.")}, (400, 404),
    path_params=("TransactionId",),
)  # fmt: skip
CLOSE = Operation(
    "POST", "/api/v1/transactions/{transaction_id}/close", "closeTransaction", TAG,
    "Close a stale open transaction (its StopTransaction will never come), with a recorded reason", "operator",
    {
        200: Answer(
            resources.TransactionDetail,
            "Closed with stop_reason ClosedByOperator and operator_closed_by/_reason/_at. A StopTransaction the"
            " station sends later still replaces the stop (its meterStop is the truth); the operator's record"
            " stays.",
        )
    },
    (400, 404, 413, 422), conflict="conflict: the transaction is already closed.", path_params=("TransactionId",),
    body=bodies.TransactionClose, body_required=True,
)  # fmt: skip
OPERATIONS = (LIST, GET, CLOSE)


def _path_transaction_id(request: Request) -> int:
    raw = request.path_params["transaction_id"]
    if not (raw.isascii() and raw.isdigit()) or int(raw) > INT32_MAX:
        raise ApiError(400, "bad_request", "a transaction id is a positive 32-bit integer")
    return int(raw)


def transaction_routes(auth: TokenAuth, ledger: TransactionLedger) -> list[Route]:
    async def list_transactions(request: Request) -> Response:
        q = query(request, queries.TransactionQuery)
        items = await ledger.page(
            station_id=q.station_id,
            id_tag=q.id_tag,
            active=q.active,
            since=q.since,
            limit=q.limit,
            before_id=q.before,
        )
        return JsonResponse({"items": items, "next": items[-1]["id"] if len(items) == q.limit else None})

    async def get_transaction(request: Request) -> Response:
        transaction_id = _path_transaction_id(request)
        transaction = await ledger.get(transaction_id)
        if transaction is None:
            raise ApiError(404, "not_found", f"transaction {transaction_id} does not exist")
        return JsonResponse(transaction)

    async def close_transaction(request: Request) -> Response:
        """For a transaction whose StopTransaction will never come (station replaced, queue lost)."""
        transaction_id = _path_transaction_id(request)
        body = parse(bodies.TransactionClose, await json_body(request))
        requested_by = request.state.actor.name
        outcome, meter_start = await ledger.close_by_operator(
            transaction_id, reason=body.reason, meter_stop=body.meter_stop, requested_by=requested_by
        )
        if outcome == "unknown":
            raise ApiError(404, "not_found", f"transaction {transaction_id} does not exist")
        if outcome == "already-closed":
            raise ApiError(409, "conflict", f"transaction {transaction_id} is already closed")
        if outcome == "below-start":
            raise bad(f"meter_stop must be at least the transaction's meter_start ({meter_start} Wh)")
        log.info(
            "transaction closed by an operator",
            extra={"transaction_id": transaction_id, "requested_by": requested_by, "reason": body.reason},
        )
        return JsonResponse(await ledger.get(transaction_id))

    return [route(LIST, auth, list_transactions), route(GET, auth, get_transaction),
            route(CLOSE, auth, close_transaction)]  # fmt: skip
