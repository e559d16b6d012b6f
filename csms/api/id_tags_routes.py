"""Id tags (the authorization list): list, one, create or replace, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.contract import Answer, Operation, query, route
from csms.api.errors import ApiError
from csms.api.models import bodies, queries, resources
from csms.api.presenters import id_tag_json
from csms.api.responses import JsonResponse
from csms.api.validation import json_body, parse
from csms.authorization import IdTagStore

TAG = "id-tags"
LIST = Operation(
    "GET", "/api/v1/id-tags", "listIdTags", TAG, "List id tags", "read",
    {200: Answer(resources.IdTagPage, "A page.")}, (400,), query=queries.AfterPage,
)  # fmt: skip
GET = Operation(
    "GET", "/api/v1/id-tags/{id_tag}", "getIdTag", TAG, "An id tag", "read",
    {200: Answer(resources.IdTag, "The tag.")}, (400, 404), path_params=("IdTag",),
)  # fmt: skip
PUT = Operation(
    "PUT", "/api/v1/id-tags/{id_tag}", "putIdTag", TAG, "Create or replace an id tag", "operator",
    {200: Answer(resources.IdTag, "Replaced."), 201: Answer(resources.IdTag, "Created.")},
    (400, 413, 422), path_params=("IdTag",), body=bodies.IdTagPut,
)  # fmt: skip
DELETE = Operation(
    "DELETE", "/api/v1/id-tags/{id_tag}", "deleteIdTag", TAG, "Delete an id tag", "operator",
    {204: Answer(None, "Deleted.", None)}, (400, 404), path_params=("IdTag",),
)  # fmt: skip
OPERATIONS = (LIST, GET, PUT, DELETE)


def _path_id_tag(request: Request) -> str:
    id_tag = str(request.path_params["id_tag"])
    if not 1 <= len(id_tag) <= 36 or "\x00" in id_tag:
        raise ApiError(400, "bad_request", "an id tag is 1-36 characters (OCPP 2.0.1 IdToken; 1.6 uses 1-20)")
    return id_tag


def id_tag_routes(auth: TokenAuth, id_tags: IdTagStore) -> list[Route]:
    async def list_id_tags(request: Request) -> Response:
        q = query(request, queries.AfterPage)
        tags = await id_tags.page(limit=q.limit, after=q.after)
        next_after = tags[-1].id_tag if len(tags) == q.limit else None
        return JsonResponse({"items": [id_tag_json(t) for t in tags], "next": next_after})

    async def get_id_tag(request: Request) -> Response:
        id_tag = _path_id_tag(request)
        tag = await id_tags.get(id_tag)
        if tag is None:
            raise ApiError(404, "not_found", f"id tag {id_tag} does not exist")
        return JsonResponse(id_tag_json(tag))

    async def put_id_tag(request: Request) -> Response:
        id_tag = _path_id_tag(request)
        body = parse(bodies.IdTagPut, await json_body(request))
        tag, created = await id_tags.put(id_tag, body.status, body.expiry_date, body.parent_id_tag, body.type)
        return JsonResponse(id_tag_json(tag), status_code=201 if created else 200)

    async def delete_id_tag(request: Request) -> Response:
        id_tag = _path_id_tag(request)
        if not await id_tags.delete(id_tag):
            raise ApiError(404, "not_found", f"id tag {id_tag} does not exist")
        return Response(status_code=204)

    return [route(LIST, auth, list_id_tags), route(GET, auth, get_id_tag), route(PUT, auth, put_id_tag),
            route(DELETE, auth, delete_id_tag)]  # fmt: skip
