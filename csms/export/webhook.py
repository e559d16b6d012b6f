"""Webhook sink: CloudEvents batches POSTed to one endpoint, signed, retried, dead-lettered.

Signature header ``X-CSMS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``: the receiver
recomputes it and rejects old timestamps (replay protection). A batch is retried with exponential backoff; after
``attempts`` failures its events become dead letters (API: list, replay) and delivery moves on, so one broken
event cannot stop the endpoint for ever. Batches go one at a time: the endpoint sees events in cursor order.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

import httpx
import orjson
import trio

from csms.export.sink import CloudEvent, DeliveryFailed

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-CSMS-Signature"
CONTENT_TYPE = "application/cloudevents-batch+json"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


DeadLetter = Callable[[list[CloudEvent], int, str], Awaitable[None]]


class WebhookSink:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        secret: str,
        dead_letter: DeadLetter,
        *,
        attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = "webhook"
        self._client = client
        self._url = url
        self._secret = secret
        self._dead_letter = dead_letter
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._on_failure = on_failure

    async def post(self, events: list[CloudEvent]) -> None:
        """One signed POST; raises DeliveryFailed unless the endpoint answered 2xx."""
        body = orjson.dumps(events)
        headers = {"Content-Type": CONTENT_TYPE, SIGNATURE_HEADER: sign(self._secret, int(time.time()), body)}
        try:
            response = await self._client.post(self._url, content=body, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}")

    async def deliver(self, events: list[CloudEvent]) -> None:
        """Acknowledged once the endpoint took the batch, or once it was dead-lettered after every attempt."""
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                await self.post(events)
                return
            except DeliveryFailed as exc:
                self._on_failure()
                if attempt == self._attempts:
                    log.warning(
                        "webhook batch dead-lettered",
                        extra={"events": len(events), "attempts": attempt, "error": str(exc)},
                    )
                    await self._dead_letter(events, attempt, str(exc))
                    return
            await trio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)
