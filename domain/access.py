"""Who may see or change whose data: the conversation's verified citizen, or staff with the right scope.

A caller is a principal (from a bearer token, the stdio operator, or the in-process assistant) plus the
conversation our own code put in the request's `_meta` (over HTTP, only with its proof: tools_mcp.tools.base).
Principals holding the tool's scope act as staff; principals holding only `assistant` act for the conversation,
and only on its verified citizen's data. Staff reach a named citizen's records only when they also hold
`citizens:pii`, which only an administrator grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.audit import AuditEvent, AuditSink
from core.principals import Principal
from domain.citizens import CitizenDirectory
from domain.cpf import normalize_cpf
from domain.errors import DomainError
from domain.verification import IdentityVerifier

ASSISTANT_SCOPE = "assistant"
PII_SCOPE = "citizens:pii"  # the same name as core.accounts.permissions.PII_SCOPE (this layer cannot import it)
# The scopes the MCP tools check; a subset of the whole permission table's (core.accounts.permissions.SCOPES).
TOOL_SCOPES = (
    "citizens:read",
    PII_SCOPE,
    "citizens:write",
    "protocols:read",
    "protocols:write",
    "payments:read",
    "appointments:read",
    "appointments:write",
    "kb:read",
    ASSISTANT_SCOPE,
)
# The in-process assistant: it may only act for a conversation, never as staff.
ASSISTANT_PRINCIPAL = Principal(kind="system", subject="assistant", scopes=frozenset({ASSISTANT_SCOPE}))


@dataclass(frozen=True)
class Caller:
    principal: Principal
    conversation_id: str | None = None

    @property
    def actor(self) -> str:
        if self.acts_for_conversation:
            return f"citizen:{self.conversation_id}"
        return self.principal.subject

    @property
    def acts_for_conversation(self) -> bool:
        return self.conversation_id is not None and self.principal.has_scope(ASSISTANT_SCOPE)


Mode = Literal["staff", "conversation"]


@dataclass(frozen=True)
class Subject:
    """Whose data a call touches, and on what authority."""

    citizen_id: int
    mode: Mode


class AccessControl:
    def __init__(self, citizens: CitizenDirectory, verifier: IdentityVerifier, audit: AuditSink) -> None:
        self._citizens = citizens
        self._verifier = verifier
        self._audit = audit

    def mode(self, caller: Caller, scope: str) -> Mode:
        """Staff when the principal holds `scope`; conversation when it holds `assistant`; else forbidden."""
        if scope in caller.principal.scopes:
            return "staff"
        if caller.principal.has_scope(ASSISTANT_SCOPE):
            return "conversation"
        self.deny(caller, "forbidden", scope=scope)
        raise DomainError("forbidden")

    def sees_pii(self, caller: Caller) -> bool:
        return caller.principal.has_scope(PII_SCOPE)

    def require_pii(self, caller: Caller, scope: str, *, object_type: str = "citizen", object_id: str = "") -> None:
        """Staff reading or acting on a named citizen's records need `citizens:pii` besides the tool's scope."""
        if not self.sees_pii(caller):
            self.deny(caller, "pii_scope_required", scope=PII_SCOPE, object_type=object_type, object_id=object_id)
            raise DomainError("forbidden")

    def verified_citizen(self, caller: Caller) -> int | None:
        if caller.conversation_id is None:
            return None
        return self._verifier.verified_citizen(caller.conversation_id)

    def subject(self, caller: Caller, scope: str, cpf: str | None = None) -> Subject:
        """The citizen whose data this call may touch, or a refusal.

        Staff name the citizen by CPF (or work on the conversation's verified citizen). A conversation only
        ever reaches its own verified citizen; a CPF argument naming anyone else is `identity_mismatch`.
        """
        mode = self.mode(caller, scope)
        digits = normalize_cpf(cpf) if cpf else None
        if mode == "staff":
            self.require_pii(caller, scope)
            if digits is not None:
                citizen = self._citizens.by_cpf(digits)
                if citizen is None:
                    raise DomainError("not_found", "tools.error.citizen_not_found")
                return Subject(citizen.id, "staff")
            verified = self.verified_citizen(caller)
            if verified is None:
                raise DomainError("invalid_argument", "tools.error.cpf_required")
            return Subject(verified, "staff")
        verified = self.verified_citizen(caller)
        if verified is None:
            self.deny(caller, "not_verified", scope=scope)
            raise DomainError("not_verified")
        if digits is not None:
            own = self._citizens.get(verified)
            if own is None or own.cpf != digits:
                self.deny(caller, "identity_mismatch", scope=scope)
                raise DomainError("identity_mismatch")
        return Subject(verified, "conversation")

    def owns(self, caller: Caller, scope: str, owner_id: int | None, *, what: str, object_id: str) -> Mode:
        """Allows staff with `scope`, or the conversation whose verified citizen owns the object."""
        mode = self.mode(caller, scope)
        if mode == "staff":
            self.require_pii(caller, scope, object_type=what, object_id=object_id)
            return mode
        verified = self.verified_citizen(caller)
        if verified is None:
            self.deny(caller, "not_verified", scope=scope, object_type=what, object_id=object_id)
            raise DomainError("not_verified")
        if owner_id != verified:
            self.deny(caller, "identity_mismatch", scope=scope, object_type=what, object_id=object_id)
            raise DomainError("identity_mismatch", f"tools.error.not_yours_{what}")
        return mode

    def deny(
        self, caller: Caller, reason: str, *, scope: str, object_type: str = "citizen", object_id: str = ""
    ) -> None:
        self._audit.record(
            AuditEvent(
                actor=caller.actor,
                action="access.denied",
                object_type=object_type,
                object_id=object_id or None,
                details={"reason": reason, "scope": scope, "conversation_id": caller.conversation_id},
            )
        )

    def refuse_conversation(self, principal: Principal, conversation_id: str, reason: str) -> None:
        """Audit a caller naming a conversation it may not act for (the actor is the principal, not the citizen)."""
        self._audit.record(
            AuditEvent(
                actor=principal.subject,
                action="access.denied",
                object_type="conversation",
                object_id=conversation_id,
                details={"reason": reason},
            )
        )

    def record(self, caller: Caller, action: str, object_type: str, object_id: str | None, **details: object) -> None:
        """Audit one read or change of personal data, under the citizen it belongs to (`subject`), so "who saw
        this citizen's data" finds tool calls next to console reveals and exports."""
        owner = details.get("citizen_id")
        if owner is None and object_type == "citizen":
            owner = object_id
        self._audit.record(
            AuditEvent(
                actor=caller.actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                details={"conversation_id": caller.conversation_id, **details},
                subject=f"citizen:{owner}" if owner is not None else None,
            )
        )
