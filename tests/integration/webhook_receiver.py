"""A real local HTTP endpoint for webhook tests: checks signatures, records batches, fails on demand."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


class WebhookReceiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.events: list[dict[str, Any]] = []  # accepted, in arrival order
        self.requests = 0
        self.failing = 0  # answer 503 to this many more requests (-1: every one)
        self.bad_signatures = 0
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver._receive(self.headers.get("X-CSMS-Signature", ""), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/events"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _receive(self, signature: str, body: bytes) -> int:
        with self.changed:
            self.requests += 1
            self.changed.notify_all()
            parts = dict(p.split("=", 1) for p in signature.split(",") if "=" in p)
            expected = hmac.new(self.secret.encode(), parts.get("t", "").encode() + b"." + body, hashlib.sha256)
            if (
                not hmac.compare_digest(parts.get("v1", ""), expected.hexdigest())
                or abs(time.time() - int(parts.get("t", "0"))) > 300
            ):
                self.bad_signatures += 1
                return 401
            if self.failing:
                self.failing -= 1 if self.failing > 0 else 0
                return 503
            self.events.extend(orjson.loads(body))
            self.changed.notify_all()
            return 200

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> bool:
        """Blocking (run it in a thread): wait until ``predicate(self)`` holds."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
