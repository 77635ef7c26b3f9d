"""Security headers every answer gets, as a plain ASGI middleware (``SecurityHeaders``).

* ``Content-Security-Policy``: every ``text/html`` answer that has none gets the
  web UI's (api/web/render.py sets it on pages it renders; this covers the
  rest: error pages, the delivery page, anything added later).
* ``X-Content-Type-Options: nosniff`` on every answer that lacks it.
* ``Strict-Transport-Security`` on every answer to a request that came over
  HTTPS: the appliance's own TLS (``api.tls_cert``), or a trusted reverse proxy
  saying so (``api.trusted_proxies``: uvicorn then rewrites the scheme).  Never
  over plain HTTP, where a browser ignores it anyway and a site without a
  certificate must stay reachable.  No ``includeSubDomains``: the appliance's
  name says nothing about its neighbours.

Headers a route set itself are kept.  Answers produced outside the app (a 500
from Starlette's outermost error handler) carry none of these.
"""

from __future__ import annotations

from api.web.render import CSP

HSTS = b"max-age=31536000"


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = add_headers(list(message.get("headers", [])), https=https)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_headers(headers: list[tuple[bytes, bytes]], *, https: bool) -> list[tuple[bytes, bytes]]:
    """``headers`` (raw ASGI pairs) with the missing security headers appended."""
    names = {name.lower() for name, _ in headers}
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    if content_type.lower().startswith(b"text/html") and b"content-security-policy" not in names:
        headers.append((b"content-security-policy", CSP.encode()))
    if b"x-content-type-options" not in names:
        headers.append((b"x-content-type-options", b"nosniff"))
    if https and b"strict-transport-security" not in names:
        headers.append((b"strict-transport-security", HSTS))
    return headers
