"""The copilot's tool actions in the console (open a protocol, a debt's second copy, identifying the citizen), over
the real app with a scripted model: drafts change nothing, runs go through the domain services, and nothing reaches
the citizen until the agent sends the text."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from atende.app import create_app
from atende.services import Services
from channels.webchat.testing import keep_only_chat_key
from core.accounts.service import Accounts
from core.accounts.testing import ManualClock, create_user, rewire, sign_in_directly
from core.accounts.types import StaffUser
from core.audit import AuditLog, AuditRecord
from core.i18n import t
from domain.models import Protocol, ProtocolEvent
from domain.seed import CITIZENS, seed
from domain.wiring import Domain

CPF = "529.982.247-25"
POTHOLE = f"Tem um buraco enorme na minha rua que já estourou dois pneus. Meu CPF é {CPF}"
MARIA, JOAO = CITIZENS[0], CITIZENS[1]


@pytest.fixture
def app(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def domain(services: Services, app: TestClient) -> Domain:
    """The demo catalogue, citizens and debts (what `atende seed` creates)."""
    assert services.domain is not None
    seed(services.domain)
    return services.domain


@pytest.fixture
def accounts(services: Services, app: TestClient) -> Accounts:
    return rewire(services, clock=ManualClock())


@pytest.fixture
def agent(accounts: Accounts) -> StaffUser:
    return create_user(accounts, "ana.agente", "agent")


def as_staff(app: TestClient, accounts: Accounts, user: StaffUser) -> dict[str, str]:
    keep_only_chat_key(app)
    return {"X-CSRF-Token": sign_in_directly(app, accounts, user)}


def served(app: TestClient, accounts: Accounts, agent: StaffUser, *said: str) -> tuple[str, dict[str, str]]:
    """A web chat conversation handed to a person, what the citizen wrote while waiting, taken by `agent`."""
    app.cookies.clear()
    cid: str = app.post("/api/conversations").json()["id"]
    asked = app.post(f"/api/conversations/{cid}/messages", json={"text": "quero falar com um atendente"})
    assert asked.json()["decision"] == "handoff"
    for text in said:
        app.post(f"/api/conversations/{cid}/messages", json={"text": text})
    headers = as_staff(app, accounts, agent)
    assert app.post(f"/api/console/conversations/{cid}/claim", headers=headers).status_code == 200
    return cid, headers


def verify(domain: Domain, cid: str, who: Any = MARIA) -> int:
    """The citizen proves who they are in this conversation, as citizen_verify does."""
    outcome = domain.verifier.verify(cid, who.cpf, who.birth_date.isoformat(), actor="test")
    assert outcome.verified
    assert outcome.citizen_id is not None
    return outcome.citizen_id


def typed(who: Any, birth_date: str | None = None) -> dict[str, str]:
    """What the agent types in the identity form: the CPF with its dots and dash, the birth date as DD/MM/AAAA."""
    c = who.cpf
    return {
        "cpf": f"{c[:3]}.{c[3:6]}.{c[6:9]}-{c[9:]}",
        "birth_date": birth_date or who.birth_date.strftime("%d/%m/%Y"),
    }


def action(cid: str, name: str) -> str:
    return f"/api/console/conversations/{cid}/actions/{name}"


def citizen_view(app: TestClient, cid: str) -> list[dict[str, Any]]:
    saved = list(app.cookies.jar)
    keep_only_chat_key(app)
    try:
        messages: list[dict[str, Any]] = app.get(f"/api/conversations/{cid}").json()["messages"]
    finally:
        for cookie in saved:
            app.cookies.jar.set_cookie(cookie)
    return messages


def protocols(domain: Domain) -> int:
    with domain.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Protocol)) or 0)


def audit_records(services: Services, action_name: str) -> list[AuditRecord]:
    assert isinstance(services.audit, AuditLog)
    return [r for r in services.audit.iter_records() if r.action == action_name]


# --- open a protocol --------------------------------------------------------------------------------------


def test_the_protocol_draft_guesses_the_service_and_prefills_a_masked_description_without_creating_anything(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain
) -> None:
    cid, _ = served(app, accounts, agent, POTHOLE)
    before = protocols(domain)

    draft = app.get(action(cid, "open_protocol"))

    assert draft.status_code == 200
    body = draft.json()
    assert "tapa_buraco" in {s["code"] for s in body["services"]}
    assert "atendimento_humano" not in {s["code"] for s in body["services"]}  # not a service citizens ask for
    assert body["service"] == "tapa_buraco"
    assert body["description"] == POTHOLE.replace(CPF, "[CPF]")
    assert CPF not in str(body)
    assert (body["anonymous"], body["notice"]) == (True, t("console.actions.protocol.anonymous"))
    assert protocols(domain) == before


def test_running_open_protocol_opens_it_for_the_verified_citizen_and_only_fills_the_reply(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain, services: Services
) -> None:
    cid, headers = served(app, accounts, agent, POTHOLE)
    maria = verify(domain, cid)
    draft = app.get(action(cid, "open_protocol")).json()
    seen_before = citizen_view(app, cid)

    edited = draft["description"] + "\nEm frente ao número 120."
    ran = app.post(
        action(cid, "open_protocol"),
        json={"service": draft["service"], "description": edited, "address": "Rua das Flores, 120"},
        headers=headers,
    )

    assert draft["anonymous"] is False
    assert ran.status_code == 200, ran.text
    body = ran.json()
    number = body["number"]
    assert re.fullmatch(r"\d{4}-\d{6}", number)
    assert re.match(rf"Registrei o protocolo {number}-[2-9A-Z]{{4}} \(Tapa-buraco\)\.", body["text"])
    with domain.sessions() as session:
        stored = session.scalar(select(Protocol).where(Protocol.number == number))
        assert stored is not None
        history = session.scalars(select(ProtocolEvent).where(ProtocolEvent.protocol_id == stored.id)).all()
        assert (stored.citizen_id, stored.anonymous, stored.service_code) == (maria, False, "tapa_buraco")
        assert (stored.description, stored.address, stored.channel) == (edited, "Rua das Flores, 120", "web")
        assert [(e.status, e.actor) for e in history] == [("aberto", f"user:{agent.id}")]
    assert citizen_view(app, cid) == seen_before  # nothing was sent to the citizen
    events = [e.payload for e in services.store.list_events(cid) if e.kind == "console_action"]
    assert events == [{"action": "open_protocol", "agent": f"user:{agent.id}", "protocol": number}]
    [record] = audit_records(services, "protocol.create")
    assert (record.actor, record.object_id, record.subject) == (f"user:{agent.id}", number, f"citizen:{maria}")
    assert record.details["conversation_id"] == cid
    assert not [r for r in audit_records(services, "http.post") if "actions/open_protocol" in (r.object_id or "")]


def test_the_agent_sends_the_filled_text_themselves(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain
) -> None:
    cid, headers = served(app, accounts, agent, POTHOLE)
    ran = app.post(
        action(cid, "open_protocol"), json={"service": "tapa_buraco", "description": "Buraco na rua."}, headers=headers
    ).json()

    sent = app.post(f"/api/console/conversations/{cid}/messages", json={"text": ran["text"]}, headers=headers)

    last = citizen_view(app, cid)[-1]
    assert sent.status_code == 200
    assert (last["role"], last["text"]) == ("agent", ran["text"])


def test_a_protocol_for_a_citizen_nobody_identified_is_opened_anonymously(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain
) -> None:
    cid, headers = served(app, accounts, agent, POTHOLE)

    ran = app.post(
        action(cid, "open_protocol"), json={"service": "buraco", "description": "Buraco na rua."}, headers=headers
    )

    assert ran.status_code == 200
    assert ran.json()["anonymous"] is True
    assert ran.json()["text"].endswith(t("console.actions.protocol.reply_anonymous"))
    with domain.sessions() as session:
        stored = session.scalar(select(Protocol).where(Protocol.number == ran.json()["number"]))
        assert stored is not None
        assert (stored.citizen_id, stored.anonymous, stored.service_code) == (None, True, "tapa_buraco")


@pytest.mark.parametrize(
    ("body", "code", "starts"),
    [
        ({"service": "conserto de disco voador", "description": "x"}, "invalid_argument", "Não encontrei esse serviço"),
        ({"service": "tapa_buraco", "description": "   "}, "invalid_argument", t("tools.error.empty_description")),
        ({"service": "atendimento_humano", "description": "x"}, "invalid_argument", "Não encontrei esse serviço"),
    ],
)
def test_a_protocol_with_an_unknown_service_or_no_description_is_refused_in_portuguese(
    app: TestClient,
    accounts: Accounts,
    agent: StaffUser,
    domain: Domain,
    body: dict[str, str],
    code: str,
    starts: str,
) -> None:
    cid, headers = served(app, accounts, agent, POTHOLE)
    before = protocols(domain)

    refused = app.post(action(cid, "open_protocol"), json=body, headers=headers)

    assert (refused.status_code, refused.json()["code"]) == (422, code)
    assert refused.json()["detail"].startswith(starts)
    assert protocols(domain) == before


# --- who may act --------------------------------------------------------------------------------------------


def test_an_agent_who_is_not_serving_the_conversation_can_run_none_of_its_actions(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain
) -> None:
    cid, _ = served(app, accounts, agent, POTHOLE)
    maria = verify(domain, cid)
    before = protocols(domain)
    headers = as_staff(app, accounts, create_user(accounts, "bruno.agente", "agent"))

    answers = [
        app.get(action(cid, "open_protocol")),
        app.post(action(cid, "open_protocol"), json={"service": "tapa_buraco", "description": "x"}, headers=headers),
        app.get(action(cid, "second_copy")),
        app.post(action(cid, "second_copy"), json={"debt_id": "1"}, headers=headers),
        app.post(action(cid, "verify_identity"), json=typed(JOAO), headers=headers),
    ]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(403, "not_assigned")] * 5
    assert domain.verifier.verified_citizen(cid) == maria  # João was not verified in Maria's place
    assert answers[0].json()["detail"] == t("handoff.error.not_assigned")
    assert protocols(domain) == before


def test_a_supervisor_may_act_on_a_conversation_an_agent_is_serving(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain
) -> None:
    cid, _ = served(app, accounts, agent, POTHOLE)
    headers = as_staff(app, accounts, create_user(accounts, "sara.supervisora", "supervisor"))

    ran = app.post(
        action(cid, "open_protocol"), json={"service": "tapa_buraco", "description": "Buraco."}, headers=headers
    )

    assert ran.status_code == 200


def test_an_action_on_an_unknown_conversation_is_not_found(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain
) -> None:
    as_staff(app, accounts, agent)

    missing = app.get(action("nao-existe", "open_protocol"))

    assert (missing.status_code, missing.json()["detail"]) == (404, t("error.conversation_not_found"))


# --- second copy ------------------------------------------------------------------------------------------


def test_a_second_copy_for_a_citizen_nobody_identified_is_refused_in_portuguese(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain, services: Services
) -> None:
    cid, headers = served(app, accounts, agent, "Preciso da segunda via do IPTU")

    draft = app.get(action(cid, "second_copy"))
    ran = app.post(action(cid, "second_copy"), json={"debt_id": "1"}, headers=headers)

    assert draft.status_code == 200
    assert draft.json() == {
        "action": "second_copy",
        "identified": False,
        "debts": [],
        "detail": t("console.actions.identify_first"),
    }
    assert (ran.status_code, ran.json()["code"]) == (422, "not_identified")
    assert ran.json()["detail"] == t("console.actions.identify_first")
    assert audit_records(services, "debt.second_copy") == []


def test_a_second_copy_for_the_verified_citizen_returns_the_payment_codes_and_sends_nothing(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain, services: Services
) -> None:
    cid, headers = served(app, accounts, agent, "Preciso da segunda via do IPTU")
    maria = verify(domain, cid)
    seen_before = citizen_view(app, cid)

    draft = app.get(action(cid, "second_copy")).json()
    chosen = draft["debts"][0]
    ran = app.post(action(cid, "second_copy"), json={"debt_id": chosen["debt_id"]}, headers=headers)

    assert (draft["identified"], draft["verified"]) == (True, True)
    assert draft["debts"]
    assert {d["status"] for d in draft["debts"]} <= {"aberto", "vencido"}
    assert ran.status_code == 200, ran.text
    body = ran.json()
    assert body["pix_copia_e_cola"].startswith("000201")
    assert re.fullmatch(r"\d{47}", body["boleto_linha_digitavel"])
    assert body["pix_copia_e_cola"] in body["text"]
    assert body["boleto_linha_digitavel"] in body["text"]
    assert body["text"].startswith(f"Segunda via de {chosen['reference']}:")
    assert citizen_view(app, cid) == seen_before  # the codes wait in the agent's reply box
    [listed] = audit_records(services, "debt.list")
    [issued] = audit_records(services, "debt.second_copy")
    assert (listed.subject, issued.subject) == (f"citizen:{maria}", f"citizen:{maria}")
    assert (issued.actor, issued.object_id) == (f"user:{agent.id}", chosen["debt_id"])
    events = [e.payload for e in services.store.list_events(cid) if e.kind == "console_action"]
    assert events == [{"action": "second_copy", "agent": f"user:{agent.id}", "debt_id": chosen["debt_id"]}]


def test_a_second_copy_of_another_citizens_debt_or_an_unknown_one_is_refused(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain
) -> None:
    cid, headers = served(app, accounts, agent, "Preciso da segunda via do IPTU")
    verify(domain, cid, MARIA)
    joao = domain.citizens.by_cpf(JOAO.cpf)
    assert joao is not None
    joaos_debt = domain.debts.list_for(joao.id, "aberto")[0]["debt_id"]

    someone_elses = app.post(action(cid, "second_copy"), json={"debt_id": joaos_debt}, headers=headers)
    unknown = app.post(action(cid, "second_copy"), json={"debt_id": "999999"}, headers=headers)
    malformed = app.post(action(cid, "second_copy"), json={"debt_id": "abc"}, headers=headers)

    assert (someone_elses.status_code, someone_elses.json()["detail"]) == (422, t("tools.error.not_yours_debt"))
    assert (unknown.status_code, unknown.json()["detail"]) == (404, t("tools.error.debt_not_found"))
    assert (malformed.status_code, malformed.json()["detail"]) == (422, t("tools.error.invalid_debt_id"))


# --- identifying the citizen from the console ---------------------------------------------------------------


def assert_no_cpf(services: Services, cid: str, logs: pytest.LogCaptureFixture, who: Any = MARIA) -> None:
    formatted = typed(who)["cpf"]
    assert isinstance(services.audit, AuditLog)
    written = [str(r.details) + str(r.object_id) for r in services.audit.iter_records()]
    written += [str(e.payload) for e in services.store.list_events(cid)]
    written += [r.getMessage() for r in logs.records]
    assert written
    assert not [w for w in written if who.cpf in w or formatted in w]


def test_an_invalid_cpf_typed_by_the_agent_is_refused_in_portuguese_and_identifies_nobody(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain, services: Services
) -> None:
    cid, headers = served(app, accounts, agent, "Preciso da segunda via do IPTU")

    refused = app.post(
        action(cid, "verify_identity"), json={"cpf": "123.456.789-00", "birth_date": "15/03/1985"}, headers=headers
    )

    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_cpf")
    assert refused.json()["detail"] == t("tools.error.invalid_cpf")
    assert domain.verifier.verified_citizen(cid) is None
    assert app.get(action(cid, "second_copy")).json()["identified"] is False


def test_a_birth_date_that_does_not_match_is_refused_with_the_attempts_left_and_no_cpf_recorded(
    app: TestClient,
    accounts: Accounts,
    agent: StaffUser,
    domain: Domain,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cid, headers = served(app, accounts, agent, "Preciso da segunda via do IPTU")

    refused = app.post(action(cid, "verify_identity"), json=typed(MARIA, "01/01/1900"), headers=headers)

    left = domain.verifier.policy.max_attempts_per_conversation - 1
    assert (refused.status_code, refused.json()["code"]) == (422, "identity_mismatch")
    assert refused.json()["detail"] == t("console.actions.verify.mismatch", left=left)
    assert domain.verifier.verified_citizen(cid) is None
    assert app.get(action(cid, "second_copy")).json()["identified"] is False
    [checked] = audit_records(services, "citizen.verify")
    assert (checked.actor, checked.details["outcome"]) == (f"user:{agent.id}", "mismatch")
    assert_no_cpf(services, cid, caplog)


def test_attempts_are_shared_with_the_assistant_and_too_many_are_refused(
    app: TestClient, accounts: Accounts, agent: StaffUser, domain: Domain
) -> None:
    cid, headers = served(app, accounts, agent, "Preciso da segunda via do IPTU")
    for _ in range(domain.verifier.policy.max_attempts_per_conversation):
        app.post(action(cid, "verify_identity"), json=typed(MARIA, "01/01/1900"), headers=headers)

    blocked = app.post(action(cid, "verify_identity"), json=typed(MARIA), headers=headers)

    assert (blocked.status_code, blocked.json()["code"]) == (429, "rate_limited")
    assert blocked.json()["detail"].startswith("Foram muitas tentativas")
    assert domain.verifier.verified_citizen(cid) is None


def test_the_right_cpf_and_birth_date_identify_the_conversation_and_the_second_copy_lists_the_debts(
    app: TestClient,
    accounts: Accounts,
    agent: StaffUser,
    domain: Domain,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cid, headers = served(app, accounts, agent, "Preciso da segunda via do IPTU")
    seen_before = citizen_view(app, cid)
    maria = domain.citizens.by_cpf(MARIA.cpf)
    assert maria is not None

    ran = app.post(action(cid, "verify_identity"), json=typed(MARIA), headers=headers)
    draft = app.get(action(cid, "second_copy")).json()

    assert ran.status_code == 200, ran.text
    assert ran.json()["verified"] is True
    assert ran.json()["detail"] == t("console.actions.verify.done")
    assert ran.json()["text"] == t("action.verify.ok_named", name=ran.json()["first_name"])
    assert domain.verifier.verified_citizen(cid) == maria.id
    conversation = services.store.get_conversation(cid)
    assert conversation is not None
    assert conversation.citizen_ref == f"citizen:{maria.id}"
    assert (draft["identified"], draft["verified"]) == (True, True)
    assert draft["debts"]
    assert citizen_view(app, cid) == seen_before  # the greeting waits in the reply box
    [checked] = audit_records(services, "citizen.verify")
    [console] = audit_records(services, "console.verify_identity")
    assert (checked.actor, checked.details["outcome"]) == (f"user:{agent.id}", "verified")
    assert (console.actor, console.subject, console.details["via"]) == (
        f"user:{agent.id}",
        f"citizen:{maria.id}",
        "console",
    )
    events = [e.payload for e in services.store.list_events(cid) if e.kind == "console_action"]
    assert events == [{"action": "verify_identity", "agent": f"user:{agent.id}", "verified": True}]
    assert_no_cpf(services, cid, caplog)
