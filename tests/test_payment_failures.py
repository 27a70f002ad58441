"""When the payment provider fails: what the citizen is told, in pt-BR, and that their request is not lost.

The provider is `ScriptedPaymentProvider`: down first (as the protocol asks a provider to say it), or breaking in
its own way, then back. The MCP tool reports the failure as `unavailable` with its message; the assistant keeps
the citizen's request, and "tentar de novo" gets the codes once the provider answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_services
from helpers import respond
from mcp import Client

from assistant.testing import ScriptedChatModel
from atende.services import Services
from core.audit import MemoryAuditSink
from core.db import make_engine, make_session_factory
from core.i18n import t
from core.migrate import upgrade
from core.settings import Settings
from domain.debts import DebtLedger
from domain.pix import decode_br_code
from domain.seed import CITIZENS, seed
from domain.wiring import Domain
from rag.types import Document
from tools_mcp.server import build_mcp_server
from tools_mcp.testing import ISSUE, ScriptedPaymentProvider, ToolOutcome, call, make_test_domain

MARIA = CITIZENS[0]
MARIA_CPF = "983.690.060-86"
MARIA_BIRTH = "15/03/1985"


# Through the MCP tool

DomainWith = Callable[[ScriptedPaymentProvider], tuple[Domain, MemoryAuditSink]]
AssistantWith = Callable[[ScriptedPaymentProvider], Services]


@pytest.fixture
def domain_with(tmp_path: Path, test_settings: Settings) -> Iterator[DomainWith]:
    """A seeded domain whose debts are paid through the provider given."""
    engines = []

    def build(provider: ScriptedPaymentProvider) -> tuple[Domain, MemoryAuditSink]:
        url = f"sqlite:///{(tmp_path / 'atende.db').as_posix()}"
        upgrade(url)
        engine = make_engine(url)
        engines.append(engine)
        audit = MemoryAuditSink()
        domain = make_test_domain(make_session_factory(engine), test_settings, audit=audit, provider=provider)
        seed(domain)
        return domain, audit

    yield build
    for engine in engines:
        engine.dispose()


async def second_copy_of_an_open_debt(client: Client) -> tuple[str, ToolOutcome]:
    verified = await call(client, "citizen_verify", {"cpf": MARIA_CPF, "birth_date": MARIA_BIRTH}, conversation="c1")
    assert verified.data["verified"]
    debts = (await call(client, "payment_list_debts", {"status": "aberto"}, conversation="c1")).data["debts"]
    debt_id = str(debts[0]["debt_id"])
    return debt_id, await call(client, "payment_second_copy", {"debt_id": debt_id}, conversation="c1")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [pytest.param(None, id="down"), pytest.param(TimeoutError("bank API timed out"), id="breaking-its-own-way")],
)
async def test_a_failing_provider_is_reported_by_the_tool_as_unavailable_in_pt_br(
    domain_with: DomainWith, failure: Exception | None
) -> None:
    provider = ScriptedPaymentProvider.down() if failure is None else ScriptedPaymentProvider([failure])
    domain, audit = domain_with(provider)

    async with Client(build_mcp_server(domain)) as client:
        debt_id, copy = await second_copy_of_an_open_debt(client)

    assert copy.error == "unavailable"
    assert copy.data["message"] == t("tools.error.unavailable")
    assert "bank" not in copy.data["message"]  # nothing of the provider's own error reaches the citizen
    assert [c.debt_id for c in provider.charges] == [debt_id]
    assert "debt.second_copy" not in [e.action for e in audit.events]  # no copy was given out
    provider.assert_consumed()


@pytest.mark.anyio
async def test_once_the_provider_is_back_the_same_call_gives_the_codes(domain_with: DomainWith) -> None:
    provider = ScriptedPaymentProvider.down().then(ISSUE)
    domain, _ = domain_with(provider)

    async with Client(build_mcp_server(domain)) as client:
        debt_id, failed = await second_copy_of_an_open_debt(client)
        again = await call(client, "payment_second_copy", {"debt_id": debt_id}, conversation="c1")

    assert failed.error == "unavailable"
    assert again.ok
    assert decode_br_code(again.data["pix_copia_e_cola"])
    provider.assert_consumed()


# Through the assistant


@pytest.fixture
def assistant_with(test_settings: Settings, knowledge_documents: list[Document]) -> Iterator[AssistantWith]:
    """Services over a seeded domain whose debts are paid through the provider given."""
    built: list[Services] = []

    def build(provider: ScriptedPaymentProvider) -> Services:
        services = make_services(test_settings, ScriptedChatModel([]), knowledge_documents)
        built.append(services)
        assert services.domain is not None
        seed(services.domain)
        # The composition root builds the local provider; the same ledger over the scripted one stands in.
        services.domain.debts = DebtLedger(services.domain.sessions, provider, services.domain.clock)
        return services

    yield build
    for services in built:
        services.close()


def test_the_citizen_is_told_in_pt_br_that_nothing_is_lost_and_a_retry_gives_the_codes(
    assistant_with: AssistantWith,
) -> None:
    provider = ScriptedPaymentProvider.down().then(ISSUE)
    services = assistant_with(provider)
    conversation = services.store.create_conversation("web").id

    for message in ("quero ver meus débitos", MARIA_CPF, MARIA_BIRTH):
        respond(services, conversation, message)
    failed = respond(services, conversation, "quero o pix do 2")
    retried = respond(services, conversation, "tentar de novo")

    assert failed.tool_calls == [
        {"name": "payment_second_copy", "arguments": {"debt_id": "5"}, "ok": False, "error": "unavailable"}
    ]
    assert failed.answer == t("action.error.unavailable")
    assert "Seu pedido não se perdeu" in failed.answer
    assert retried.tool_calls == [
        {"name": "payment_second_copy", "arguments": {"debt_id": "5"}, "ok": True, "error": None}
    ]
    assert "Pix copia e cola" in retried.answer
    assert "AIT 2026-00004" in retried.answer  # the debt the citizen chose before the failure
    assert [c.debt_id for c in provider.charges] == ["5", "5"]
    provider.assert_consumed()
