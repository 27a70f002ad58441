"""Auditing HTTP requests: every mutating request to a staff route leaves an audit record, whatever its outcome.

`AuditMiddleware` records, after the response, who called (the principal `core.accounts.access` put in
`request.state.auth`, else "anonymous"), which route template, the status, the client IP and user agent. A
route that writes its own, more precise record calls `mark_audited(request)` and the generic one is skipped.
Citizen-facing (public) routes are not audited here: their traffic is the turn log's business.

Anonymous refusals are sampled: anyone can send them, and one row each would let a stranger grow the hash-chained
trail at will. `AnonymousAuditSampler` lets one row per client IP, route and action through per window; the
limiter (Redis when configured) counts the rest.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.accounts.ipfilter import counted_as
from core.audit import AuditEvent, AuditSink
from core.privacy import mask
from core.ratelimit import RateLimiter

log = logging.getLogger(__name__)

__all__ = ["MUTATING_METHODS", "AnonymousAuditSampler", "AuditMiddleware", "actor_of", "client_of", "mark_audited"]

MUTATING_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_AUDITED: Final = "audit_recorded"


class AnonymousAuditSampler:
    """Admits the first anonymous audit row per (action, client IP, route) in each window; counts the rest."""

    def __init__(self, limiter: RateLimiter, *, window_s: float) -> None:
        self._limiter = limiter
        self.window_s = window_s

    def admit(self, action: str, ip: str | None, route: str) -> bool:
        key = f"audit-anon:{action}:{counted_as(ip)}:{route}"
        return self._limiter.hit(key, limit=1, window_s=self.window_s).allowed


def client_of(conn: HTTPConnection) -> tuple[str | None, str | None]:
    """(client IP, user agent) as the audit trail stores them."""
    from core.accounts.access import client_ip

    return client_ip(conn), conn.headers.get("user-agent") or None


def actor_of(conn: HTTPConnection) -> str:
    auth = getattr(conn.state, "auth", None)
    principal = getattr(auth, "principal", None)
    return str(getattr(principal, "subject", None) or "anonymous")


def mark_audited(conn: HTTPConnection) -> None:
    """This request already wrote its audit record; the middleware's generic one would only repeat it."""
    setattr(conn.state, _AUDITED, True)


def _staff_route(conn: HTTPConnection) -> tuple[bool, str, str | None]:
    """(is it a staff route, "METHOD /template", declared access)."""
    from core.accounts import permissions
    from core.accounts.access import access_of

    if "route" not in conn.scope:  # nothing matched: a 404/405 answered by the router
        return False, "", None
    access, label = access_of(conn)
    return access != permissions.PUBLIC, label, access


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING_METHODS:
            await self.app(scope, receive, send)
            return
        status = 500
        # A mounted ASGI app (the MCP server) puts itself in scope["app"]; the record needs the host app's services.
        host = {key: scope[key] for key in ("app", "route") if key in scope}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await self._record({**scope, **host}, status)

    async def _record(self, scope: Scope, status: int) -> None:
        request = Request(scope)
        if getattr(request.state, _AUDITED, False):
            return
        try:
            staff, label, access = _staff_route(request)
            if not staff:
                return
            ip, user_agent = client_of(request)
            actor = actor_of(request)
            action = f"http.{scope['method'].lower()}"
            details: dict[str, Any] = {"status": status, "path": mask(request.url.path), "access": access}
            if actor == "anonymous":
                sampler: AnonymousAuditSampler = request.app.state.services.accounts.anonymous_audit
                if not await run_in_threadpool(sampler.admit, f"{action}:{status}", ip, label):
                    return
                details["sampled_window_s"] = sampler.window_s
            event = AuditEvent(
                actor=actor,
                action=action,
                object_type="route",
                object_id=label,
                ip=ip,
                user_agent=user_agent,
                details=details,
            )
            sink: AuditSink = request.app.state.services.audit
            await run_in_threadpool(sink.record, event)
        except Exception:
            # The response is already sent; losing the record must at least be loud.
            log.exception("could not write the audit record of %s %s", scope["method"], scope.get("path"))
