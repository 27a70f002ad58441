"""`atende users|teams|tokens …` as an operator runs them, configured only through ATENDE_* variables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atende import cli
from atende.services import build_services
from core.accounts.service import Accounts
from core.accounts.types import AccountError, Origin
from core.settings import Settings

ORIGIN = Origin(ip="192.0.2.10")


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("ATENDE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "ATENDE_ENVIRONMENT": "test",
        "ATENDE_DATA_DIR": str(tmp_path / "var"),
        "ATENDE_VECTOR_STORE": "memory",
        "ATENDE_EMBEDDING_BACKEND": "hashing",
        "ATENDE_TOTP_REQUIRED_ROLES": "",
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def accounts() -> Iterator[Accounts]:
    """The same database the commands wrote, read back as the app would."""
    services = build_services(Settings())
    try:
        yield services.accounts
    finally:
        services.close()


def run(runner: CliRunner, *args: str, stdin: str | None = None) -> str:
    result = runner.invoke(cli.app, list(args), input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_users_create_prints_a_temporary_password_that_must_be_changed(runner: CliRunner) -> None:
    run(runner, "teams", "create", "Atendimento")
    out = run(runner, "users", "create", "--username", "ana", "--role", "agent", "--team", "Atendimento")

    temporary = out.strip().splitlines()[-1].rsplit(": ", 1)[1]
    services = build_services(Settings())
    try:
        signed = services.accounts.authn.login("ana", temporary, None, origin=ORIGIN)
        restrictions = services.accounts.authn.restrictions(signed.user, signed.session.info)
        team = services.accounts.directory.team(signed.user.team_id or 0)
    finally:
        services.close()
    assert out.startswith("created user ana (id 1, role agent)")
    assert restrictions == {"password_change_required"}
    assert team is not None
    assert team.name == "Atendimento"


def test_users_create_reads_the_password_from_stdin(runner: CliRunner) -> None:
    out = run(
        runner,
        "users",
        "create",
        "--username",
        "bia",
        "--role",
        "admin",
        "--password-stdin",
        stdin="frase-secreta-longa\n",
    )

    services = build_services(Settings())
    try:
        signed = services.accounts.authn.login("bia", "frase-secreta-longa", None, origin=ORIGIN)
    finally:
        services.close()
    assert "temporary password" not in out
    assert signed.user.role == "admin"


def test_users_create_refuses_an_unknown_role_and_a_weak_password(runner: CliRunner) -> None:
    role = runner.invoke(cli.app, ["users", "create", "--username", "caio", "--role", "chefe"])
    weak = runner.invoke(
        cli.app, ["users", "create", "--username", "caio", "--role", "agent", "--password-stdin"], input="curta\n"
    )

    assert role.exit_code == 2
    assert "unknown role 'chefe'" in role.output
    assert weak.exit_code == 1
    assert "A senha precisa ter pelo menos 12 caracteres." in weak.output


def test_unlock_lifts_a_lock_out_and_disable_shuts_the_account(runner: CliRunner) -> None:
    run(
        runner,
        "users",
        "create",
        "--username",
        "davi",
        "--role",
        "agent",
        "--password-stdin",
        stdin="frase-secreta-longa\n",
    )
    services = build_services(Settings())
    try:
        for _ in range(5):
            with pytest.raises(AccountError):
                services.accounts.authn.login("davi", "senha-errada-longa", None, origin=ORIGIN)
        locked = services.accounts.directory.require("davi").locked(services.accounts.clock())
        run(runner, "users", "unlock", "davi")
        after_unlock = services.accounts.authn.login("davi", "frase-secreta-longa", None, origin=ORIGIN)
        run(runner, "users", "disable", "davi")
        with pytest.raises(AccountError) as disabled:
            services.accounts.authn.login("davi", "frase-secreta-longa", None, origin=ORIGIN)
        session_after_disable = services.accounts.session(after_unlock.session.cookie)
    finally:
        services.close()

    assert locked
    assert disabled.value.code == "invalid_credentials"
    assert session_after_disable is None


def test_reset_2fa_turns_two_factor_off(runner: CliRunner) -> None:
    from core.accounts.totp import code_at

    run(
        runner,
        "users",
        "create",
        "--username",
        "eva",
        "--role",
        "agent",
        "--password-stdin",
        stdin="frase-secreta-longa\n",
    )
    services = build_services(Settings())
    try:
        user = services.accounts.directory.require("eva")
        secret, _ = services.accounts.authn.begin_totp(user.id, origin=ORIGIN)
        session = services.accounts.sessions.create(user.id, auth_method="password", mfa_verified=False)
        services.accounts.authn.confirm_totp(
            user.id, code_at(secret, services.accounts.clock()), origin=ORIGIN, session=session.info
        )
        enabled = services.accounts.directory.require("eva").totp_enabled
        run(runner, "users", "reset-2fa", "eva")
        after = services.accounts.directory.require("eva").totp_enabled
    finally:
        services.close()

    assert (enabled, after) == (True, False)


def test_an_unknown_username_is_reported_in_portuguese(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["users", "unlock", "ninguem"])

    assert result.exit_code == 1
    assert "Usuário não encontrado." in result.output


def test_tokens_create_prints_the_token_once_and_revoke_stops_it(runner: CliRunner) -> None:
    out = run(
        runner, "tokens", "create", "--integration", "ouvidoria", "--scope", "protocols:read", "--scope", "kb:read"
    )
    token = out.strip().splitlines()[-1]
    services = build_services(Settings())
    try:
        before = services.accounts.tokens.verify(token)
        listed = run(runner, "tokens", "list")
        run(runner, "tokens", "revoke", "1")
        after = services.accounts.tokens.verify(token)
    finally:
        services.close()

    assert before is not None
    assert before.scopes == {"protocols:read", "kb:read"}
    assert token not in listed
    assert token[:12] in listed
    assert after is None


def test_tokens_approve_lets_an_integrators_pending_data_token_work(runner: CliRunner, accounts: Accounts) -> None:
    run(runner, "tokens", "list")  # migrates the database
    pending = accounts.tokens.issue(
        name="x", scopes=["payments:read"], created_by="user:9", integration="divida", issuer_is_admin=False
    )

    listed = run(runner, "tokens", "list")
    out = run(runner, "tokens", "approve", str(pending.info.id))

    assert "pending approval" in listed
    assert f"approved token {pending.info.id}" in out
    assert accounts.tokens.verify(pending.token) is not None


def test_tokens_create_expires_by_default_and_refuses_more_than_the_maximum(runner: CliRunner) -> None:
    out = run(runner, "tokens", "create", "--integration", "portal", "--scope", "kb:read")
    too_long = runner.invoke(
        cli.app, ["tokens", "create", "--integration", "p", "--scope", "kb:read", "--expires-days", "365"]
    )

    assert "expires " in out.splitlines()[0]
    assert "expires ?" not in out
    assert too_long.exit_code != 0
    assert "90" in too_long.output


def test_tokens_create_refuses_an_unknown_scope(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["tokens", "create", "--integration", "x", "--scope", "tudo"])

    assert result.exit_code == 2
    assert "unknown scopes ['tudo']" in result.output


def test_teams_form_a_hierarchy(runner: CliRunner, accounts: Accounts) -> None:
    run(runner, "teams", "create", "Saúde")
    run(runner, "teams", "create", "Regulação", "--parent", "Saúde")
    run(runner, "users", "create", "--username", "sup", "--role", "supervisor", "--team", "Saúde")
    run(runner, "users", "create", "--username", "agente", "--role", "agent", "--team", "Regulação")

    supervisor = accounts.directory.require("sup")

    assert {t.name for t in accounts.directory.teams(only=supervisor.team_ids)} == {"Saúde", "Regulação"}
    assert "Regulação\tparent=1" in run(runner, "teams", "list")


def test_handoff_agent_sets_the_routing_profile_the_console_reads(runner: CliRunner) -> None:
    run(runner, "users", "create", "--username", "ana", "--role", "agent")

    out = run(
        runner,
        "handoff",
        "agent",
        "ana",
        "--teams",
        "atendimento, tributos",
        "--capacity",
        "5",
        "--languages",
        "pt-BR,es",
    )
    unknown = runner.invoke(cli.app, ["handoff", "agent", "ninguem"])

    services = build_services(Settings())
    try:
        services.warm_up(model=False)
        user = services.accounts.directory.require("ana")
        profile = services.handoff.profile(user.subject)  # type: ignore[union-attr]
    finally:
        services.close()
    assert "capacity 5" in out
    assert (profile.teams, profile.capacity, profile.languages) == (("atendimento", "tributos"), 5, ("pt-BR", "es"))
    assert unknown.exit_code == 1
    assert "no such user: ninguem" in unknown.output


def test_handoff_sweep_runs_once_and_expires_a_wait_past_the_timeout(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build_services(Settings())
    try:
        services.warm_up(model=False)
        cid = services.store.create_conversation("web").id
        services.handoff.request(cid, reason="citizen_request", source="citizen_request")  # type: ignore[union-attr]
    finally:
        services.close()
    monkeypatch.setenv("ATENDE_HANDOFF_WAIT_TIMEOUT_S", "0.001")

    out = run(runner, "handoff", "sweep")

    assert out.strip() == "waits expired: 1, citizens warned: 0, closed idle: 0, requeued: 0, overflowed: 0, routed: 0"


def test_serve_leaves_x_forwarded_for_to_the_apps_trusted_proxies(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))

    run(runner, "serve", "--port", "8123")

    assert seen["port"] == 8123
    assert seen["proxy_headers"] is False
