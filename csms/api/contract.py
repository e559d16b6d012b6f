"""The route table: each operation's path, role, parameters, body and answers, declared once next to its handler.

`route()` makes the Starlette route from it (the role is enforced here, so the document's `x-required-role` is
what the server does), `query()` parses the query with the declared model, and csms.api.openapi turns the same
declarations into /openapi.json.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.command_status import OUTCOMES
from csms.api.errors import ApiError
from csms.api.validation import problems

Q = TypeVar("Q", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Answer:
    """A success answer: its model (or the name of a component built from the ocpp package's schemas, such as
    `CommandRecord.SendLocalList`; None: no body) and what it means."""

    model: type[BaseModel] | str | None
    description: str
    media_type: str | None = "application/json"  # of a body without a model; None: no body (204)
    stream: str | None = None  # what a text/event-stream answer to the same request carries, if there is one


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    op_id: str
    tag: str
    summary: str
    role: str | None  # read, operator, admin; None: no authentication
    answers: Mapping[int, Answer]
    errors: tuple[int, ...] = ()  # the shared error answers it may give: 400, 404, 413, 422
    conflict: str | None = None  # what a 409 means, if it can answer one
    path_params: tuple[str, ...] = ()  # components/parameters names
    query: type[BaseModel] | None = None
    body: type[BaseModel] | str | None = None  # a model, or a component built from the ocpp package's schemas
    body_required: bool = False


def route(op: Operation, auth: TokenAuth, endpoint: Endpoint) -> Route:
    """The live route of an operation; the caller (named token and role) is `request.state.actor`, for the audits."""

    async def guarded(request: Request) -> Response:
        if op.role is not None:
            request.state.actor = auth.require(request, op.role)
        return await endpoint(request)

    guarded.__name__ = op.op_id
    return Route(op.path, guarded, methods=[op.method])


def query(request: Request, model: type[Q]) -> Q:
    """The query parameters as the operation's model, or a 400 naming each bad parameter."""
    try:
        return model.model_validate(request.query_params)
    except ValidationError as exc:
        raise ApiError(400, "bad_request", problems(model, exc)) from None


def command_answers(component: str) -> dict[int, Answer]:
    """The answers of a route that sends a command and waits: the command record under each outcome's status."""
    return {status: Answer(component, f"The command record. {text}") for status, text in OUTCOMES.items()}
