"""Browser hardening headers on the pages and the API, framing only for the embedded chat, and no public API docs
in production."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import KNOWLEDGE, production_values
from fastapi.testclient import TestClient
from pydantic import ValidationError

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services, build_services
from channels.kb_links import article_link
from core.settings import Settings

PORTAL = "https://www.santaaurora.example.gov.br"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "security"
# A passage near the end of knowledge/iptu-segunda-via.md, as an answer quotes it.
QUOTED = '- Confira sempre se o beneficiário do boleto é "Prefeitura Municipal de Santa Aurora" antes de pagar.'


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services, warm_model=False)) as test_client:
        yield test_client


def csp_of(response: object) -> dict[str, str]:
    header = response.headers["content-security-policy"]  # type: ignore[attr-defined]
    return {part.split()[0]: part.split(" ", 1)[1] for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.parametrize("path", ["/", "/console", "/staff/login", "/healthz", "/api/conversations/inexistente"])
def test_every_response_forbids_sniffing_framing_and_foreign_scripts(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)

    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"
    policy = csp_of(response)
    assert policy["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    assert policy.get("script-src", policy["default-src"]) == "'self'"


def test_a_knowledge_article_allows_only_its_own_fixed_style(client: TestClient) -> None:
    response = client.get("/kb/iptu-segunda-via")

    assert response.status_code == 200
    policy = csp_of(response)
    assert policy["script-src"] == "'self'"
    assert policy["style-src"].startswith("'self' 'sha256-")
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in response.text


def test_the_pages_carry_no_inline_script_or_style(client: TestClient) -> None:
    for path in ("/", "/static/widget-demo.html"):
        page = client.get(path).text.lower()
        assert "<style" not in page
        assert " style=" not in page
        assert "<script>" not in page  # every script has a src (JSON data blocks have a type)


def test_the_embedded_chat_may_be_framed_by_the_configured_portals_only(services: Services) -> None:
    services.settings = services.settings.model_copy(update={"embed_origins": PORTAL})
    with TestClient(create_app(services=services, warm_model=False)) as client:
        embedded = client.get("/?embed=1")
        plain = client.get("/")

    assert csp_of(embedded)["frame-ancestors"] == f"'self' {PORTAL}"
    assert "x-frame-options" not in embedded.headers
    assert csp_of(plain)["frame-ancestors"] == "'none'"


def test_without_configured_portals_the_chat_embeds_on_its_own_site_only(client: TestClient) -> None:
    assert csp_of(client.get("/?embed=1"))["frame-ancestors"] == "'self'"


def test_an_embed_origin_that_is_not_an_origin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ATENDE_EMBED_ORIGINS"):
        Settings(environment="test", data_dir=tmp_path, embed_origins="https://a.example/path; script-src *")  # type: ignore[call-arg]


def test_https_deployments_send_hsts(services: Services, client: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/").headers
    assert client.get("https://testserver/").headers["strict-transport-security"].startswith("max-age=")
    services.settings = services.settings.model_copy(update={"public_base_url": "https://atende.example.gov.br"})
    with TestClient(create_app(services=services, warm_model=False)) as behind_a_proxy:
        assert "max-age=" in behind_a_proxy.get("/").headers["strict-transport-security"]


def test_the_api_docs_are_served_outside_production(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def production_client(tmp_path: Path, **values: object) -> tuple[Services, TestClient]:
    settings = Settings(
        **{**production_values(), **values},  # type: ignore[arg-type]
        data_dir=tmp_path / "var",
        knowledge_dir=KNOWLEDGE,
        vector_store="memory",
        embedding_backend="hashing",
        _env_file=None,  # type: ignore[call-arg]
    )
    services = build_services(settings, model=ScriptedChatModel([]))
    return services, TestClient(create_app(services=services, warm_model=False))


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_production_hides_the_api_docs_unless_asked(tmp_path: Path, path: str) -> None:
    services, client = production_client(tmp_path)
    try:
        with client:
            hidden = client.get(path)
            assert client.get("/").headers["strict-transport-security"].startswith("max-age=")
    finally:
        services.close()
    services, client = production_client(tmp_path, api_docs=True)
    try:
        with client:
            shown = client.get(path)
    finally:
        services.close()

    assert hidden.status_code == 404
    assert shown.status_code == 200


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize(("screen", "width", "height"), [("desktop", 1280, 800), ("phone", 390, 844)])
def test_the_chat_the_widget_portal_and_an_article_run_in_chromium_without_a_policy_violation(
    services: Services, screen: str, width: int, height: int
) -> None:
    from openai_compatible_server import LoopbackServer
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail(f"this test needs Chromium at {chromium} (apt-get install chromium)")
    violations: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    app = create_app(services=services, warm_model=False)
    with LoopbackServer(app) as running, sync_playwright() as p:  # type: ignore[arg-type]
        browser = p.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda message: violations.append(message.text))
            page.goto(f"{running.url}/")
            page.locator(".composer__input").wait_for()
            page.screenshot(path=str(ARTIFACTS / f"chat-under-csp-{screen}.png"), full_page=True)
            chat_width = page.locator("html").evaluate("html => html.scrollWidth")
            page.goto(f"{running.url}/kb/iptu-segunda-via")
            assert page.locator("body").evaluate("b => getComputedStyle(b).maxWidth") != "none"
            page.screenshot(path=str(ARTIFACTS / f"article-under-csp-{screen}.png"), full_page=True)
            article_width = page.locator("html").evaluate("html => html.scrollWidth")
            page.goto(running.url + article_link("kb://articles/iptu-segunda-via", [QUOTED]))
            passage = page.locator("#trecho")
            expect(passage).to_be_in_viewport()
            expect(passage.locator("mark")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / f"article-passage-{screen}.png"))
            scrolled = page.evaluate("window.scrollY")
            highlight = passage.locator("mark").evaluate("m => getComputedStyle(m).backgroundColor")
            passage_text = passage.inner_text()
            page.goto(f"{running.url}/static/widget-demo.html")
            page.click("#abrir-atendimento")
            frame = page.frame_locator("iframe")
            frame.locator(".composer__input").wait_for()
        finally:
            browser.close()

    assert [v for v in violations if "Content Security Policy" in v or "Refused to" in v] == []
    # With their styles allowed by the policy, neither page scrolls sideways, on a phone included.
    assert chat_width <= width
    assert article_width <= width
    # A citation's link opens the article scrolled to the quoted passage, highlighted by the page's own style.
    assert passage_text.startswith("Confira sempre se o beneficiário")
    assert scrolled > 0
    assert highlight == "rgb(255, 240, 160)"
