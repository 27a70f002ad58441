"""Auditing HTTP requests: every mutating request to a staff route leaves an audit record, whatever its outcome.

`AuditMiddleware` records, after the response, who called (the principal `atende.accounts.access` put in
`request.state.auth`, else "anonymous"), which route template, the status, the client IP and user agent. A
route that writes its own, more precise record calls `mark_audited(request)` and the generic one is skipped.
Citizen-facing (public) routes are not audited here: their traffic is the turn log's business.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atende.audit import AuditEvent, AuditSink
from atende.privacy import mask

log = logging.getLogger(__name__)

__all__ = ["MUTATING_METHODS", "AuditMiddleware", "actor_of", "client_of", "mark_audited"]

MUTATING_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_AUDITED: Final = "audit_recorded"


def client_of(conn: HTTPConnection) -> tuple[str | None, str | None]:
    """(client IP, user agent) as the audit trail stores them."""
    ip = conn.client.host if conn.client else None
    return ip, conn.headers.get("user-agent") or None


def actor_of(conn: HTTPConnection) -> str:
    auth = getattr(conn.state, "auth", None)
    principal = getattr(auth, "principal", None)
    return str(getattr(principal, "subject", None) or "anonymous")


def mark_audited(conn: HTTPConnection) -> None:
    """This request already wrote its audit record; the middleware's generic one would only repeat it."""
    setattr(conn.state, _AUDITED, True)


def _staff_route(conn: HTTPConnection) -> tuple[bool, str, str | None]:
    """(is it a staff route, "METHOD /template", declared access)."""
    from atende.accounts import permissions
    from atende.accounts.access import access_of

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

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await self._record(scope, status)

    async def _record(self, scope: Scope, status: int) -> None:
        request = Request(scope)
        if getattr(request.state, _AUDITED, False):
            return
        try:
            staff, label, access = _staff_route(request)
            if not staff:
                return
            ip, user_agent = client_of(request)
            details: dict[str, Any] = {"status": status, "path": mask(request.url.path), "access": access}
            event = AuditEvent(
                actor=actor_of(request),
                action=f"http.{scope['method'].lower()}",
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
