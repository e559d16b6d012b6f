"""Bearer tokens with roles and names: `read` may GET, `operator` may also change things, `admin` (or no role) may
all. The name is who the command audit records (`token:<name>`)."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from csms.api.errors import ApiError
from csms.commands import Actor
from csms.config import ApiToken, parse_api_token

_RANK = {"read": 0, "operator": 1, "admin": 2}


class TokenAuth:
    def __init__(self, tokens: tuple[str, ...]) -> None:
        self._tokens: list[tuple[bytes, ApiToken]] = [
            (token.secret.encode(), token) for token in map(parse_api_token, tokens)
        ]

    def caller(self, request: Request) -> ApiToken:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise ApiError(401, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)")
        token = self.match(presented.strip())
        if token is None:
            raise ApiError(401, "unauthorized", "the bearer token is not valid")
        return token

    def match(self, presented: str) -> ApiToken | None:
        """The configured token presented, or None (every token compared, in constant time each)."""
        candidate = presented.encode()
        found = None
        for secret, token in self._tokens:
            if hmac.compare_digest(secret, candidate):
                found = token
        return found

    @staticmethod
    def allows(role: str, needed: str) -> bool:
        return _RANK[role] >= _RANK[needed]

    def require(self, request: Request, needed: str) -> Actor:
        """The caller, as the audit trail names it, if its role may do what needs `needed` (else 401/403)."""
        token = self.caller(request)
        if not self.allows(token.role, needed):
            raise ApiError(403, "forbidden", f"this token's role ({token.role}) may not do this; needs {needed}")
        return Actor(f"token:{token.name}", token.role)
