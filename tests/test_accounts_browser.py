"""The staff sign-in and account pages in a real browser (Chromium through Playwright) against the real app
served on loopback: sign in, turn two-factor on, change the password, sign out, sign in with the code."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_compatible_server import LoopbackServer
from playwright.sync_api import sync_playwright

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services, build_services
from core.accounts.service import build_accounts
from core.accounts.testing import PASSWORD, create_user, fast_passwords, with_settings
from core.accounts.totp import code_at
from core.models import utcnow
from core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def server(test_settings: Settings) -> Iterator[tuple[str, Services]]:
    # Plain HTTP on loopback: the Secure flag itself is checked in test_accounts_login.py.
    settings = with_settings(test_settings, totp_required_roles="", session_cookie_secure=False)
    services = build_services(settings, model=ScriptedChatModel([]))
    services.warm_up(model=False)
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


def test_a_member_signs_in_turns_on_two_factor_changes_the_password_and_signs_in_again(
    server: tuple[str, Services],
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"this test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    url, services = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        try:
            page.goto(f"{url}/staff/login")
            page.fill("#username", "ana")
            page.fill("#password", "senha-errada-longa")
            page.click("button[type=submit]")
            page.wait_for_selector("#login-form .error:not([hidden])")
            wrong = page.locator("#login-form .error").inner_text()

            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/staff/account")
            page.wait_for_selector("#account:not([hidden])")
            role = page.locator('[data-field="role"]').inner_text()

            page.click("#totp-enroll")
            page.wait_for_selector('[data-field="totp-secret"]:not(:empty)')
            secret = page.locator('[data-field="totp-secret"]').inner_text()
            page.fill("#confirm-code", code_at(secret, utcnow()))
            page.click("#totp-confirm-form button[type=submit]")
            page.wait_for_selector("#totp-codes:not([hidden])")
            recovery_codes = page.locator('[data-field="recovery-codes"] li').all_inner_texts()

            page.fill("#current_password", PASSWORD)
            page.fill("#new_password", "nova-senha-do-navegador")
            page.fill("#repeat_password", "nova-senha-do-navegador")
            page.click("#password-form button[type=submit]")
            page.wait_for_selector("#password-form .ok:not([hidden])")

            page.click("#logout")
            page.wait_for_url(f"{url}/staff/login?erro=signed_out")
            signed_out = page.locator(".notice").inner_text()

            page.fill("#username", "ana")
            page.fill("#password", "nova-senha-do-navegador")
            page.fill("#totp_code", recovery_codes[0])
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/staff/account")
            page.wait_for_selector("#account:not([hidden])")
            two_factor_state = page.locator('[data-field="totp-state"]').inner_text()
        finally:
            browser.close()

    assert wrong.startswith("Usuário, senha ou código de verificação inválidos")
    assert role == "Atendente"
    assert len(recovery_codes) == 10
    assert signed_out == "Você saiu da sua conta."
    assert two_factor_state.startswith("Ativa")
    assert services.accounts.directory.require("ana").totp_enabled
