"""Showing a citizen's personal data to staff: only with "citizen.pii.read", and audited either way."""

from __future__ import annotations

import pytest

from atende.lgpd.reveal import AuditObject, RevealDenied, audit_pii_read, reveal
from core.accounts.permissions import allows, scopes_of
from core.audit import MemoryAuditSink
from core.principals import Principal

CITIZEN = AuditObject("citizen", "42", subject="citizen:42")


def staff(role: str, user_id: int = 7) -> Principal:
    return Principal("staff", f"user:{user_id}", scopes=scopes_of(role), role=role)  # type: ignore[arg-type]


def test_an_agent_sees_the_value_and_the_reveal_is_audited() -> None:
    audit = MemoryAuditSink()

    shown = reveal("529.982.247-25", staff("agent"), CITIZEN, field="cpf", audit=audit, can=allows, ip="10.0.0.1")

    assert shown == "529.982.247-25"
    (event,) = audit.events
    assert (event.actor, event.action, event.subject, event.details) == (
        "user:7",
        "citizen.pii.reveal",
        "citizen:42",
        {"field": "cpf"},
    )
    assert "529" not in repr(event)


@pytest.mark.parametrize("role", ["admin", "content_editor", "evaluator", "integrator"])
def test_roles_without_the_permission_are_refused_and_the_attempt_is_audited(role: str) -> None:
    audit = MemoryAuditSink()

    with pytest.raises(RevealDenied):
        reveal("maria@example.com", staff(role), CITIZEN, field="email", audit=audit, can=allows)

    assert audit.actions() == ["citizen.pii.reveal_denied"]


def test_a_read_of_several_fields_is_one_audit_record_naming_them() -> None:
    audit = MemoryAuditSink()

    audit_pii_read(audit, staff("supervisor", 3), CITIZEN, ["cpf", "phone"], user_agent="Firefox")

    (event,) = audit.events
    assert (event.action, event.details, event.user_agent) == (
        "citizen.pii_read",
        {"fields": ["cpf", "phone"]},
        "Firefox",
    )
