"""The HTTP application: a thin shell over the services, built by create_app()."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atende.accounts.routers import install_accounts
from atende.api_errors import install_api_errors, install_error_handlers
from atende.console.router import install_console
from atende.ratelimits import CitizenTrafficLimits
from atende.routers import audit, health, kb, lgpd
from atende.services import Services, build_services, start_handoff_sweep
from channels.registry import ChannelRegistry, default_registry
from core.accounts.access import StaffIPGate, authorize_request, check_declared_routes
from core.audit_http import AuditMiddleware
from core.errors import BodyTooLarge, body_too_large_response, document_errors
from core.security_headers import SecurityHeaders, parse_origins
from core.settings import Settings, get_settings
from tools_mcp.http import MCP_PATH, MountedMCP

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


class NoStoreForApi:
    """API answers carry personal data: no shared or browser cache may keep them.

    Plain ASGI rather than `@app.middleware("http")`: the latter wraps every request in BaseHTTPMiddleware's
    task and stream machinery, which tripled the WhatsApp webhook's cost (decision 0024).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_no_store)


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
        from core.privacy import install_log_masking

        install_log_masking()
        svc = services or build_services(settings)
        await run_in_threadpool(svc.warm_up, model=warm_model)
        app.state.services = svc
        check_declared_routes(app, svc.settings)
        log.info("atende ready: %d chunks indexed, model %s", len(svc.index.lexical), svc.model.model_id)
        if svc.whatsapp is not None:
            # The webhook's inbox writer, and the WhatsApp workers unless they run as `atende wa worker`.
            svc.whatsapp.start(workers=svc.settings.whatsapp_worker == "inline")
        # Everything loaded so far lives as long as the app: keep it out of the collector's full passes, which
        # otherwise stop every request for 0.3-0.5 s a few times a minute under load (decision 0024).
        gc.freeze()
        sweeper = start_handoff_sweep(svc)
        try:
            async with AsyncExitStack() as stack:
                if svc.mcp is not None:
                    # The MCP SDK's session manager serves /mcp only while it runs, so it lives as long as the app.
                    from tools_mcp.http import serve_mcp_http

                    app.state.mcp_asgi = await stack.enter_async_context(
                        serve_mcp_http(svc.mcp, allowed_hosts=svc.settings.mcp_allowed_hosts)
                    )
                yield
        finally:
            gc.unfreeze()  # collectable again once the app is gone (tests build many apps in one process)
            if sweeper is not None:
                await run_in_threadpool(sweeper.stop)
            if svc.whatsapp is not None:
                await run_in_threadpool(svc.whatsapp.stop)
            if services is None:
                svc.close()

    docs = settings.api_docs_enabled
    app = FastAPI(
        title="Atende",
        version="0.1.0",
        summary="Atendimento ao cidadão com IA: chat, base de conhecimento e registro de turnos.",
        lifespan=lifespan,
        # Production publishes no map of its API unless ATENDE_API_DOCS=true.
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        # Every route answers only as core/accounts/permissions.py declares (authentication, role, scope, CSRF).
        dependencies=[Depends(authorize_request)],
    )
    # Per-IP and per-conversation limits, the proof-of-work step and the answer queue (atende/ratelimits.py);
    # inside the body limit, which bounds the message it may read.
    app.add_middleware(CitizenTrafficLimits)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(PublicAssetCORS)
    # Every mutating request to a staff route leaves an audit record.
    app.add_middleware(AuditMiddleware)
    install_error_handlers(app)
    install_api_errors(app)
    install_accounts(app)
    install_console(app)  # the agents' console and the citizen's handoff routes
    app.include_router(health.router)
    app.include_router(kb.router)
    app.include_router(audit.router)
    app.include_router(lgpd.router)
    # MCP over streamable HTTP; the ASGI app behind it is built in the lifespan (tools_mcp.http).
    # The staff IP lists cover /mcp too: its bearer tokens reach citizens' records like the staff API does.
    app.router.routes.append(Route(MCP_PATH, endpoint=StaffIPGate(MountedMCP(), f"* {MCP_PATH}")))
    for channel in channels or default_registry():
        channel.install(app)

    app.add_middleware(NoStoreForApi)
    app.add_middleware(
        SecurityHeaders,
        embed_origins=parse_origins(settings.embed_origins),
        hsts=settings.environment == "production" or settings.public_base_url.startswith("https://"),
    )
    document_errors(app)
    return app
