"""Bearer tokens with roles: `read` may GET, `operator` may also change things, `admin` (or no role) may all."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from csms.api.errors import ApiError

_RANK = {"read": 0, "operator": 1, "admin": 2}


class TokenAuth:
    def __init__(self, tokens: tuple[str, ...]) -> None:
        self._tokens: list[tuple[bytes, str]] = []
        for token in tokens:
            secret, _, role = token.partition(":")
            self._tokens.append((secret.encode(), role or "admin"))

    def role_of(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise ApiError(401, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)")
        role = self.match(presented.strip())
        if role is None:
            raise ApiError(401, "unauthorized", "the bearer token is not valid")
        return role

    def match(self, presented: str) -> str | None:
        """The role of a presented token, or None (every token compared, in constant time each)."""
        candidate = presented.encode()
        role = None
        for secret, token_role in self._tokens:
            if hmac.compare_digest(secret, candidate):
                role = token_role
        return role

    @staticmethod
    def allows(role: str, needed: str) -> bool:
        return _RANK[role] >= _RANK[needed]

    def require(self, request: Request, needed: str) -> str:
        role = self.role_of(request)
        if not self.allows(role, needed):
            raise ApiError(403, "forbidden", f"this token's role ({role}) may not do this; needs {needed}")
        return role
