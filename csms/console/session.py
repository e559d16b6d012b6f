"""Console sign-in: an API token exchanged for a signed, expiring, HttpOnly session cookie, and CSRF tokens.

The cookie holds no token: only a fingerprint of it (a keyed hash), checked against the configured tokens on
every request, so removing a token from ``CSMS_API_TOKENS`` ends its sessions and a role change applies at once.
Every replica derives the same signing key from the shared settings, so a session works on any replica.
CSRF: every form and console POST carries a token bound to the session (or, on the sign-in form, to a
short-lived pre-session cookie); a cross-site page can neither read it nor guess it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

from csms.api.auth import TokenAuth
from csms.commands import Actor
from csms.config import ApiToken, parse_api_token

SESSION_COOKIE = "csms_session"
LOGIN_COOKIE = "csms_login"
LOGIN_TTL = 1800


@dataclass(frozen=True)
class Session:
    role: str
    actor: Actor  # who, for the audit trails: console:<token name>, and the role
    nonce: str
    expires: float

    def allows(self, needed: str) -> bool:
        return TokenAuth.allows(self.role, needed)


def _actor(token: ApiToken) -> Actor:
    """A console user is the named token it signed in with."""
    return Actor(f"console:{token.name}", token.role)


def derive_key(console_secret: str, internal_secret: str, api_tokens: tuple[str, ...]) -> bytes:
    """The console secret if set, else one derived from settings every replica shares."""
    material = console_secret or "\0".join(["csms-console", internal_secret, *sorted(api_tokens)])
    return hashlib.sha256(material.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, key: bytes, api_tokens: tuple[str, ...], lifetime_seconds: float) -> None:
        self._key = key
        self._auth = TokenAuth(api_tokens)
        self._lifetime = lifetime_seconds
        self._tokens = {self._fingerprint(t.secret): t for t in map(parse_api_token, api_tokens)}

    def _fingerprint(self, secret: str) -> str:
        return hmac.new(self._key, b"token\0" + secret.encode(), hashlib.sha256).hexdigest()[:24]

    def _sign(self, data: bytes) -> str:
        return _b64(hmac.new(self._key, data, hashlib.sha256).digest())

    def sign_in(self, presented: str) -> tuple[Session, str] | None:
        """A new session and its cookie value for a valid token, else None."""
        presented = presented.strip()
        token = self._auth.match(presented)
        if token is None:
            return None
        fingerprint = self._fingerprint(presented)
        nonce = secrets.token_urlsafe(16)
        expires = time.time() + self._lifetime
        body = orjson.dumps({"k": fingerprint, "n": nonce, "e": expires})
        session = Session(token.role, _actor(token), nonce, expires)
        return session, f"{_b64(body)}.{self._sign(body)}"

    def load(self, cookie: str | None) -> Session | None:
        """The session of a cookie that is ours, unexpired and whose token is still configured."""
        if not cookie or "." not in cookie:
            return None
        encoded, signature = cookie.rsplit(".", 1)
        try:
            body = _unb64(encoded)
            data = orjson.loads(body)
            fingerprint, nonce, expires = str(data["k"]), str(data["n"]), float(data["e"])
        except (ValueError, KeyError, TypeError):
            return None
        if not hmac.compare_digest(signature, self._sign(body)) or expires < time.time():
            return None
        token = self._tokens.get(fingerprint)
        if token is None:
            return None
        return Session(token.role, _actor(token), nonce, expires)

    def csrf_token(self, nonce: str) -> str:
        return self._sign(b"csrf\0" + nonce.encode())

    def csrf_ok(self, nonce: str, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf_token(nonce), str(presented))

    @staticmethod
    def new_login_nonce() -> str:
        return secrets.token_urlsafe(16)

    @property
    def lifetime(self) -> float:
        return self._lifetime
