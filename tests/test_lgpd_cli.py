"""`atende audit …` and `atende lgpd …` against a real (SQLite) database."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lgpd_support import CPF, CPF_DIGITS, EMAIL
from openpyxl import load_workbook
from sqlalchemy import Column, Integer, MetaData, Table, Text, insert, select, text, update
from typer.testing import CliRunner

from assistant.testing import ScriptedChatModel
from atende import cli
from atende.services import Services, build_services
from core.audit import AuditLog, AuditQuery
from core.i18n import t
from core.keys import production_problems
from core.lgpd.crypto import EncryptedColumn, FieldCipher, generate_key
from core.models import Conversation
from core.settings import Settings

REF = "citizen:42"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key in list(os.environ):
        if key.startswith("ATENDE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # away from any developer's .env
    values = {
        "ATENDE_ENVIRONMENT": "test",
        "ATENDE_DATA_DIR": str(tmp_path / "var"),
        "ATENDE_VECTOR_STORE": "memory",
        "ATENDE_EMBEDDING_BACKEND": "hashing",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cli, "_build_services", lambda settings: build_services(settings, model=ScriptedChatModel([])))
    return values


@pytest.fixture
def services(env: dict[str, str]) -> Iterator[Services]:
    """The same database the commands use, seeded with one citizen's conversation."""
    svc = build_services(Settings(), model=ScriptedChatModel([]))
    svc.warm_up(model=False)
    conversation = svc.store.create_conversation("web", citizen_ref=REF)
    svc.store.add_message(conversation.id, "user", f"Meu CPF é {CPF} e meu e-mail {EMAIL}")
    yield svc
    svc.close()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(cli.app, list(args), input=stdin)
    assert result.exit_code == code, result.output
    return result.output if code else result.stdout


def audit_of(services: Services) -> AuditLog:
    assert isinstance(services.audit, AuditLog)
    return services.audit


def test_audit_verify_passes_on_an_intact_chain_and_fails_naming_the_edited_record(
    runner: CliRunner, services: Services
) -> None:
    invoke(runner, "lgpd", "export", "--ref", REF)
    invoke(runner, "lgpd", "export", "--ref", REF)
    assert "intact: 2 records" in invoke(runner, "audit", "verify")

    with services.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_log_no_update"))
        connection.execute(text("UPDATE audit_log SET actor = 'cli:someone-else' WHERE sequence = 1"))

    assert "BROKEN at record 1" in invoke(runner, "audit", "verify", code=1)


def test_audit_export_writes_csv_or_xlsx_and_is_itself_audited(
    runner: CliRunner, services: Services, tmp_path: Path
) -> None:
    invoke(runner, "lgpd", "export", "--ref", REF)

    out = invoke(runner, "audit", "export", "--action", "lgpd.export")
    invoke(runner, "audit", "export", "--format", "xlsx", "--out", str(tmp_path / "a.xlsx"))

    assert out.splitlines()[0].startswith("sequence,occurred_at_local,actor,action")
    assert ",lgpd.export," in out
    sheet = load_workbook(tmp_path / "a.xlsx").active
    assert sheet is not None
    assert [row[3] for row in sheet.iter_rows(min_row=2, values_only=True)] == [
        "lgpd.export",
        "audit.export",  # the CSV export before it
        "audit.export",  # this very export, recorded before it ran
    ]
    assert len(audit_of(services).search(AuditQuery(action="audit.export"))) == 2
    invoke(runner, "audit", "export", "--format", "xlsx", code=2)


def test_lgpd_export_prints_json_or_writes_a_readable_page(
    runner: CliRunner, services: Services, tmp_path: Path
) -> None:
    body = json.loads(invoke(runner, "lgpd", "export", "--citizen-id", "42"))
    invoke(runner, "lgpd", "export", "--ref", REF, "--format", "html", "--out", str(tmp_path / "dados.html"))

    (conversation,) = body["sources"]["conversations"]["conversations"]
    assert CPF in conversation["messages"][0]["text"]
    assert t("lgpd.export.title") in (tmp_path / "dados.html").read_text(encoding="utf-8")
    records = audit_of(services).search(AuditQuery(action="lgpd.export", subject=REF))
    assert len(records) == 2
    assert all(r.actor.startswith("cli:") for r in records)


