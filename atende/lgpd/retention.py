"""The retention job: conversations idle for longer than the retention period lose their personal data.

`RetentionJob.run` is safe to call from any scheduler (the CLI today, a background worker later): it works in
small batches, each in its own transaction, skips what is already anonymised, and writes one audit record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from atende.lgpd.sources import anonymise_conversations
from core.audit import AuditEvent, AuditSink
from core.lgpd.models import AnonymisedConversation
from core.models import Conversation, utcnow

__all__ = ["RetentionJob", "RetentionReport"]


@dataclass(frozen=True)
class RetentionReport:
    days: int
    cutoff: datetime
    conversations: int
    rows: int

    def summary(self) -> str:
        return (
            f"retention {self.days} days (idle since before {self.cutoff.isoformat()}): "
            f"{self.conversations} conversations anonymised, {self.rows} rows changed"
        )


class RetentionJob:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditSink,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._audit = audit
        self._clock = clock

    def run(self, days: int, *, actor: str = "system", batch_size: int = 200) -> RetentionReport:
        """Anonymise every conversation whose last activity is more than `days` days old."""
        if days < 1:
            raise ValueError("retention must be at least one day")
        now = self._clock()
        cutoff = now - timedelta(days=days)
        already = select(AnonymisedConversation.conversation_id)
        stmt = (
            select(Conversation.id)
            .where(Conversation.updated_at < cutoff, Conversation.id.not_in(already))
            .order_by(Conversation.id)
            .limit(batch_size)
        )
        conversations = rows = 0
        while True:
            with self._sessions.begin() as session:
                ids = list(session.scalars(stmt))
                rows += anonymise_conversations(session, ids, reason="retention", now=now)
            conversations += len(ids)
            if len(ids) < batch_size:
                break
        report = RetentionReport(days, cutoff, conversations, rows)
        self._audit.record(
            AuditEvent(
                actor=actor,
                action="lgpd.retention",
                object_type="conversations",
                details={"days": days, "cutoff": cutoff.isoformat(), "conversations": conversations, "rows": rows},
            )
        )
        return report
