"""Enforcing the permission table on every request: one app-wide FastAPI dependency.

`authorize_request` runs before every route's own dependencies. It finds the route's declared access in
`core.accounts.permissions`, applies the staff IP lists, authenticates (bearer token or session cookie),
checks CSRF on cookie-authenticated unsafe methods, and checks the role and scope. A route missing from the
table is refused (fail closed), and `undeclared_routes(app)` lists them for the start-up check and the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal, Protocol

from fastapi import Depends, FastAPI, WebSocketException
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from core.accounts import permissions
from core.accounts.authn import PASSWORD_CHANGE_REQUIRED, TOTP_ENROLLMENT_REQUIRED, TOTP_REQUIRED
from core.accounts.csrf import HEADER, SAFE_METHODS, same
from core.accounts.service import Accounts, StaffSession
from core.accounts.types import AccountError, Origin, StaffUser
from core.audit import AuditEvent, AuditSink
from core.errors import error_body
from core.i18n import t
from core.principals import Principal, TokenVerifier

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)


class AccessServices(Protocol):
    """What the checks read from the app's services (`app.state.services`, which the application shell builds)."""

    @property
    def accounts(self) -> Accounts: ...

    @property
    def audit(self) -> AuditSink: ...

    @property
    def token_verifier(self) -> TokenVerifier | None: ...


@dataclass(frozen=True)
class DeclaredRoute:
    method: str  # "GET", or "*" for a mount
    path: str  # the full path template, as clients call it
    route: BaseRoute  # the route object FastAPI puts in scope["route"]

    @property
    def access(self) -> str | None:
        if isinstance(self.route, Mount):
            return permissions.mount_access(self.path)
        return permissions.route_access(self.method, self.path)

    def hint(self) -> str:
        if isinstance(self.route, Mount):
            return f'MOUNTS["{self.path}"] = PUBLIC  # only if it authenticates its own requests'
        return f'("{self.method}", "{self.path}"): "<action>",  # or PUBLIC / LOGIN / SESSION / SELF_SERVICE'


