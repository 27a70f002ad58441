"""Who may do what: one declarative table of actions, and every route of the app mapped to one.

An action names what is done ("users.manage"), the roles whose staff may do it, and the bearer-token scope
that lets an API or MCP client do it. Every route (method + path template, as FastAPI lists it) maps to an
action or to one of the access levels below; `core.accounts.access` enforces the table on every request
and refuses routes missing from it, and tests/test_accounts_matrix.py checks each role against each route.

Adding a route: add one line to ROUTES (or MOUNTS for a mounted app). Adding a capability: add an action.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from core.accounts.roles import ROLES, Role
from core.principals import Principal

# Access levels that are not actions.
PUBLIC: Final = "@public"  # citizen-facing, or authenticated by its own means (webhook signatures, /mcp tokens)
LOGIN: Final = "@login"  # staff sign-in pages and endpoints: no session yet, but the staff IP lists apply
SESSION: Final = "@session"  # any signed-in staff session, even one that still owes a second factor
SELF_SERVICE: Final = "@self"  # a staff session past its second factor (it may still owe a password change)
LEVELS: Final = frozenset({PUBLIC, LOGIN, SESSION, SELF_SERVICE})

_ALL: Final[frozenset[Role]] = frozenset(ROLES)

PII_SCOPE: Final = "citizens:pii"  # a citizen's personal data, required in addition to the domain scope


def _roles(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


@dataclass(frozen=True)
class Action:
    roles: frozenset[Role]
    scope: str  # what a bearer token needs; staff sessions hold every scope of their role's actions
    description: str


ACTIONS: Final[dict[str, Action]] = {
    # Conversations and the citizens in them
    "conversation.read": Action(_roles("admin", "supervisor", "agent"), "conversations:read", "read conversations"),
    "conversation.reply": Action(_roles("supervisor", "agent"), "conversations:write", "take over and answer"),
    "conversation.supervise": Action(
        _roles("supervisor"), "conversations:supervise", "reassign, step into and close others' conversations"
    ),
    "agents.manage": Action(_roles("admin", "supervisor"), "users:admin", "set agents' teams, capacity and languages"),
    "saved_replies.manage": Action(
        _roles("admin", "supervisor"), "saved_replies:write", "add, change and delete the teams' saved replies"
    ),
    "citizen.read": Action(_roles("admin", "supervisor", "agent"), "citizens:read", "look up citizens (masked)"),
    # Its own scope, held on top of the domain scope: a token reads personal data only when an administrator
    # granted citizens:pii (docs/decisions/0037-tokens-sign-in-and-staff-edges.md).
    "citizen.pii.read": Action(_roles("supervisor", "agent"), PII_SCOPE, "see a citizen's personal data"),
    "citizen.write": Action(_roles("supervisor", "agent"), "citizens:write", "change citizen records"),
    "protocol.read": Action(_roles("admin", "supervisor", "agent"), "protocols:read", "read protocols"),
    "protocol.write": Action(_roles("supervisor", "agent"), "protocols:write", "open and update protocols"),
    "payment.read": Action(_roles("supervisor", "agent"), "payments:read", "read debts and payments"),
    "appointment.read": Action(_roles("admin", "supervisor", "agent"), "appointments:read", "read appointments"),
    "appointment.write": Action(_roles("supervisor", "agent"), "appointments:write", "book and cancel"),
    "assistant.use": Action(
        _roles("admin", "supervisor", "agent", "content_editor", "evaluator"), "assistant", "ask the assistant"
    ),
    # Knowledge base and evaluation
    "kb.read": Action(_ALL, "kb:read", "read knowledge articles, internal ones included"),
    "kb.edit": Action(_roles("admin", "content_editor"), "kb:write", "edit and publish knowledge articles"),
    "eval.read": Action(_roles("admin", "supervisor", "content_editor", "evaluator"), "eval:read", "see evaluations"),
    "eval.run": Action(_roles("admin", "evaluator"), "eval:run", "run evaluations"),
    "reports.read": Action(_roles("admin", "supervisor"), "reports:read", "see service reports"),
    # WhatsApp channel: templates, proactive messages, campaigns
    "whatsapp.read": Action(
        _roles("admin", "supervisor"), "whatsapp:read", "see templates, campaigns, delivery reports and failures"
    ),
    "whatsapp.manage": Action(_roles("admin", "supervisor"), "whatsapp:write", "register templates, run campaigns"),
    "whatsapp.send": Action(_roles("supervisor", "agent"), "whatsapp:write", "send a template message to a citizen"),
    # Audit trail and data-subject rights (LGPD)
    "audit.read": Action(_roles("admin"), "audit:read", "read and verify the audit trail"),
    # Supervisors answer citizens' access requests at the service desk; erasing stays with administrators
    # (docs/decisions/0022-data-subject-rights.md).
    "lgpd.export": Action(_roles("admin", "supervisor"), "lgpd:export", "export a citizen's data"),
    "lgpd.erase": Action(_roles("admin"), "lgpd:erase", "erase a citizen's data"),
    "consent.read": Action(_roles("admin", "supervisor", "agent"), "consent:read", "see a citizen's consent"),
    "consent.write": Action(_roles("admin", "supervisor", "agent"), "consent:write", "record an opt-in or opt-out"),
    "privacy.manage": Action(_roles("admin"), "privacy:admin", "manage the extra personal-data patterns"),
    # Staff administration
    "users.read": Action(_roles("admin", "supervisor"), "users:admin", "list staff (supervisors: their teams)"),
    "users.manage": Action(_roles("admin"), "users:admin", "create, change, lock and unlock staff accounts"),
    "teams.read": Action(_roles("admin", "supervisor"), "users:admin", "list teams"),
    "teams.manage": Action(_roles("admin"), "users:admin", "create and change teams"),
    "tokens.manage": Action(_roles("admin", "integrator"), "users:admin", "issue and revoke API tokens"),
    "tokens.approve": Action(_roles("admin"), "tokens:approve", "approve tokens that carry data scopes"),
}

SCOPES: Final[frozenset[str]] = frozenset(action.scope for action in ACTIONS.values())

# Scopes a role may put on a token it issues. Integrators wire external systems to the domain APIs; personal
# data (citizens:pii), acting for citizens' conversations (assistant), the audit trail, data-subject rights and
# staff administration stay with administrators.
GRANTABLE_SCOPES: Final[dict[str, frozenset[str]]] = {
    "admin": SCOPES,
    "integrator": frozenset(
        {
            "citizens:read",
            "citizens:write",
            "protocols:read",
            "protocols:write",
            "payments:read",
            "appointments:read",
            "appointments:write",
            "kb:read",
            "consent:read",
            "consent:write",
        }
    ),
}

# Scopes that reach citizens' records. A token carrying any of them that a non-administrator issued waits, and
# does not authenticate, until an administrator approves it.
DATA_SCOPE_PREFIXES: Final = ("citizens:", "payments:", "appointments:", "protocols:", "consent:", "conversations:")
DATA_SCOPES: Final[frozenset[str]] = frozenset(
    scope for scope in SCOPES if scope.startswith(DATA_SCOPE_PREFIXES) or scope in {"assistant", "lgpd:export"}
)


def needs_approval(scopes: Iterable[str]) -> bool:
    return any(scope in DATA_SCOPES for scope in scopes)


# method + path template → action or access level. Keep grouped by router.
ROUTES: Final[dict[tuple[str, str], str]] = {
    # OpenAPI and its viewers (not mounted in production unless ATENDE_API_DOCS=true)
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # Health
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    # Public knowledge pages
    ("GET", "/kb/{doc_id}"): PUBLIC,
    # Web chat: the conversation id is the citizen's unguessable handle
    ("POST", "/api/conversations"): PUBLIC,
    ("GET", "/api/conversations/{conversation_id}"): PUBLIC,
    ("POST", "/api/conversations/{conversation_id}/messages"): PUBLIC,
    ("POST", "/api/conversations/{conversation_id}/messages/stream"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/widget.js"): PUBLIC,
    # MCP over streamable HTTP: every request carries a bearer token, checked inside the MCP layer (tools_mcp)
    ("*", "/mcp"): PUBLIC,
    # WhatsApp: Meta's webhook is authenticated by its X-Hub-Signature-256 (and the verify token on GET)
    ("GET", "/webhooks/whatsapp"): PUBLIC,
    ("POST", "/webhooks/whatsapp"): PUBLIC,
    ("GET", "/api/whatsapp/templates"): "whatsapp.read",
    ("POST", "/api/whatsapp/templates"): "whatsapp.manage",
    ("POST", "/api/whatsapp/messages/template"): "whatsapp.send",
    ("GET", "/api/whatsapp/campaigns"): "whatsapp.read",
    ("POST", "/api/whatsapp/campaigns"): "whatsapp.manage",
    ("GET", "/api/whatsapp/campaigns/{campaign_id}"): "whatsapp.read",
    ("POST", "/api/whatsapp/campaigns/{campaign_id}/start"): "whatsapp.manage",
    ("POST", "/api/whatsapp/campaigns/{campaign_id}/pause"): "whatsapp.manage",
    ("POST", "/api/whatsapp/campaigns/{campaign_id}/cancel"): "whatsapp.manage",
    ("GET", "/api/whatsapp/campaigns/{campaign_id}/report.csv"): "whatsapp.read",
    ("GET", "/api/whatsapp/campaigns/{campaign_id}/report.xlsx"): "whatsapp.read",
    ("GET", "/api/whatsapp/failures"): "whatsapp.read",
    # Audit trail and LGPD (atende/routers/audit.py, atende/routers/lgpd.py)
    ("GET", "/api/audit/events"): "audit.read",
    ("GET", "/api/audit/verify"): "audit.read",
    ("GET", "/api/audit/export"): "audit.read",
    ("POST", "/api/lgpd/export"): "lgpd.export",
    ("POST", "/api/lgpd/erase"): "lgpd.erase",
    ("GET", "/api/lgpd/consent"): "consent.read",
    ("POST", "/api/lgpd/consent"): "consent.write",
    ("GET", "/api/lgpd/pii-patterns"): "privacy.manage",
    ("PUT", "/api/lgpd/pii-patterns/{kind}"): "privacy.manage",
    ("DELETE", "/api/lgpd/pii-patterns/{kind}"): "privacy.manage",
    # Human handoff and the agents' console (atende/console/router.py)
    ("POST", "/api/conversations/{conversation_id}/handoff"): PUBLIC,
    ("GET", "/api/conversations/{conversation_id}/handoff"): PUBLIC,
    ("DELETE", "/api/conversations/{conversation_id}/handoff"): PUBLIC,
    ("POST", "/api/conversations/{conversation_id}/survey"): PUBLIC,
    ("GET", "/console"): LOGIN,  # an empty shell; its data comes from /api/console/*
    ("GET", "/console/assets/{name}"): LOGIN,
    ("GET", "/api/console/queue"): "conversation.read",
    ("GET", "/api/console/events"): "conversation.read",
    ("GET", "/api/console/conversations/{conversation_id}"): "conversation.read",
    ("POST", "/api/console/conversations/{conversation_id}/reveal"): "citizen.pii.read",
    ("POST", "/api/console/conversations/{conversation_id}/claim"): "conversation.reply",
    ("POST", "/api/console/conversations/{conversation_id}/messages"): "conversation.reply",
    ("POST", "/api/console/conversations/{conversation_id}/notes"): "conversation.reply",
    ("POST", "/api/console/conversations/{conversation_id}/suggestion"): "conversation.reply",
    ("POST", "/api/console/conversations/{conversation_id}/transfer"): "conversation.reply",
    ("POST", "/api/console/conversations/{conversation_id}/close"): "conversation.reply",
    # The copilot's tool actions (atende/console/actions.py): drafts and runs, by the action they carry out
    ("GET", "/api/console/conversations/{conversation_id}/actions/open_protocol"): "protocol.write",
    ("POST", "/api/console/conversations/{conversation_id}/actions/open_protocol"): "protocol.write",
    ("GET", "/api/console/conversations/{conversation_id}/actions/second_copy"): "payment.read",
    ("POST", "/api/console/conversations/{conversation_id}/actions/second_copy"): "payment.read",
    # Binds a citizen to the conversation (citizen_verify's own scope, citizens:write), more than reading one.
    ("POST", "/api/console/conversations/{conversation_id}/actions/verify_identity"): "citizen.write",
    ("POST", "/api/console/presence"): "conversation.reply",
    ("GET", "/api/console/supervisor"): "reports.read",
    ("GET", "/api/console/saved-replies"): "conversation.read",  # atende/console/saved_replies.py
    ("POST", "/api/console/saved-replies"): "saved_replies.manage",
    ("PUT", "/api/console/saved-replies/{reply_id}"): "saved_replies.manage",
    ("DELETE", "/api/console/saved-replies/{reply_id}"): "saved_replies.manage",
    ("GET", "/console/supervisor"): LOGIN,  # an empty shell; its data comes from /api/console/supervisor
    ("POST", "/api/console/supervisor/conversations/{conversation_id}/reassign"): "conversation.supervise",
    ("POST", "/api/console/supervisor/conversations/{conversation_id}/messages"): "conversation.supervise",
    ("POST", "/api/console/supervisor/conversations/{conversation_id}/close"): "conversation.supervise",
    ("GET", "/api/console/agents/me"): "conversation.reply",
    ("PUT", "/api/console/agents/{subject}/profile"): "agents.manage",
    # Staff sign-in
    ("GET", "/staff/login"): LOGIN,
    ("GET", "/staff/account"): LOGIN,  # an empty shell; its data comes from /api/auth/me
    ("GET", "/staff/assets/{name}"): LOGIN,
    ("GET", "/api/auth/csrf"): LOGIN,
    ("POST", "/api/auth/login"): LOGIN,
    ("GET", "/api/auth/oidc/providers"): LOGIN,
    ("GET", "/api/auth/oidc/{provider}/login"): LOGIN,
    ("GET", "/api/auth/oidc/{provider}/callback"): LOGIN,
    ("GET", "/api/auth/me"): SESSION,
    ("POST", "/api/auth/logout"): SESSION,
    ("POST", "/api/auth/2fa/verify"): SESSION,
    ("POST", "/api/auth/password"): SELF_SERVICE,
    ("POST", "/api/auth/2fa/enroll"): SELF_SERVICE,
    ("POST", "/api/auth/2fa/confirm"): SELF_SERVICE,
    ("POST", "/api/auth/2fa/disable"): SELF_SERVICE,
    # Staff administration
    ("GET", "/api/users"): "users.read",
    ("POST", "/api/users"): "users.manage",
    ("GET", "/api/users/{user_id}"): "users.read",
    ("PATCH", "/api/users/{user_id}"): "users.manage",
    ("POST", "/api/users/{user_id}/unlock"): "users.manage",
    ("POST", "/api/users/{user_id}/reset-2fa"): "users.manage",
    ("POST", "/api/users/{user_id}/reset-password"): "users.manage",
    ("GET", "/api/teams"): "teams.read",
    ("POST", "/api/teams"): "teams.manage",
    ("PATCH", "/api/teams/{team_id}"): "teams.manage",
    ("GET", "/api/tokens"): "tokens.manage",
    ("POST", "/api/tokens"): "tokens.manage",
    ("DELETE", "/api/tokens/{token_id}"): "tokens.manage",
    ("POST", "/api/tokens/{token_id}/approve"): "tokens.approve",
}

# Mounted applications (a path prefix each): they are outside FastAPI's dependencies, so only public ones.
MOUNTS: Final[dict[str, str]] = {
    "/static": PUBLIC,  # the web chat's script, styles and strings
}


def scopes_of(role: Role) -> frozenset[str]:
    """Every scope a staff session of `role` holds: those of the actions the role may do."""
    return frozenset(action.scope for action in ACTIONS.values() if role in action.roles)


def actions_of(role: Role) -> list[str]:
    return sorted(name for name, action in ACTIONS.items() if role in action.roles)


def allows(principal: Principal, action: str) -> bool:
    """Whether `principal` may do `action`: staff need the role and the scope, integrations the scope.

    A staff session holds all of its role's scopes; a token a staff member holds narrows them to the token's.
    """
    spec = ACTIONS.get(action)
    if spec is None:
        raise KeyError(f"unknown action {action!r}; declare it in core/accounts/permissions.py ACTIONS")
    if not principal.has_scope(spec.scope):
        return False
    if principal.kind == "staff":
        return principal.role in spec.roles
    return principal.kind == "integration"


def route_access(method: str, path: str) -> str | None:
    """`method` "*" is a plain route that answers every method (an ASGI app such as /mcp)."""
    return ROUTES.get((method.upper(), path))


def mount_access(path: str) -> str | None:
    return MOUNTS.get(path.rstrip("/") or "/")


def _check_table() -> None:
    for key, access in ROUTES.items():
        if access not in LEVELS and access not in ACTIONS:
            raise ValueError(f"route {key} maps to unknown action {access!r}")
    for role, scopes in GRANTABLE_SCOPES.items():
        if not scopes <= SCOPES:
            raise ValueError(f"{role} may grant unknown scopes {sorted(scopes - SCOPES)}")


_check_table()
