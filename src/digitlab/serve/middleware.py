"""ASGI middleware of the HTTP service: security headers on every answer, bounded request bodies,
only the server's own host names answered."""

from __future__ import annotations

import anyio
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.middleware.trustedhost import parse_host_header


class AllowedHosts:
    """ASGI middleware: a request whose Host header is not one of `names` gets 400 (DNS rebinding: a
    page whose domain resolves to 127.0.0.1 sends its own name). Starlette's TrustedHostMiddleware
    decides the same way, with its own host parser, but answers in plain text; every other error of
    the API is JSON with a `detail`."""

    def __init__(self, app, names: tuple[str, ...]):
        self.app, self.names = app, {n.lower() for n in names}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        parsed = parse_host_header(Headers(scope=scope).get("host"))
        if parsed is None or parsed.host.lower() not in self.names:
            detail = (f"this server answers requests for {', '.join(sorted(self.names))} only (the Host header); "
                      "open it by one of those names.")
            return await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
        await self.app(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: every response says `nosniff`, may not be framed, and runs only this server's
    own scripts and styles (/docs also its one inline script, which starts Swagger UI)."""

    CSP = (b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
           b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    DOCS_CSP = CSP.replace(b"style-src 'self'", b"style-src 'self' 'unsafe-inline'").replace(
        b"script-src 'self'", b"script-src 'self' 'unsafe-inline'")
    HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
               (b"referrer-policy", b"no-referrer")]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = self.DOCS_CSP if scope["path"].startswith("/docs") else self.CSP
        extra = [*self.HEADERS, (b"content-security-policy", csp)]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """ASGI middleware: refuse a request body over `max_bytes` with 413, without reading it all.

    Written here rather than taken from a library: Starlette and uvicorn have no body-size limit,
    and a declared Content-Length is not enough (a chunked body declares none). The body is
    buffered up to the limit, then replayed to the application. All the bodies held at once count
    against `max_buffered` (503 beyond), and a body must arrive within `timeout_s` (408 beyond), so
    clients that start uploads and never finish them hold neither memory nor connections for long.
    One client address holds at most half of `max_buffered` (or one largest body, if more): four
    slow uploads of 5 MB from one address held the whole budget for 30 s, and every other client's
    upload got 503. Half, not less: behind a proxy, Docker's port mapping or a NAT every client has
    one address, and two phone photos at once must still pass.
    """

    def __init__(self, app, max_bytes: int, max_buffered: int = 20_000_000, timeout_s: float = 30.0):
        self.app, self.max_bytes, self.max_buffered, self.timeout_s = app, max_bytes, max_buffered, timeout_s
        self.per_client = max(max_bytes, max_buffered // 2)
        self.buffered = 0  # bytes held by requests in progress (one event loop: no lock needed)
        self.by_client: dict[str, int] = {}  # the same, per client address

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = f"the request body is over the limit of {self.max_bytes:,} bytes; send a smaller image."
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            if declared.isdigit() and int(declared) <= 2 * self.max_bytes:
                await self._drain(receive, 2 * self.max_bytes)
            return await self._refuse(scope, receive, send, 413, too_large)
        body = bytearray()
        client = (scope.get("client") or ("",))[0]
        try:
            with anyio.move_on_after(self.timeout_s) as waiting:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    if len(body) + len(chunk) > self.max_bytes:
                        if message.get("more_body", False):
                            await self._drain(receive, self.max_bytes)
                        return await self._refuse(scope, receive, send, 413, too_large)
                    if self.by_client.get(client, 0) + len(chunk) > self.per_client:
                        return await self._refuse(scope, receive, send, 503, "this client is sending too many "
                                                  "uploads at once; send one image at a time.")
                    if self.buffered + len(chunk) > self.max_buffered:
                        return await self._refuse(scope, receive, send, 503, "the server is receiving too many "
                                                  "uploads at once; try again in a moment.")
                    body += chunk
                    self.buffered += len(chunk)
                    self.by_client[client] = self.by_client.get(client, 0) + len(chunk)
                    if not message.get("more_body", False):
                        break
            if waiting.cancelled_caught:
                return await self._refuse(scope, receive, send, 408, f"the request body did not arrive within "
                                          f"{self.timeout_s:g} s.")
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            self.buffered -= len(body)
            if body:
                self.by_client[client] -= len(body)
                if not self.by_client[client]:
                    del self.by_client[client]

    async def _drain(self, receive, limit: int) -> None:
        """Read and drop the rest of a refused body (at most `limit` bytes, within the body timeout)
        before answering: a connection closed with unread data resets, and the client would lose
        the 413 that says what was wrong. A body declared larger still is refused at once."""
        dropped = 0
        with anyio.move_on_after(self.timeout_s):
            while dropped <= limit:
                message = await receive()
                if message["type"] != "http.request":
                    return
                dropped += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return

    @staticmethod
    async def _refuse(scope, receive, send, status: int, detail: str):
        response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})
        await response(scope, receive, send)
