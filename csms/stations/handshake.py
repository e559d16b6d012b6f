"""The WebSocket handshake rules: which path, which subprotocol, which credentials.

Everything here is decided before the upgrade, so a refusal is a plain HTTP status the station's firmware logs.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote

# OCPP 2.0.1 caps the identity at 48 characters and forbids ':' (it would break Basic auth); 1.6 is silent, so
# we apply the same rule to both: URL-unreserved characters only, after percent-decoding.
_STATION_ID = re.compile(r"^[A-Za-z0-9._~\-]{1,48}$")


@dataclass  # not frozen: raising sets __traceback__, which a context manager's exit may reassign
class Refusal(Exception):
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    linger: float = 0.0  # seconds to hold the answer: slows a client that ignores Retry-After


def station_id_from_path(path: str, prefix: str) -> str:
    """The last path segment under the prefix, percent-decoded and validated."""
    path = path.split("?", 1)[0]
    if not path.startswith(prefix):
        raise Refusal(404, f"stations connect under {prefix}<station id>")
    raw = path[len(prefix) :]
    if not raw or "/" in raw:
        raise Refusal(404, f"expected {prefix}<station id>")
    station_id = unquote(raw)
    if not _STATION_ID.match(station_id):
        raise Refusal(400, "station id must be 1-48 characters of A-Z a-z 0-9 . _ ~ -")
    return station_id


def choose_subprotocol(proposed: list[str], offered: list[str]) -> str:
    """The server's preference wins (RFC 6455 lets the server pick any the client proposed): the first of
    ``offered`` (CSMS_OCPP_VERSIONS order, newest first by default) that the station proposed."""
    for protocol in offered:
        if protocol in proposed:
            return protocol
    proposed_text = ", ".join(proposed) or "none"
    raise Refusal(
        400, f"no supported OCPP subprotocol offered ({proposed_text}); this server speaks {', '.join(offered)}"
    )


def basic_credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """The (user, password) of an Authorization: Basic header, or None if absent or malformed."""
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        scheme, _, token = value.decode("latin-1").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None
    return None


UNAUTHORIZED_HEADERS = (("WWW-Authenticate", 'Basic realm="ocpp", charset="UTF-8"'),)
