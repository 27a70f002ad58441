"""A fake WhatsApp Cloud (Graph) API on loopback: real HTTP, so the real client and its retries are exercised.

It records every call, answers sends with fresh message ids, serves registered media, and can be scripted to
answer the next sends with errors (429 with Retry-After, 5xx, Graph error codes). Anything it was not set up
for is answered 404 and kept in `unexpected`, so a test can fail on it.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from openai_compatible_server import LoopbackServer

TOKEN = "test-graph-token"


@dataclass
class Scripted:
    status: int
    code: int | None = None
    retry_after: str | None = None


@dataclass
class FakeGraphAPI:
    token: str = TOKEN
    sends: list[dict[str, Any]] = field(default_factory=list)  # {"number", "json", "wamid"} of each accepted send
    refused: list[dict[str, Any]] = field(default_factory=list)  # sends answered with a scripted error
    media_calls: list[str] = field(default_factory=list)
    media_downloads: list[str] = field(default_factory=list)  # media ids whose bytes were asked for
    unexpected: list[str] = field(default_factory=list)
    _media: dict[str, tuple[bytes, str, int | None]] = field(default_factory=dict)
    _media_origins: dict[str, str] = field(default_factory=dict)
    _script: list[Scripted] = field(default_factory=list)
    _media_script: list[int] = field(default_factory=list)  # statuses for the next media lookups
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _server: LoopbackServer | None = None

    # Scripting

    def fail_next(
        self, status: int, *, times: int = 1, code: int | None = None, retry_after: str | None = None
    ) -> None:
        with self._changed:
            self._script.extend(Scripted(status, code, retry_after) for _ in range(times))

    def fail_media_next(self, status: int, *, times: int = 1) -> None:
        """Answer the next `times` media lookups with `status` (e.g. 503: a retryable failure)."""
        with self._changed:
            self._media_script.extend([status] * times)

    def add_media(
        self,
        media_id: str,
        data: bytes,
        mime_type: str,
        *,
        declared_size: int | None = None,
        origin: str | None = None,
    ) -> None:
        """Serve a media item; `origin` ("http://localhost:<port>") makes its lookup name another host for it."""
        self._media[media_id] = (data, mime_type, declared_size)
        if origin is not None:
            self._media_origins[media_id] = origin

    # Reading

    def sent_to(self, recipient: str) -> list[dict[str, Any]]:
        with self._changed:
            return [s["json"] for s in self.sends if recipient in (s["json"].get("to"), s["json"].get("recipient"))]

    def wait_for_sends(self, count: int, timeout_s: float = 20.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.sends) >= count, timeout_s)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake Graph API first"
        return self._server.url

    # Serving

    def app(self) -> FastAPI:
        app = FastAPI()

        def authorised(request: Request) -> bool:
            return request.headers.get("authorization") == f"Bearer {self.token}"

        @app.post("/{number}/messages")
        async def send(number: str, request: Request) -> Response:
            if not authorised(request):
                return JSONResponse({"error": {"code": 190, "message": "Invalid OAuth access token"}}, 401)
            body = await request.json()
            with self._changed:
                scripted = self._script.pop(0) if self._script else None
                if scripted is not None:
                    self.refused.append({"number": number, "json": body, "status": scripted.status})
                    self._changed.notify_all()
                else:
                    wamid = f"wamid.fake{next(self._ids)}"
                    self.sends.append({"number": number, "json": body, "wamid": wamid})
                    self._changed.notify_all()
            if scripted is not None:
                headers = {"Retry-After": scripted.retry_after} if scripted.retry_after is not None else {}
                error = {
                    "code": scripted.code or scripted.status,
                    "message": "scripted failure",
                    "type": "OAuthException",
                }
                return JSONResponse({"error": error}, scripted.status, headers=headers)
            to = body.get("to") or body.get("recipient")
            return JSONResponse(
                {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": wamid}]}
            )

        @app.get("/media/{media_id}")
        def download(media_id: str, request: Request) -> Response:
            self.media_downloads.append(media_id)
            if not authorised(request) or media_id not in self._media:
                self.unexpected.append(f"GET /media/{media_id}")
                return JSONResponse({"error": {"code": 100, "message": "unknown media"}}, 404)
            data, mime, _ = self._media[media_id]
            return Response(data, media_type=mime)

        @app.get("/{media_id}")
        def media_info(media_id: str, request: Request) -> Response:
            self.media_calls.append(media_id)
            with self._changed:
                failing = self._media_script.pop(0) if self._media_script else None
            if failing is not None:
                return JSONResponse({"error": {"code": failing, "message": "scripted failure"}}, failing)
            if not authorised(request) or media_id not in self._media:
                self.unexpected.append(f"GET /{media_id}")
                return JSONResponse({"error": {"code": 100, "message": "unknown media"}}, 404)
            data, mime, declared = self._media[media_id]
            return JSONResponse(
                {
                    "messaging_product": "whatsapp",
                    "url": f"{self._media_origins.get(media_id, self.url)}/media/{media_id}",
                    "mime_type": mime,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "file_size": declared if declared is not None else len(data),
                    "id": media_id,
                }
            )

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        def anything_else(path: str, request: Request) -> Response:
            self.unexpected.append(f"{request.method} /{path}")
            return JSONResponse({"error": {"code": 100, "message": "not faked"}}, 404)

        return app

    def __enter__(self) -> FakeGraphAPI:
        self._server = LoopbackServer(self.app())
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.__exit__(*exc)
