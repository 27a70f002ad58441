"""The HTTP application: a thin shell over the services, built by create_app()."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atende.errors import BodyTooLarge, body_too_large_response, install_error_handlers
from atende.routers import health, kb
from atende.services import Services, build_services
from atende.settings import Settings, get_settings
from channels.registry import ChannelRegistry, default_registry

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


class BodySizeLimit:
    """Rejects oversized bodies before they are read into memory (413 with a pt-BR message).

    A declared Content-Length is checked up front; a chunked body has none, so its bytes are counted as the
    app reads them and reading stops as soon as they pass the limit.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await body_too_large_response(self.limit)(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counting_receive, send)


def _is_public_asset(path: str) -> bool:
    return path in ("/widget.js", "/static/widget.js") or (
        path.startswith("/static/locales/") and path.endswith(".json")
    )


class PublicAssetCORS:
    """Lets any site that embeds the widget fetch its script and strings; the API stays same-origin only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=["*"], allow_methods=["GET"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_public_asset(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    channels: ChannelRegistry | None = None,
    warm_model: bool = True,
) -> FastAPI:
    settings = settings or (services.settings if services else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from atende.privacy import install_log_masking

        install_log_masking()
        svc = services or build_services(settings)
        await run_in_threadpool(svc.warm_up, model=warm_model)
        app.state.services = svc
        log.info("atende ready: %d chunks indexed, model %s", len(svc.index.lexical), svc.model.model_id)
        try:
            yield
        finally:
            if services is None:
                svc.close()

    app = FastAPI(
        title="Atende",
        version="0.1.0",
        summary="Atendimento ao cidadão com IA: chat, base de conhecimento e registro de turnos.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit)
    app.add_middleware(PublicAssetCORS)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(kb.router)
    for channel in channels or default_registry():
        channel.install(app)

    @app.middleware("http")
    async def no_store_for_api(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
