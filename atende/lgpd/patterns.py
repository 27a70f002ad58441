"""Extra personal-data kinds an administrator adds (a registration number, a licence plate...).

They come from two places: ATENDE_PII_EXTRA_PATTERNS (deployment) and the `pii_patterns` table (the admin
API). `apply()` joins both into the process-wide masker (`core.privacy.configure_masker`); the app calls it
at start-up and after each change. Other processes pick a change up when they restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from atende.lgpd.sources import rows_changed
from core.audit import AuditEvent, AuditSink
from core.lgpd.models import PiiPattern
from core.models import utcnow
from core.privacy import BUILTIN_KINDS, Masker, configure_masker

__all__ = ["PatternView", "PiiPatternStore"]


@dataclass(frozen=True)
class PatternView:
    kind: str
    pattern: str
    origin: str  # "settings" or "database"
    created_by: str | None = None
    created_at: datetime | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "pattern": self.pattern,
            "origin": self.origin,
            "created_by": self.created_by,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
        }


class PiiPatternStore:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditSink,
        configured: Mapping[str, str],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._audit = audit
        self._configured = dict(configured)
        self._clock = clock

    def list(self) -> list[PatternView]:
        views = [PatternView(kind, pattern, "settings") for kind, pattern in self._configured.items()]
        with self._sessions() as session:
            for row in session.scalars(select(PiiPattern).order_by(PiiPattern.kind)):
                views.append(PatternView(row.kind, row.pattern, "database", row.created_by, row.created_at))
        return views

    def effective(self) -> dict[str, str]:
        return {view.kind: view.pattern for view in self.list()}

    def apply(self) -> Masker:
        """Make every masking function of the process use the current patterns."""
        return configure_masker(self.effective())

    def put(self, kind: str, pattern: str, *, actor: str, ip: str | None = None, user_agent: str | None = None) -> None:
        """Add or replace a kind; raises ValueError (nothing stored) when the pattern is unusable."""
        if kind in BUILTIN_KINDS or kind in self._configured:
            raise ValueError(f"PII kind {kind!r} is built in or set in the settings; choose another name")
        patterns = self.effective()
        patterns[kind] = pattern
        Masker(patterns)  # validates the pattern on its own and combined with the others
        with self._sessions.begin() as session:
            row = session.get(PiiPattern, kind)
            if row is None:
                session.add(PiiPattern(kind=kind, pattern=pattern, created_by=actor, created_at=self._clock()))
            else:
                row.pattern, row.created_by, row.created_at = pattern, actor, self._clock()
        self._audit.record(
            AuditEvent(actor, "pii_pattern.put", "pii_pattern", kind, ip, user_agent, details={"pattern": pattern})
        )
        self.apply()

    def remove(self, kind: str, *, actor: str, ip: str | None = None, user_agent: str | None = None) -> bool:
        with self._sessions.begin() as session:
            removed = rows_changed(session, delete(PiiPattern).where(PiiPattern.kind == kind)) > 0
        if removed:
            self._audit.record(AuditEvent(actor, "pii_pattern.remove", "pii_pattern", kind, ip, user_agent))
            self.apply()
        return removed