def iter_routes(app: FastAPI) -> Iterator[DeclaredRoute]:
    """Every method + full path the app answers, with prefixes from included routers applied."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before 0.16x keeps included routes flat in app.routes
        for route in app.routes:
            yield from _declared(route, getattr(route, "path", ""), route)
        return
    for context in iter_route_contexts(app.routes):
        yield from _declared(context.original_route, context.path or "", context)


def _declared(original: BaseRoute, path: str, effective: object) -> Iterator[DeclaredRoute]:
    if isinstance(original, Mount):
        yield DeclaredRoute("*", path, original)
        return
    if isinstance(original, WebSocketRoute | APIWebSocketRoute):
        yield DeclaredRoute("WEBSOCKET", path, original)
        return
    methods = getattr(effective, "methods", None)
    if methods is None:  # an ASGI app behind a plain route answers every method
        yield DeclaredRoute("*", path, original)
        return
    for method in sorted(methods - {"HEAD"} if "GET" in methods else methods):
        yield DeclaredRoute(method, path, original)


def undeclared_routes(app: FastAPI) -> list[DeclaredRoute]:
    return [r for r in iter_routes(app) if r.access is None]


def unprotectable_routes(app: FastAPI) -> list[DeclaredRoute]:
    """Declared routes the app-wide dependency never sees (plain Starlette routes, mounts) that are not public."""
    return [
        r
        for r in iter_routes(app)
        if r.access not in (None, permissions.PUBLIC) and not isinstance(r.route, APIRoute | APIWebSocketRoute)
    ]


def check_declared_routes(app: FastAPI, settings: Settings) -> None:
    """At start-up: production refuses to start with an undeclared route; elsewhere it is logged (and refused)."""
    missing = undeclared_routes(app)
    unprotectable = unprotectable_routes(app)
    problems = []
    if missing:
        problems.append(undeclared_message(missing))
    if unprotectable:
        names = ", ".join(f"{r.method} {r.path}" for r in unprotectable)
        problems.append(f"these routes bypass FastAPI dependencies and cannot be protected: {names}")
    if not problems:
        return
    if settings.environment == "production":
        raise RuntimeError("\n".join(problems))
    for problem in problems:
        log.error("%s", problem)


def undeclared_message(missing: list[DeclaredRoute]) -> str:
    lines = "\n".join(f"    {r.hint()}" for r in missing)
    return (
        f"{len(missing)} route(s) have no declared permission. Add them to core/accounts/permissions.py "
        f"(ROUTES, or MOUNTS for mounted apps):\n{lines}"
    )


def _route_index(app: FastAPI) -> dict[int, list[DeclaredRoute]]:
    index: dict[int, list[DeclaredRoute]] = {}
    for declared in iter_routes(app):
        index.setdefault(id(declared.route), []).append(declared)
    return index


def access_of(conn: HTTPConnection) -> tuple[str | None, str]:
    """(declared access, "METHOD /path/template") of the route serving this request."""
    route = conn.scope.get("route")
    method = conn.scope.get("method", "WEBSOCKET") if conn.scope["type"] == "http" else "WEBSOCKET"
    app = conn.app
    index: dict[int, list[DeclaredRoute]] | None = getattr(app.state, "route_index", None)
    if index is None or id(route) not in index:
        index = app.state.route_index = _route_index(app)
    path = conn.scope.get("path", "")
    candidates = [d for d in index.get(id(route), []) if d.method == method]
    if not candidates:
        # FastAPI hands websocket routes of included routers over as copies: match by method and path instead.
        candidates = [
            d for routes in index.values() for d in routes if d.method == method and _template_matches(d.path, path)
        ]
    if len(candidates) > 1:  # one router included at two prefixes: pick the one this path matched
        candidates = [d for d in candidates if _template_matches(d.path, path)] or candidates
    if not candidates:
        return None, f"{method} {getattr(route, 'path', '?')}"
    return candidates[0].access, f"{method} {candidates[0].path}"


def _template_matches(template: str, path: str) -> bool:
    from starlette.routing import compile_path

    regex, _, _ = compile_path(template)
    return regex.match(path) is not None


@dataclass(frozen=True)
class AuthContext:
    """Who is calling and how: a staff session (with its restrictions) or a bearer token."""

    principal: Principal
    via: Literal["session", "bearer"]
    staff: StaffSession | None = None
    session_cookie: str | None = None

    @property
    def user(self) -> StaffUser | None:
        return self.staff.user if self.staff else None


def client_ip(conn: HTTPConnection) -> str | None:
    """The caller's address: the socket's peer, or what a trusted proxy (ATENDE_TRUSTED_PROXIES) forwarded."""
    peer = conn.client.host if conn.client else None
    services: AccessServices | None = getattr(conn.app.state, "services", None) if "app" in conn.scope else None
    if services is None:
        return peer
    return services.accounts.proxies.resolve(peer, conn.headers.get("x-forwarded-for"))


def origin_of(conn: HTTPConnection) -> Origin:
    return Origin(ip=client_ip(conn), user_agent=(conn.headers.get("user-agent") or "")[:255] or None)


def refuse_blocked_ip(conn: HTTPConnection, services: AccessServices, label: str) -> bool:
    """Whether the staff IP lists refuse this caller; the refusal is audited (sampled: anyone can send them)."""
    origin = origin_of(conn)
    if services.accounts.ip_policy.allows(origin.ip):
        return False
    if services.accounts.anonymous_audit.admit("access.ip_blocked", origin.ip, label):
        services.audit.record(
            AuditEvent(
                actor="anonymous",
                action="access.ip_blocked",
                object_type="route",
                object_id=label,
                ip=origin.ip,
                details={"sampled_window_s": services.accounts.anonymous_audit.window_s},
            )
        )
    return True


class StaffIPGate:
    """Applies the staff IP lists to an ASGI app outside FastAPI's dependencies (the /mcp endpoint)."""

    def __init__(self, app: ASGIApp, label: str) -> None:
        self.app = app
        self.label = label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = HTTPConnection(scope)
        services: AccessServices | None = getattr(conn.app.state, "services", None)
        if services is not None and await run_in_threadpool(refuse_blocked_ip, conn, services, self.label):
            body = error_body("ip_blocked", t("auth.error.ip_blocked"))
            await JSONResponse(body, 403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authorize_request(conn: HTTPConnection) -> AuthContext | None:
    """The app-wide dependency. Returns the caller (None on public and sign-in routes) or refuses."""
    try:
        return _authorize(conn)
    except AccountError as exc:
        if conn.scope["type"] == "websocket":
            raise WebSocketException(code=1008, reason=exc.code) from exc
        raise


def _authorize(conn: HTTPConnection) -> AuthContext | None:
    access, label = access_of(conn)
    if access == permissions.PUBLIC:
        return None
    if access is None:
        log.error("refused %s: the route has no declared permission (core/accounts/permissions.py)", label)
        raise AccountError("route_not_declared", 403, key="auth.error.forbidden")
    services: AccessServices = conn.app.state.services
    accounts = services.accounts
    origin = origin_of(conn)
    if refuse_blocked_ip(conn, services, label):
        raise AccountError("ip_blocked", 403)
    if access == permissions.LOGIN:
        return None

    context = _authenticate(conn, accounts)
    method = conn.scope.get("method", "GET")
    if context.via == "session" and method not in SAFE_METHODS:
        assert context.staff is not None
        if not same(context.staff.session.csrf_token, conn.headers.get(HEADER)):
            raise AccountError("csrf_invalid", 403)
    if context.via == "session" and conn.scope["type"] == "websocket" and not _same_origin(conn):
        # Browsers send cookies on cross-site WebSocket handshakes and no CSRF header can be added to them.
        raise AccountError("csrf_invalid", 403)
    conn.state.auth = context

    if access in (permissions.SESSION, permissions.SELF_SERVICE):
        if context.staff is None:
            raise AccountError("session_required", 403)
        if access == permissions.SELF_SERVICE and TOTP_REQUIRED in context.staff.restrictions:
            raise AccountError(TOTP_REQUIRED, 403)
        return context

    if context.staff is not None and context.staff.restrictions:
        raise AccountError(_first_restriction(context.staff.restrictions), 403)
    if not permissions.allows(context.principal, access):
        services.audit.record(
            AuditEvent(
                actor=context.principal.subject,
                action="access.denied",
                object_type="route",
                object_id=label,
                ip=origin.ip,
                user_agent=origin.user_agent,
                details={"action": access},
            )
        )
        raise AccountError("forbidden", 403)
    return context


def _same_origin(conn: HTTPConnection) -> bool:
    from urllib.parse import urlsplit

    origin = conn.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc == conn.headers.get("host")


def _first_restriction(restrictions: frozenset[str]) -> str:
    for name in (TOTP_REQUIRED, TOTP_ENROLLMENT_REQUIRED, PASSWORD_CHANGE_REQUIRED):
        if name in restrictions:
            return name
    return sorted(restrictions)[0]


def _authenticate(conn: HTTPConnection, accounts: Accounts) -> AuthContext:
    token = bearer_token(conn)
    if token is not None:
        # A bearer token wins over any cookie: API clients are never subject to a browser's ambient session.
        services: AccessServices = conn.app.state.services
        principal = (services.token_verifier or accounts.tokens).verify(token)
        if principal is None:
            raise AccountError("invalid_token", 401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return AuthContext(principal=principal, via="bearer")
    cookie = conn.cookies.get(accounts.cookies.session)
    staff = accounts.session(cookie)
    if staff is None:
        raise AccountError("authentication_required", 401, headers={"WWW-Authenticate": "Bearer"})
    return AuthContext(principal=accounts.principal(staff.user), via="session", staff=staff, session_cookie=cookie)


def current_auth(context: Annotated[AuthContext | None, Depends(authorize_request)]) -> AuthContext:
    """The caller of a route that is not public (FastAPI reuses the app-wide dependency's result)."""
    if context is None:
        raise AccountError("authentication_required", 401)
    return context


def current_staff(context: Annotated[AuthContext, Depends(current_auth)]) -> StaffSession:
    """The signed-in member of a session-only route (a bearer token gets 403)."""
    if context.staff is None:
        raise AccountError("session_required", 403)
    return context.staff


def require_permission(action: str) -> Callable[[AuthContext], Principal]:
    """A dependency for a check beyond the route's own action, e.g. "citizen.pii.read" on a detail view."""
    if action not in permissions.ACTIONS:
        raise KeyError(f"unknown action {action!r}; declare it in core/accounts/permissions.py ACTIONS")

    def check(context: Annotated[AuthContext, Depends(current_auth)]) -> Principal:
        if not permissions.allows(context.principal, action):
            raise AccountError("forbidden", 403)
        return context.principal

    return check
