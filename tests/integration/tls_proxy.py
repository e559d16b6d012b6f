"""A tiny TLS-terminating reverse proxy (trio + ssl) that forwards the client certificate in a header, like
ingress-nginx (`ssl-client-cert`, URL-escaped PEM) or Envoy (`x-forwarded-client-cert`) do."""

from __future__ import annotations

import ssl
from urllib.parse import quote

import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

MAX_HEAD = 64 * 1024


def certificate_header(style: str, der: bytes | None) -> bytes:
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode() if der else ""
    if style == "nginx":
        return b"ssl-client-cert: " + quote(pem, safe="").encode() + b"\r\n"
    if not pem:
        return b""
    # Envoy: a previous hop's element first, ours last (quoted values; Cert URL-encoded).
    previous = 'By=spiffe://edge;Hash=00;Subject="CN=elsewhere,O=x"'
    ours = f'By=spiffe://csms;Hash=ab;Cert="{quote(pem, safe="")}";Subject="CN=whoever"'
    return f"x-forwarded-client-cert: {previous},{ours}\r\n".encode()


async def _pump(source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
    try:
        while data := await source.receive_some(65536):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(sink)


async def serve_proxy(
    context: ssl.SSLContext,
    upstream_port: int,
    style: str,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    async def handle(client: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            await client.do_handshake()
        except trio.BrokenResourceError:
            return
        der = client.getpeercert(binary_form=True)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
            chunk = await client.receive_some(65536)
            if not chunk:
                return
            head += chunk
        request_line_and_headers, _, rest = head.partition(b"\r\n\r\n")
        added = b"X-Forwarded-Proto: https\r\n" + certificate_header(style, der)
        upstream = await trio.open_tcp_stream("127.0.0.1", upstream_port)
        await upstream.send_all(request_line_and_headers + b"\r\n" + added + b"\r\n" + rest)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, client, upstream)
            nursery.start_soon(_pump, upstream, client)

    listeners = await trio.open_ssl_over_tcp_listeners(0, context, host="127.0.0.1")
    task_status.started(listeners[0].transport_listener.socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)
