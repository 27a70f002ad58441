"""Browser hardening headers on every response: CSP, nosniff, referrer policy, framing rules and HSTS.

The pages load scripts and styles from files only (no inline script, style element or event attribute), so the
policy needs no 'unsafe-inline'. A page that must keep a fixed inline style names its hash (see `policy`).
Only the chat page opened as `/?embed=1`, which the widget puts in an iframe on the portals, may be framed, and
only by the origins in ATENDE_EMBED_ORIGINS (docs/decisions/0038-fail-closed-defaults.md).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from urllib.parse import parse_qs

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000"


def style_hash(css: str) -> str:
    """The CSP source that allows exactly this inline <style> content."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"


def policy(*, frame_ancestors: Iterable[str] = ("'none'",), style_sources: Iterable[str] = ()) -> str:
    styles = " ".join(("'self'", *style_sources))
    return (
        "default-src 'self'; script-src 'self'; "
        f"style-src {styles}; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; "
        f"frame-ancestors {' '.join(frame_ancestors)}"
    )


def parse_origins(value: str) -> list[str]:
    """ATENDE_EMBED_ORIGINS: comma-separated origins such as https://www.prefeitura.example.gov.br."""
    origins = []
    for part in value.split(","):
        origin = part.strip().rstrip("/")
        if not origin:
            continue
        scheme, sep, host = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not host or "/" in host or any(c in host for c in " ;,'"):
            raise ValueError(f"ATENDE_EMBED_ORIGINS: {part.strip()!r} is not an origin like https://portal.example")
        origins.append(origin)
    return origins


class SecurityHeaders:
    """Adds the headers unless the route already chose its own Content-Security-Policy.

    Plain ASGI, like NoStoreForApi, to stay off BaseHTTPMiddleware's per-request cost (decision 0024).
    """

    def __init__(self, app: ASGIApp, *, embed_origins: Iterable[str] = (), hsts: bool = False) -> None:
        self.app = app
        self.default = policy()
        self.embeddable = policy(frame_ancestors=("'self'", *embed_origins))
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        embedded = scope["path"] == "/" and parse_qs(scope.get("query_string", b"").decode("latin-1")).get("embed") == [
            "1"
        ]
        https = self.hsts or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = self.embeddable if embedded else self.default
                if not embedded:
                    headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
