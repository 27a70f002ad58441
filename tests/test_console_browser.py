"""The whole handoff in real browsers (Chromium through Playwright) against the app on loopback: a citizen asks
for a person in the web chat, an agent signs in to the console, takes the conversation, reads the summary,
accepts and edits the copilot's suggestion, sends it and closes with a reason; the citizen sees the reply and
the survey. Screenshots land in test-artifacts/handoff/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, make_services
from helpers import first_sentence_of
from openai_compatible_server import LoopbackServer
from playwright.sync_api import Page, expect, sync_playwright

from assistant.llm import LLMError
from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services
from core.accounts.service import build_accounts
from core.accounts.testing import PASSWORD, create_user, fast_passwords, with_settings
from core.i18n import t
from core.settings import Settings
from domain.seed import seed
from rag.types import Document

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "handoff"
QUESTION = "Como emito a segunda via do boleto do IPTU? Meu CPF é 529.982.247-25"


@pytest.fixture
def server(
    test_settings: Settings, scripted: ScriptedChatModel, knowledge_documents: list[Document]
) -> Iterator[tuple[str, Services]]:
    settings = with_settings(test_settings, totp_required_roles="", session_cookie_secure=False)
    services = make_services(settings, scripted, knowledge_documents)
    services._accounts = build_accounts(
        settings, services.engine, services.audit, cipher=services.lgpd.cipher if services.lgpd else None,
        passwords=fast_passwords(),
    )  # fmt: skip
    services.token_verifier = services.accounts.tokens
    create_user(services.accounts, "ana", "agent")
    try:
        with LoopbackServer(create_app(services=services, warm_model=False)) as running:  # type: ignore[arg-type]
            yield running.url, services
    finally:
        services.close()


def chat(page: Page, text: str, replies: int) -> None:
    page.fill(".composer__input", text)
    page.click(".composer__send")
    # A locator rather than wait_for_function: the chat page's CSP forbids evaluating strings too.
    page.locator(".msg--handoff").nth(replies - 1).wait_for(state="attached")


def test_a_citizen_is_served_by_an_agent_who_edits_the_copilots_suggestion(
    server: tuple[str, Services], scripted: ScriptedChatModel
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"this test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    url, services = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    scripted.add(first_sentence_of(1))  # the copilot's one model call
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            citizen = browser.new_context().new_page()
            citizen.goto(f"{url}/")
            chat(citizen, "quero falar com um atendente", 1)
            chat(citizen, QUESTION, 2)

            agent = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            agent.goto(f"{url}/staff/login?next=/console")
            agent.fill("#username", "ana")
            agent.fill("#password", PASSWORD)
            agent.click("button[type=submit]")
            agent.wait_for_url(f"{url}/console")
            agent.click("#queue button.claim")
            agent.wait_for_selector("#side-panel:not([hidden])")
            summary = agent.locator("#summary").inner_text()
            agent.click("#suggest")
            agent.wait_for_selector("#use-suggestion:not([hidden])")
            suggestion = agent.locator("#suggestion").inner_text()
            agent.click("#use-suggestion")
            edited = agent.input_value("#reply") + " Qualquer dúvida, estou à disposição."
            agent.fill("#reply", edited)
            agent.screenshot(path=str(ARTIFACTS / "console-before-send.png"), full_page=True)
            agent.click("#reply-form button[type=submit]")
            agent.wait_for_selector(f"#status:has-text('{t('console.sent')}')")
            agent.select_option("#close-reason", "information_given")
            agent.click("#close-form button[type=submit]")
            agent.wait_for_selector(f"#status:has-text('{t('console.closed')[:20]}')")
            closed_status = agent.locator("#status").inner_text()
            agent.screenshot(path=str(ARTIFACTS / "console-after-close.png"), full_page=True)

            citizen.wait_for_selector(".msg--system", timeout=30_000)
            seen_reply = citizen.locator(".msg--agent .msg__body").inner_text()
            seen_survey = citizen.locator(".msg--system .msg__body").inner_text()
            citizen.wait_for_selector(".msg--survey .survey__score", timeout=30_000)
            citizen.fill(".msg--survey .survey__comment", "Atendente muito atenciosa")
            citizen.click(".msg--survey .survey__score >> text='4'")
            citizen.wait_for_selector(".survey__status:has-text('Obrigado')")
            citizen.screenshot(path=str(ARTIFACTS / "webchat-citizen.png"), full_page=True)
        finally:
            browser.close()

    assert "[CPF]" in summary
    assert "529.982.247-25" not in summary
    assert suggestion
    assert seen_reply == edited
    assert "de 1 a 5" in seen_survey
    assert (ARTIFACTS / "console-after-close.png").stat().st_size > 0
    [conversation_id] = {row["conversation_id"] for row in services.store.iter_turns()}
    record = services.handoff.current(conversation_id)  # type: ignore[union-attr]
    assert record is not None
    assert record.close_reason == "information_given"
    assert (record.survey_score, record.survey_comment) == (4, "Atendente muito atenciosa")
    assert record.protocol_number is not None
    assert closed_status == t("console.closed_protocol", number=record.protocol_number)
    assert record.protocol_number in seen_survey


def test_a_supervisor_finds_a_saved_reply_without_accents_fills_the_reply_with_it_and_adds_another(
    server: tuple[str, Services],
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"this test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    url, services = server
    assert services.handoff is not None
    assert services.saved_replies is not None
    certidao = "A certidão negativa sai na hora no Portal do Contribuinte, em Certidões."
    services.saved_replies.create(team="atendimento", title="Certidão negativa", text=certidao, author="user:1")
    services.saved_replies.create(team="atendimento", title="Segunda via", text="Boleto pelo portal.", author="user:1")
    create_user(services.accounts, "sueli", "supervisor")
    cid = services.store.create_conversation("web").id
    services.store.add_message(cid, "user", "Preciso de uma certidão")
    services.handoff.request(cid, reason="citizen_request", source="citizen_request")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            boss = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            sign_in(boss, url, "sueli", "/console")
            boss.click("#queue button.claim")
            boss.wait_for_selector("#saved-replies li.saved-reply")
            boss.fill("#saved-replies-query", "CERTIDAO")
            boss.locator("#saved-replies li.saved-reply", has_text="Segunda via").wait_for(state="detached")
            found = boss.locator("#saved-replies li.saved-reply strong").inner_text()
            boss.click("#saved-replies li.saved-reply button")
            filled = boss.input_value("#reply")
            boss.fill("#saved-reply-title", "Horário da Praça")
            boss.fill("#saved-reply-text", "De segunda a sexta, das 8h às 17h.")
            boss.click("#saved-reply-form button[type=submit]")
            boss.wait_for_selector(f"#status:has-text('{t('console.saved_replies.saved')}')")
            boss.screenshot(path=str(ARTIFACTS / "console-saved-replies.png"), full_page=True)
        finally:
            browser.close()

    assert found == "Certidão negativa"
    assert filled == certidao
    assert [m.role for m in services.store.list_messages(cid)] == ["user"]  # filling the box sends nothing
    assert [r.title for r in services.saved_replies.search("atendimento", "horario")] == ["Horário da Praça"]


def sign_in(page: Page, url: str, username: str, landing: str) -> None:
    page.goto(f"{url}/staff/login?next={landing}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}{landing}")


def test_a_supervisor_watches_the_shift_and_hands_conversations_to_a_second_agent(
    server: tuple[str, Services],
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"this test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from core.accounts.directory import UserChanges
    from core.accounts.types import SYSTEM

    url, services = server
    directory = services.accounts.directory
    team = directory.create_team("Atendimento geral", actor="system", origin=SYSTEM)
    ana = directory.require("ana")
    directory.update_user(ana.id, UserChanges(team_id=team.id), actor="system", origin=SYSTEM)
    bruno = create_user(services.accounts, "bruno", "agent", team=team.id)
    create_user(services.accounts, "sueli", "supervisor", team=team.id)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            citizens = [browser.new_context().new_page() for _ in range(2)]
            for citizen in citizens:
                citizen.goto(f"{url}/")
                chat(citizen, "quero falar com um atendente", 1)

            agent_ana = browser.new_context().new_page()
            sign_in(agent_ana, url, "ana", "/console")
            agent_ana.click("#queue button.claim")
            agent_ana.wait_for_selector("#side-panel:not([hidden])")
            agent_bruno = browser.new_context().new_page()
            sign_in(agent_bruno, url, "bruno", "/console")

            boss = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            sign_in(boss, url, "sueli", "/console/supervisor")
            boss.wait_for_selector(f"#agents tr[data-agent='{ana.subject}'] .status.busy")
            boss.wait_for_selector("#waiting li button.assign")
            boss.select_option("#waiting li select", bruno.subject)
            boss.click("#waiting li button.assign")
            boss.wait_for_selector(f"#status:has-text('{t('supervisor.reassigned')}')")
            boss.select_option("#served li.served select >> nth=0", bruno.subject)
            served = boss.locator("#served li.served").first
            ana_conversation = served.get_attribute("data-conversation")
            served.locator("button", has_text=t("supervisor.reassign")).click()
            # expect() rather than wait_for_function: the staff pages' CSP forbids evaluating strings.
            expect(boss.locator("#served li.served strong", has_text="bruno")).to_have_count(2)
            bruno_load = boss.locator(f"#agents tr[data-agent='{bruno.subject}'] td >> nth=2")
            expect(bruno_load).to_have_text("2 / 3")
            boss.screenshot(path=str(ARTIFACTS / "supervisor-board.png"), full_page=True)

            agent_bruno.reload()
            expect(agent_bruno.locator("#mine li")).to_have_count(2)
        finally:
            browser.close()

    assert [view.agent for view in services.handoff.served()] == [bruno.subject, bruno.subject]  # type: ignore[union-attr]
    kinds = [event.kind for event in services.store.list_events(ana_conversation or "")]
    assert "handoff_reassigned" in kinds


def test_an_agent_runs_the_copilots_protocol_action_and_the_answer_only_fills_the_reply_box(
    server: tuple[str, Services], scripted: ScriptedChatModel
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"this test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    url, services = server
    assert services.handoff is not None
    assert services.domain is not None
    seed(services.domain)  # the service catalogue protocol_open uses
    scripted.add(LLMError("no suggestion needed here"))  # the copilot's one model call
    cid = services.store.create_conversation("web").id
    services.store.add_message(cid, "user", "Tem um buraco enorme na minha rua")
    services.handoff.request(cid, reason="citizen_request", source="citizen_request")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            agent = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            sign_in(agent, url, "ana", "/console")
            agent.click("#queue button.claim")
            agent.wait_for_selector("#side-panel:not([hidden])")
            agent.click("#suggest")
            agent.click("#suggestion-actions button[data-action=open_protocol]")
            agent.wait_for_selector("#action-form:not([hidden])")
            guessed = agent.input_value("#action-service")
            prefilled = agent.input_value("#action-description")
            agent.fill("#action-address", "Rua das Flores, 120")
            agent.click("#action-run")
            agent.wait_for_selector(f"#status:has-text('{t('console.actions.filled')[:30]}')")
            reply = agent.input_value("#reply")
            agent.screenshot(path=str(ARTIFACTS / "console-protocol-action.png"), full_page=True)
        finally:
            browser.close()

    assert guessed == "tapa_buraco"
    assert prefilled == "Tem um buraco enorme na minha rua"
    assert reply.startswith("Registrei o protocolo ")
    assert [m.role for m in services.store.list_messages(cid)] == ["user"]  # nothing sent until the agent sends
