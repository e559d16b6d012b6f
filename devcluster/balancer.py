"""A dev-only TCP balancer: round-robin over backends, skipping ones that refuse connections.

It stands in for the cloud load balancer in the local cluster and in cluster tests: a station that loses its
replica reconnects through it and lands on a survivor. Not for production (no health checks beyond connect).

In front of HTTP (the API) it can answer `GET /metrics` itself with its own metrics, so a scrape of the
balancer's address never returns one random replica's numbers as if they were the cluster's.
"""

from __future__ import annotations

import itertools
import logging
import sys

import httpx
import trio

log = logging.getLogger(__name__)

_CHUNK = 65536


async def _pipe(source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope) -> None:
    """Copy one direction; when either side ends, end both (WebSocket never relies on half-close)."""
    try:
        while data := await source.receive_some(_CHUNK):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    done.cancel()


class TcpBalancer:
    def __init__(
        self,
        backends: list[tuple[str, int]],
        *,
        connect_timeout: float = 2.0,
        health_urls: list[str] | None = None,
        own_metrics: bool = False,
    ) -> None:
        """`health_urls[i]` (a /readyz URL) gates backend i, as a cloud balancer's health check would.
        `own_metrics`: HTTP only; the first request of a connection that is `GET /metrics` gets the balancer's own
        metrics (and the replicas' /metrics addresses) instead of being forwarded."""
        self.backends = list(backends)
        self._health_urls = health_urls
        self._healthy = [True] * len(self.backends)
        self._next = itertools.count()
        self._connect_timeout = connect_timeout
        self.port = 0
        self._cut = False
        self._live: set[trio.CancelScope] = set()
        self._own_metrics = own_metrics
        self._connections_total = 0

    def set_backends(self, backends: list[tuple[str, int]]) -> None:
        """Change the pool (a scale-out or scale-in); health is re-learnt by the watcher, if any."""
        self.backends = list(backends)
        self._healthy = [True] * len(self.backends)

    def cut(self) -> None:
        """Simulate a partition: drop every open connection and refuse new ones until restore()."""
        self._cut = True
        for scope in list(self._live):
            scope.cancel()

    def restore(self) -> None:
        self._cut = False

    async def _watch_health(self) -> None:
        assert self._health_urls is not None
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                for i, url in enumerate(self._health_urls):
                    try:
                        self._healthy[i] = (await client.get(url)).status_code == 200
                    except httpx.HTTPError:
                        self._healthy[i] = False
                await trio.sleep(0.25)

    async def _connect_any(self) -> trio.SocketStream | None:
        start = next(self._next)
        backends, healthy = self.backends, self._healthy  # the pool may change while we connect: keep this one
        order = [(start + i) % len(backends) for i in range(len(backends))]
        # Healthy backends first; the others only if none is healthy (the check may simply lag).
        order.sort(key=lambda i: not healthy[i] if i < len(healthy) else False)
        for index in order:
            host, port = backends[index]
            try:
                with trio.fail_after(self._connect_timeout):
                    return await trio.open_tcp_stream(host, port)
            except (OSError, trio.TooSlowError):
                continue
        return None

    def metrics_text(self) -> str:
        """Prometheus text: this balancer's own state; each replica's metrics stay at the replica's address."""
        lines = [
            "# HELP csms_dev_balancer_backend_up 1 if the backend passed its last health check. These are the dev"
            " balancer's own metrics, not a replica's: scrape each replica's /metrics (the metrics label).",
            "# TYPE csms_dev_balancer_backend_up gauge",
        ]
        urls = self._health_urls or []
        for i, (host, port) in enumerate(self.backends):
            metrics = urls[i].replace("/readyz", "/metrics") if i < len(urls) else ""
            up = 1 if i < len(self._healthy) and self._healthy[i] else 0
            lines.append(f'csms_dev_balancer_backend_up{{backend="{host}:{port}",metrics="{metrics}"}} {up}')
        lines += [
            "# HELP csms_dev_balancer_connections_open Client connections being proxied now.",
            "# TYPE csms_dev_balancer_connections_open gauge",
            f"csms_dev_balancer_connections_open {len(self._live)}",
            "# HELP csms_dev_balancer_connections_total Client connections accepted.",
            "# TYPE csms_dev_balancer_connections_total counter",
            f"csms_dev_balancer_connections_total {self._connections_total}",
        ]
        return "\n".join(lines) + "\n"

    async def _first_request(self, client: trio.SocketStream) -> bytes | None:
        """The first bytes a client sends; None when it answered them itself (its own /metrics) or gave up."""
        try:
            with trio.move_on_after(10):
                first = await client.receive_some(_CHUNK)
                if not first.startswith(b"GET /metrics"):
                    return first or None
                body = self.metrics_text().encode()
                head = (
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                )
                await client.send_all(head.encode() + body)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        return None

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            if self._cut:
                return
            self._connections_total += 1
            first = b""
            if self._own_metrics:
                peeked = await self._first_request(client)
                if peeked is None:
                    return
                first = peeked
            backend = await self._connect_any()
            if backend is None:
                return
            async with backend:
                if first:
                    try:
                        await backend.send_all(first)
                    except (trio.BrokenResourceError, OSError):
                        return
                with trio.CancelScope() as scope:
                    self._live.add(scope)
                    try:
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(_pipe, client, backend, scope)
                            nursery.start_soon(_pipe, backend, client, scope)
                    finally:
                        self._live.discard(scope)

    async def serve(
        self, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            if self._health_urls:
                nursery.start_soon(self._watch_health)
            task_status.started(self.port)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)


async def _serve_forever(backends: list[tuple[str, int]]) -> None:
    balancer = TcpBalancer(backends)
    async with trio.open_nursery() as nursery:
        print(await nursery.start(balancer.serve, "127.0.0.1", 0), flush=True)


def main(argv: list[str] | None = None) -> None:
    """`python -m devcluster.balancer HOST:PORT...`: a plain round-robin balancer (no health checks) on a
    free loopback port, which it prints; benchmarks run it in its own process so it has a core of its own."""
    pairs = [arg.rsplit(":", 1) for arg in (sys.argv[1:] if argv is None else argv)]
    trio.run(_serve_forever, [(host, int(port)) for host, port in pairs])


if __name__ == "__main__":
    main()
