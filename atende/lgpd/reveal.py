"""Showing personal data to staff: only to principals allowed to see it, and never without an audit record.

The console (a later issue) calls `reveal()` when an agent clicks "show" on a masked CPF or phone; any other code
that hands a citizen's personal data to a staff member calls `audit_pii_read()` first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.audit import AuditEvent, AuditSink
from core.principals import Principal

__all__ = ["PII_READ_PERMISSION", "AuditObject", "RevealDenied", "audit_pii_read", "reveal"]

PII_READ_PERMISSION = "citizen.pii.read"

PermissionCheck = Callable[[Principal, str], bool]


class RevealDenied(PermissionError):
    """The principal may not see this personal data; the attempt was audited."""


@dataclass(frozen=True)
class AuditObject:
    """What was read: e.g. ("citizen", "42", subject="citizen:42") or ("conversation", "<id>", "<citizen_ref>")."""

    type: str
    id: str | None
    subject: str | None = None


def audit_pii_read(
    audit: AuditSink,
    principal: Principal,
    obj: AuditObject,
    fields: Sequence[str],
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> None:
    """Record that `principal` is being shown these personal-data fields of `obj`."""
    audit.record(
        AuditEvent(
            actor=principal.subject,
            action=f"{obj.type}.pii_read",
            object_type=obj.type,
            object_id=obj.id,
            ip=ip,
            user_agent=user_agent,
            details={"fields": list(fields)},
            subject=obj.subject,
        )
    )


def reveal(
    value: str,
    principal: Principal,
    obj: AuditObject,
    *,
    field: str,
    audit: AuditSink,
    can: PermissionCheck,
    ip: str | None = None,
    user_agent: str | None = None,
) -> str:
    """`value` in clear if `principal` holds "citizen.pii.read" (audited); else RevealDenied (audited too)."""
    allowed = can(principal, PII_READ_PERMISSION)
    audit.record(
        AuditEvent(
            actor=principal.subject,
            action="citizen.pii.reveal" if allowed else "citizen.pii.reveal_denied",
            object_type=obj.type,
            object_id=obj.id,
            ip=ip,
            user_agent=user_agent,
            details={"field": field},
            subject=obj.subject,
        )
    )
    if not allowed:
        raise RevealDenied(f"{principal.subject} may not read personal data")
    return value
