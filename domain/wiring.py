"""The domain services the MCP tools stand on, built once from Settings (see build_domain)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from core.audit import AuditSink
from core.clock import Clock
from core.lgpd.crypto import FieldCipher, cipher_from_settings
from core.ratelimit import InMemoryRateLimiter, RateLimiter, RedisRateLimiter
from domain.access import AccessControl
from domain.appointments import AppointmentBook
from domain.articles import ArticleSource, DirectoryArticles
from domain.citizens import CitizenDirectory
from domain.debts import DebtLedger
from domain.handoff import EventHandoffQueue, HandoffQueue
from domain.payments import LocalPaymentProvider, PaymentProvider
from domain.protocols import ProtocolBook, ProtocolQuota
from domain.verification import IdentityVerifier, VerificationPolicy

if TYPE_CHECKING:
    from core.settings import Settings


@dataclass
class Domain:
    sessions: sessionmaker[Session]
    clock: Clock
    audit: AuditSink
    citizens: CitizenDirectory
    verifier: IdentityVerifier
    access: AccessControl
    protocols: ProtocolBook
    protocol_quota: ProtocolQuota
    debts: DebtLedger
    appointments: AppointmentBook
    handoffs: HandoffQueue
    articles: ArticleSource


def build_rate_limiter(settings: Settings) -> RateLimiter:
    if settings.redis_url:
        from redis import Redis

        return RedisRateLimiter(Redis.from_url(settings.redis_url), prefix=f"{settings.handoff_redis_prefix}rl:")
    return InMemoryRateLimiter()


def build_payment_provider(settings: Settings) -> PaymentProvider:
    return LocalPaymentProvider(
        pix_key=settings.payment_pix_key,
        merchant_name=settings.payment_merchant_name or settings.organization_name,
        merchant_city=settings.payment_merchant_city,
        bank_code=settings.payment_bank_code,
    )


def build_domain(
    session_factory: sessionmaker[Session],
    settings: Settings,
    audit: AuditSink,
    *,
    articles: ArticleSource | None = None,
    limiter: RateLimiter | None = None,
    provider: PaymentProvider | None = None,
    handoffs: HandoffQueue | None = None,
    clock: Clock | None = None,
    cipher: FieldCipher | None = None,
) -> Domain:
    """Light: nothing connects until a tool runs.

    `cipher` encrypts the citizens' personal fields and computes their CPF blind index: `build_services` passes
    the LGPD one; without it (tests, tools) the same cipher is built from the settings.
    """
    clock = clock or Clock(ZoneInfo(settings.domain_timezone))
    citizens = CitizenDirectory(session_factory, cipher or cipher_from_settings(settings))
    limiter = limiter or build_rate_limiter(settings)
    verifier = IdentityVerifier(
        session_factory,
        citizens,
        limiter,
        audit,
        clock,
        VerificationPolicy(
            ttl=timedelta(minutes=settings.verification_ttl_minutes),
            max_attempts_per_conversation=settings.verification_max_attempts,
            max_attempts_per_cpf=settings.verification_max_attempts,
            window_s=settings.verification_window_minutes * 60.0,
            daily_max_failures_per_cpf=settings.verification_daily_max_failures,
            backoff_after=settings.verification_backoff_after,
            backoff_base_s=settings.verification_backoff_base_s,
        ),
    )
    return Domain(
        sessions=session_factory,
        clock=clock,
        audit=audit,
        citizens=citizens,
        verifier=verifier,
        access=AccessControl(citizens, verifier, audit),
        protocols=ProtocolBook(session_factory, clock),
        protocol_quota=ProtocolQuota(limiter, settings.limit_protocols_per_conversation),
        debts=DebtLedger(session_factory, provider or build_payment_provider(settings), clock),
        appointments=AppointmentBook(session_factory, clock),
        handoffs=handoffs or EventHandoffQueue(session_factory),
        articles=articles or DirectoryArticles(settings.knowledge_dir),
    )