def test_lgpd_erase_asks_for_confirmation_and_then_anonymises(runner: CliRunner, services: Services) -> None:
    with services.engine.connect() as connection:
        conversation = connection.execute(select(Conversation.id)).scalar_one()

    invoke(runner, "lgpd", "erase", "--citizen-id", "42", stdin="n\n", code=1)
    assert CPF in services.store.list_messages(conversation)[0].text

    out = invoke(runner, "lgpd", "erase", "--citizen-id", "42", "--yes")
    assert out.startswith(f"{REF}: conversations ")
    assert services.store.list_messages(conversation)[0].text == t("lgpd.anonymised_text")


def test_a_cpf_can_come_from_stdin_and_a_wrong_one_is_refused_in_pt_br(runner: CliRunner, services: Services) -> None:
    invoke(runner, "lgpd", "export", "--cpf", "-", stdin=CPF_DIGITS + "\n")
    out = invoke(runner, "lgpd", "export", "--cpf", "123.456.789-00", code=2)

    assert "CPF informado não é válido" in out
    (record,) = audit_of(services).search(AuditQuery(action="lgpd.export"))
    assert CPF_DIGITS not in (record.subject or "")


def test_lgpd_retention_uses_the_configured_days_unless_given(
    runner: CliRunner, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    with services.engine.begin() as connection:
        connection.execute(update(Conversation).values(updated_at=datetime.now(UTC) - timedelta(days=45)))
    monkeypatch.setenv("ATENDE_RETENTION_DAYS", "60")

    assert "0 conversations anonymised" in invoke(runner, "lgpd", "retention")
    assert "1 conversations anonymised" in invoke(runner, "lgpd", "retention", "--days", "30")


def test_lgpd_rotate_key_re_encrypts_registered_columns_with_the_new_primary_key(
    runner: CliRunner, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = generate_key(), generate_key()
    table = Table("secrets", MetaData(), Column("id", Integer, primary_key=True), Column("value", Text))
    table.create(services.engine)
    with services.engine.begin() as connection:
        connection.execute(insert(table), [{"id": 1, "value": FieldCipher([old], b"k" * 32).encrypt(EMAIL)}])
    monkeypatch.setenv("ATENDE_ENCRYPTION_KEYS", f"{new},{old}")

    def with_column(settings: Settings) -> Services:
        built = build_services(settings, model=ScriptedChatModel([]))
        assert built.lgpd is not None
        built.lgpd.encrypted_columns.append(EncryptedColumn("secrets", "value"))
        return built

    monkeypatch.setattr(cli, "_build_services", with_column)

    out = invoke(runner, "lgpd", "rotate-key")

    assert "secrets.value: 1 re-encrypted, 0 already on the primary key" in out
    with services.engine.connect() as connection:
        token = connection.execute(select(table.c.value)).scalar_one()
    assert FieldCipher([new], b"k" * 32).decrypt(token) == EMAIL
    assert audit_of(services).search(AuditQuery(action="lgpd.rotate_key"))


def test_generate_key_prints_a_usable_key(runner: CliRunner) -> None:
    key = invoke(runner, "lgpd", "generate-key").strip()

    cipher = FieldCipher([key], b"k" * 32)
    assert cipher.decrypt(cipher.encrypt("x")) == "x"


def test_generate_key_with_env_prints_every_key_production_accepts(runner: CliRunner) -> None:
    out = invoke(runner, "lgpd", "generate-key", "--env")

    values = dict(line.split("=", 1) for line in out.strip().splitlines())
    assert set(values) == {"ATENDE_SECRET_KEY", "ATENDE_ENCRYPTION_KEYS", "ATENDE_BLIND_INDEX_KEY"}
    assert production_problems(values) == []


def test_an_unconfigured_production_command_names_what_is_missing_without_a_traceback(
    runner: CliRunner, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATENDE_ENVIRONMENT")

    result = runner.invoke(cli.app, ["lgpd", "retention"])

    assert result.exit_code == 2
    assert "ATENDE_SECRET_KEY is not set" in result.output
    assert "atende lgpd generate-key" in result.output
    assert "Traceback" not in result.output
