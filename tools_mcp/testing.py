"""Test helpers shared by the tool tests and the assistant's tests: a fixed clock, a seeded domain, a payment
provider scripted to fail, and calls through an MCP client that return the structured result or the error payload."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from mcp import Client
from sqlalchemy.orm import Session, sessionmaker

from core.audit import AuditSink, MemoryAuditSink
from core.clock import Clock
from core.conversation_keys import PROOF_META_KEY, ConversationProof
from core.ratelimit import InMemoryRateLimiter, RateLimiter
from core.settings import Settings
from domain.errors import DomainError
from domain.payments import DebtCharge, LocalPaymentProvider, PaymentInstructions, PaymentProvider
from domain.wiring import Domain, build_domain
from tools_mcp.server import CONVERSATION_META_KEY

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
# A Wednesday two days before a national holiday (Consciência Negra, Friday 2026-11-20).
DEFAULT_NOW = datetime(2026, 11, 18, 10, 0, tzinfo=SAO_PAULO)


@dataclass
class MovableClock:
    """A clock tests set by hand."""

    current: datetime = DEFAULT_NOW

    def __call__(self) -> datetime:
        return self.current


def make_test_domain(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    audit: AuditSink | None = None,
    clock: MovableClock | None = None,
    limiter: RateLimiter | None = None,
    provider: PaymentProvider | None = None,
) -> Domain:
    return build_domain(
        sessions,
        settings,
        audit or MemoryAuditSink(),
        clock=Clock(SAO_PAULO, clock or MovableClock()),
        limiter=limiter or InMemoryRateLimiter(),
        provider=provider,
    )


ISSUE: Final = "issue"
PaymentOutcome = Literal["issue"] | BaseException


class UnexpectedPaymentRequest(AssertionError):
    """The code under test asked the payment provider for more second copies than the test scripted."""


@dataclass
class ScriptedPaymentProvider:
    """A PaymentProvider that answers each second copy with the next scripted outcome and fails loudly beyond them.

    An outcome is `ISSUE` (the codes `issuer` makes: by default a local provider on example data) or an exception
    to raise: a provider that is down says `DomainError("unavailable")`, as the protocol asks; one that breaks in
    its own way raises anything else (a timeout, an answer it cannot read). `charges` keeps every charge asked for;
    a request beyond the script is also kept in `unexpected`, in case the code under test swallows the error.
    """

    outcomes: list[PaymentOutcome]
    issuer: PaymentProvider = field(
        default_factory=lambda: LocalPaymentProvider(
            pix_key="pix@prefeitura.example.gov.br",
            merchant_name="Prefeitura de Exemplo",
            merchant_city="Brasilia",
            bank_code="001",
        )
    )
    charges: list[DebtCharge] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @classmethod
    def down(cls, times: int = 1) -> ScriptedPaymentProvider:
        """A provider that is down for the next `times` requests (and not scripted after them)."""
        return cls([DomainError("unavailable") for _ in range(times)])

    def then(self, *outcomes: PaymentOutcome) -> ScriptedPaymentProvider:
        """Script more outcomes after the ones already there (e.g. the provider is back)."""
        self.outcomes.extend(outcomes)
        return self

    def second_copy(self, charge: DebtCharge) -> PaymentInstructions:
        self.charges.append(charge)
        if not self.outcomes:
            problem = f"unscripted second copy #{len(self.charges)} (debt {charge.debt_id}, due {charge.due_date})"
            self.unexpected.append(problem)
            raise UnexpectedPaymentRequest(problem)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return self.issuer.second_copy(charge)

    def assert_consumed(self) -> None:
        if self.outcomes:
            raise AssertionError(f"{len(self.outcomes)} scripted payment outcome(s) were never used")
        if self.unexpected:
            raise AssertionError("; ".join(self.unexpected))


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool
    data: dict[str, Any]

    @property
    def error(self) -> str | None:
        return None if self.ok else self.data.get("error")


async def call(
    client: Client,
    tool: str,
    arguments: dict[str, Any] | None = None,
    *,
    conversation: str | None = None,
    proof: ConversationProof | None = None,
) -> ToolOutcome:
    """Calls a tool the way the assistant does (conversation id in `_meta`, signed with `proof` when given)."""
    meta: dict[str, str] | None = None
    if conversation:
        meta = {CONVERSATION_META_KEY: conversation}
        if proof is not None:
            meta[PROOF_META_KEY] = proof.sign(conversation)
    result = await client.call_tool(tool, arguments or {}, meta=meta)  # type: ignore[arg-type]
    data = result.structured_content
    if not isinstance(data, dict):
        raise AssertionError(f"{tool} returned no structured content: {result.content}")
    return ToolOutcome(not result.is_error, data)
