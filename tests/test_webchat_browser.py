"""The web chat's chat key cookie in a real browser (Chromium through Playwright) against the app on loopback: the
chat page restores its conversation after a reload while no script can read the key, and the widget on a portal of
another site still chats, because the cookie is Partitioned (this Chromium blocks unpartitioned third-party cookies).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_services
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from openai_compatible_server import LoopbackServer
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from core.settings import Settings
from rag.types import Document

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "webchat"
ASK = "quero falar com um atendente"


@pytest.fixture
def atende(test_settings: Settings, scripted: ScriptedChatModel, knowledge_documents: list[Document]) -> Iterator[str]:
    """The app with its production cookie flags (Secure, __Host-): Chromium keeps Secure cookies on loopback."""
    assert test_settings.session_cookie_secure
    services = make_services(test_settings, scripted, knowledge_documents)
    try:
        with LoopbackServer(create_app(services=services, warm_model=False)) as running:  # type: ignore[arg-type]
            yield running.url
    finally:
        services.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"this test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


def test_the_chat_page_restores_its_conversation_after_a_reload_and_no_script_reads_the_key(
    atende: str, browser: Browser
) -> None:
    page = browser.new_context().new_page()
    page.goto(f"{atende}/")
    page.fill(".composer__input", ASK)
    page.click(".composer__send")
    expect(page.locator(".msg--handoff")).to_have_count(1)
    conversation_id = page.evaluate("sessionStorage.getItem('atende.conversationId')")

    page.reload()
    restored = page.locator(".msg--user")
    seen_by_script = page.evaluate("document.cookie")
    other = browser.new_context().new_page()
    other.goto(f"{atende}/")
    stolen = other.evaluate(
        "async (id) => (await fetch(`/api/conversations/${id}`, {credentials: 'same-origin'})).status",
        conversation_id,
    )

    expect(restored).to_contain_text([ASK])
    assert "atende_chat" not in seen_by_script
    assert stolen == 404


def test_the_widget_on_a_portal_of_another_site_chats_with_a_partitioned_chat_key(
    test_settings: Settings, scripted: ScriptedChatModel, knowledge_documents: list[Document], browser: Browser
) -> None:
    portal = FastAPI()
    atende_url: list[str] = []

    @portal.get("/")
    def home() -> HTMLResponse:
        script = f'<script src="{atende_url[0]}/widget.js" data-atende-url="{atende_url[0]}" defer></script>'
        return HTMLResponse(f'<!doctype html><html lang="pt-BR"><body><h1>Portal</h1>{script}</body></html>')

    with LoopbackServer(portal) as running:
        # localhost and 127.0.0.1 are different sites: the chat runs in a third-party iframe, which the chat page
        # allows only to the portals listed in ATENDE_EMBED_ORIGINS.
        portal_url = running.url.replace("127.0.0.1", "localhost")
        settings = test_settings.model_copy(update={"embed_origins": portal_url})
        services = make_services(settings, scripted, knowledge_documents)
        try:
            with LoopbackServer(create_app(services=services, warm_model=False)) as atende:  # type: ignore[arg-type]
                atende_url.append(atende.url)
                context = browser.new_context()
                page = context.new_page()
                page.goto(portal_url + "/")
                page.wait_for_function("window.AtendeWidget")
                page.evaluate("window.AtendeWidget.open()")
                _chat_in_the_widget(page, context)
        finally:
            services.close()


def _chat_in_the_widget(page: Page, context: BrowserContext) -> None:
    chat = page.frame_locator("iframe")
    chat.locator(".composer__input").fill(ASK)
    chat.locator(".composer__send").click()

    expect(chat.locator(".msg--handoff")).to_have_count(1)
    (cookie,) = context.cookies()
    assert cookie["name"] == "__Host-atende_chat"
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "None")
    assert cookie.get("partitionKey") == "http://localhost"


@pytest.mark.parametrize("width", [1280, 390])
def test_a_reply_lost_on_the_way_is_retried_under_the_same_id_and_answered_once(
    atende: str, browser: Browser, width: int
) -> None:
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    sent: list[str] = []

    def lose_the_first_reply(route: Route) -> None:
        body = route.request.post_data_json or {}
        sent.append(body["client_message_id"])
        if len(sent) == 1:
            route.fetch()  # the server answers…
            route.abort("connectionreset")  # …and the answer never reaches the browser
        else:
            route.continue_()

    page.route("**/messages/stream", lose_the_first_reply)
    page.goto(f"{atende}/")
    page.fill(".composer__input", ASK)
    page.click(".composer__send")
    page.get_by_role("button", name="Tentar novamente").click()
    expect(page.locator(".msg--handoff")).to_have_count(1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"webchat-retry-{width}.png"), full_page=True)
    conversation_id = page.evaluate("sessionStorage.getItem('atende.conversationId')")
    roles = page.evaluate(
        "async (id) => (await (await fetch(`/api/conversations/${id}`)).json()).messages.map((m) => m.role)",
        conversation_id,
    )

    assert len(sent) == 2
    assert sent[0] == sent[1]  # the retry is the same message
    assert roles == ["user", "assistant"]  # answered once
