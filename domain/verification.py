"""Identity verification for a conversation: CPF + birth date, rate-limited and audited, kept with an expiry.

Guesses are limited per conversation and per CPF in a short window, and per CPF per day with growing pauses
between attempts once a few have failed; a CPF reaching the daily cap is locked for the rest of the day, logged
and audited (`citizen.verification_locked`). Counters live in the rate limiter: Redis when several processes run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from core.audit import AuditEvent, AuditSink
from core.clock import Clock
from core.models import Conversation
from core.ratelimit import RateLimiter
from domain.citizens import CitizenDirectory, first_name
from domain.cpf import mask_cpf, normalize_cpf
from domain.dates import parse_date
from domain.errors import DomainError
from domain.models import VerifiedConversation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerificationPolicy:
    ttl: timedelta = timedelta(minutes=60)
    max_attempts_per_conversation: int = 5
    max_attempts_per_cpf: int = 5
    window_s: float = 900.0
    # Across windows: failed guesses per CPF per day, and growing pauses between attempts after a few of them.
    daily_max_failures_per_cpf: int = 10
    backoff_after: int = 5
    backoff_base_s: float = 900.0

    def backoff_s(self, failures: int) -> float:
        """The pause before the next attempt on a CPF that failed `failures` times today (0: none)."""
        if failures < self.backoff_after or self.backoff_base_s <= 0:
            return 0.0
        return self.backoff_base_s * 2.0 ** (failures - self.backoff_after)


DAY_S = 86400.0


@dataclass(frozen=True)
class VerifyOutcome:
    verified: bool
    first_name: str | None
    attempts_left: int
    citizen_id: int | None = None


class IdentityVerifier:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        citizens: CitizenDirectory,
        limiter: RateLimiter,
        audit: AuditSink,
        clock: Clock,
        policy: VerificationPolicy,
    ) -> None:
        self._sessions = session_factory
        self._citizens = citizens
        self.limiter = limiter
        self._audit = audit
        self._clock = clock
        self.policy = policy

    def _record(
        self, actor: str, conversation_id: str, outcome: str, citizen_id: int | None = None, **details: object
    ) -> None:
        self._audit.record(
            AuditEvent(
                actor=actor,
                action="citizen.verify",
                object_type="citizen",
                object_id=str(citizen_id) if citizen_id is not None else None,
                details={"conversation_id": conversation_id, "outcome": outcome, **details},
            )
        )

    def verify(self, conversation_id: str, cpf: str, birth_date: str, *, actor: str) -> VerifyOutcome:
        """Checks CPF and birth date against the register. A mismatch is an answer (verified false), not an
        error, and says nothing about whether the CPF is registered."""
        policy = self.policy
        per_conversation = self.limiter.hit(
            f"verify:conversation:{conversation_id}",
            limit=policy.max_attempts_per_conversation,
            window_s=policy.window_s,
        )
        if not per_conversation.allowed:
            self._record(actor, conversation_id, "rate_limited", scope="conversation")
            raise DomainError("rate_limited", minutes=max(1, round(per_conversation.retry_after_s / 60)))
        try:
            digits = normalize_cpf(cpf)
        except DomainError:
            self._record(actor, conversation_id, "invalid_cpf")
            raise
        # Keyed by the CPF's hash so the limiter's store (Redis) never holds a CPF.
        cpf_key = self._citizens.cpf_hash(digits)
        pause_key = f"verify:cpf-pause:{cpf_key}"
        if self.limiter.peek(pause_key, limit=1) == 0:
            # Still inside the pause the last failure started: refused without counting a guess.
            pause = self.limiter.hit(pause_key, limit=1, window_s=1.0)
            self._record(actor, conversation_id, "rate_limited", scope="cpf_backoff", cpf_masked=mask_cpf(digits))
            raise DomainError("rate_limited", minutes=max(1, math.ceil(pause.retry_after_s / 60)))
        per_cpf = self.limiter.hit(
            f"verify:cpf:{cpf_key}",
            limit=policy.max_attempts_per_cpf,
            window_s=policy.window_s,
        )
        if not per_cpf.allowed:
            self._record(actor, conversation_id, "rate_limited", scope="cpf", cpf_masked=mask_cpf(digits))
            raise DomainError("rate_limited", minutes=max(1, round(per_cpf.retry_after_s / 60)))
        try:
            birth = parse_date(birth_date, "data de nascimento")
        except DomainError:
            self._record(actor, conversation_id, "invalid_birth_date", cpf_masked=mask_cpf(digits))
            raise
        day_key = f"verify:cpf-day:{cpf_key}"
        per_day = self.limiter.hit(day_key, limit=policy.daily_max_failures_per_cpf, window_s=DAY_S)
        if not per_day.allowed:
            self._record(actor, conversation_id, "rate_limited", scope="cpf_day", cpf_masked=mask_cpf(digits))
            hours = max(1, math.ceil(per_day.retry_after_s / 3600))
            raise DomainError("rate_limited", "tools.error.verification_locked", hours=hours)
        attempts_left = min(per_conversation.remaining, per_cpf.remaining, per_day.remaining)

        with self._sessions.begin() as session:
            row = self._citizens.find_in(session, digits)
            citizen = None if row is None else self._citizens.reveal(row)
            if citizen is None or citizen.birth_date != birth or citizen.anonymized_at is not None:
                self._record(
                    actor,
                    conversation_id,
                    "mismatch",
                    cpf_masked=mask_cpf(digits),
                    citizen_id=citizen.id if citizen else None,
                )
                failures = policy.daily_max_failures_per_cpf - per_day.remaining
                pause_s = policy.backoff_s(failures)
                if pause_s > 0:
                    self.limiter.hit(pause_key, limit=1, window_s=pause_s)
                if per_day.remaining == 0:
                    self._locked(actor, conversation_id, digits, citizen.id if citizen else None)
                return VerifyOutcome(False, None, attempts_left)
            now = self._clock.now()
            session.merge(
                VerifiedConversation(
                    conversation_id=conversation_id,
                    citizen_id=citizen.id,
                    verified_at=now,
                    expires_at=now + policy.ttl,
                )
            )
            conversation = session.get(Conversation, conversation_id)
            if conversation is not None:
                conversation.citizen_ref = f"citizen:{citizen.id}"
            name = first_name(citizen)
            citizen_id = citizen.id
        # Only failed guesses count: a citizen who proves who they are in several conversations (or an
        # evaluation replaying the same demo citizen) must not be locked out by their own successes.
        self.limiter.refund(f"verify:conversation:{conversation_id}")
        self.limiter.refund(f"verify:cpf:{cpf_key}")
        self.limiter.refund(day_key)
        self._record(actor, conversation_id, "verified", citizen_id=citizen_id)
        return VerifyOutcome(True, name, attempts_left + 1, citizen_id)

    def _locked(self, actor: str, conversation_id: str, digits: str, citizen_id: int | None) -> None:
        """The alert when a CPF reaches the daily cap: someone may be guessing a citizen's birth date."""
        masked = mask_cpf(digits)
        log.warning(
            "identity verification locked for CPF %s: %d failed attempts within 24 h",
            masked,
            self.policy.daily_max_failures_per_cpf,
        )
        self._audit.record(
            AuditEvent(
                actor=actor,
                action="citizen.verification_locked",
                object_type="citizen",
                object_id=str(citizen_id) if citizen_id is not None else None,
                details={
                    "conversation_id": conversation_id,
                    "cpf_masked": masked,
                    "failures": self.policy.daily_max_failures_per_cpf,
                },
            )
        )

    def verified_citizen(self, conversation_id: str) -> int | None:
        """The citizen this conversation proved to be, while the verification lasts."""
        with self._sessions() as session:
            row = session.get(VerifiedConversation, conversation_id)
            if row is None or row.expires_at <= self._clock.now():
                return None
            return row.citizen_id

    def attempts_left(self, conversation_id: str) -> int:
        return self.limiter.peek(
            f"verify:conversation:{conversation_id}", limit=self.policy.max_attempts_per_conversation
        )
