"""The audit trail boundary: every staff action and every read of a citizen's personal data is recorded.

`AuditSink` is what the rest of the code calls; the persistent, hash-chained implementation lives beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class AuditEvent:
    """Who did what to which object. `actor` reads like "user:42", "integration:ouvidoria",
    "citizen:<conversation id>" or "system"."""

    actor: str
    action: str  # dotted verb, e.g. "citizen.verify", "citizen.read", "user.login_failed"
    object_type: str
    object_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class AuditSink(Protocol):
    def record(self, event: AuditEvent) -> None: ...


class MemoryAuditSink:
    """Keeps events in a list: for unit tests of code that must audit."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def actions(self) -> list[str]:
        return [e.action for e in self.events]
