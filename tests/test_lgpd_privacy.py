"""Personal data end to end: admin-configured kinds, masking of structured data, and a whole conversation
after which no log line, turn-log row or export holds the citizen's CPF, e-mail or phone in clear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import first_sentence_of
from lgpd_support import CPF, CPF_DIGITS, EMAIL, PHONE, lgpd_services, lgpd_settings

from assistant.llm import ChatMessage
from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.lgpd.patterns import PiiPatternStore
from atende.logs_export import export_turns
from core.audit import AuditEvent, AuditLog, MemoryAuditSink, write_csv, write_xlsx
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from core.privacy import Pseudonymizer, configure_masker, find_pii, install_log_masking, mask, mask_data
from rag.types import Document

SECRETS = (CPF, CPF_DIGITS, EMAIL, PHONE, "99876-5432", "19998765432")


@pytest.fixture(autouse=True)
def _builtin_kinds_afterwards() -> Iterator[None]:
    # The configured masker is process-wide; no test may leave extra kinds to the next one.
    yield
    configure_masker(None)


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} found in {where}"


# Configured kinds


def test_configured_kinds_are_masked_by_every_module_level_function() -> None:
    configure_masker({"MATRICULA": r"MAT-\d{6}"})

    assert mask("servidor MAT-123456, CPF " + CPF) == "servidor [MATRICULA], CPF [CPF]"
    assert [m.kind for m in find_pii("MAT-000001")] == ["MATRICULA"]
    pseudo = Pseudonymizer()
    assert pseudo.restore(pseudo.pseudonymize("MAT-123456")) == "MAT-123456"
    assert pseudo.pseudonymize("MAT-123456") == "<MATRICULA_1>"


def test_going_back_to_the_built_in_kinds_stops_masking_the_extra_ones() -> None:
    configure_masker({"MATRICULA": r"MAT-\d{6}"})
    configure_masker(None)

    assert mask("MAT-123456") == "MAT-123456"


def test_an_unusable_pattern_is_refused_and_the_previous_configuration_stays() -> None:
    configure_masker({"MATRICULA": r"MAT-\d{6}"})

    with pytest.raises(ValueError, match="does not compile"):
        configure_masker({"PLACA": r"([A-Z"})

    assert mask("MAT-123456") == "[MATRICULA]"


def test_log_masking_installed_earlier_picks_up_kinds_configured_later(caplog: pytest.LogCaptureFixture) -> None:
    install_log_masking()
    configure_masker({"PROCESSO": r"PROC-\d{4}"})

    logging.getLogger("atende.tests.lgpd").warning("processo %s do CPF %s", "PROC-1234", CPF)

    assert caplog.records[-1].getMessage() == "processo [PROCESSO] do CPF [CPF]"


def test_mask_data_masks_every_string_of_a_nested_report_and_keeps_keys_and_numbers() -> None:
    report = {
        "rows": [{"question": f"meu CPF é {CPF}", "score": 0.5, "ok": True}, (EMAIL, 3)],
        "email_field": None,
    }

    masked = mask_data(report)

    assert masked == {
        "rows": [{"question": "meu CPF é [CPF]", "score": 0.5, "ok": True}, ["[EMAIL]", 3]],
        "email_field": None,
    }
    assert report["rows"][0]["question"] == f"meu CPF é {CPF}"  # type: ignore[index]


# Patterns managed by administrators


@pytest.fixture
def patterns(tmp_path: Path) -> Iterator[tuple[PiiPatternStore, MemoryAuditSink]]:
    url = f"sqlite:///{(tmp_path / 'atende.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    audit = MemoryAuditSink()
    yield PiiPatternStore(make_session_factory(engine), audit, {"CNH": r"CNH-\d{11}"}), audit
    engine.dispose()


def test_an_administrators_pattern_is_stored_applied_listed_and_audited(
    patterns: tuple[PiiPatternStore, MemoryAuditSink],
) -> None:
    store, audit = patterns

    store.put("MATRICULA", r"MAT-\d{6}", actor="user:1")

    assert mask("MAT-123456 e CNH-12345678901") == "[MATRICULA] e [CNH]"
    assert [(v.kind, v.origin) for v in store.list()] == [("CNH", "settings"), ("MATRICULA", "database")]
    assert audit.actions() == ["pii_pattern.put"]

    assert store.remove("MATRICULA", actor="user:1")
    assert mask("MAT-123456") == "MAT-123456"
    assert not store.remove("MATRICULA", actor="user:1")
    assert audit.actions() == ["pii_pattern.put", "pii_pattern.remove"]


@pytest.mark.parametrize(
    ("kind", "pattern"), [("CPF", r"\d+"), ("CNH", r"x"), ("BAD", r"a*"), ("FLAGS", r"(?i)mat"), ("low", "a")]
)
def test_a_pattern_that_is_built_in_set_in_settings_or_unusable_is_refused_and_not_stored(
    patterns: tuple[PiiPatternStore, MemoryAuditSink], kind: str, pattern: str
) -> None:
    store, audit = patterns

    with pytest.raises(ValueError):  # noqa: PT011 - each case fails for its own reason
        store.put(kind, pattern, actor="user:1")

    assert [v.origin for v in store.list()] == ["settings"]
    assert audit.events == []


def test_patterns_from_settings_and_database_are_loaded_at_warm_up(tmp_path: Path) -> None:
    settings = lgpd_settings(tmp_path, pii_extra_patterns={"CNH": r"CNH-\d{11}"})
    services = lgpd_services(settings)
    try:
        assert services.lgpd is not None
        services.lgpd.pii_patterns.put("MATRICULA", r"MAT-\d{6}", actor="user:1")
        configure_masker(None)
        services.warmed.discard("db")

        services.warm_up(model=False)

        assert mask("CNH-12345678901 MAT-123456") == "[CNH] [MATRICULA]"
    finally:
        services.close()


# A whole conversation


@pytest.fixture
def external_model_app(
    tmp_path: Path, knowledge_documents: list[Document]
) -> Iterator[tuple[TestClient, ScriptedChatModel, AuditLog]]:
    model = ScriptedChatModel([])
    services = lgpd_services(lgpd_settings(tmp_path, llm_is_local=False), model)
    services.index.sync(knowledge_documents)
    assert isinstance(services.audit, AuditLog)
    with TestClient(create_app(services=services), base_url="https://testserver") as client:
        yield client, model, services.audit
    services.close()


def test_after_a_conversation_with_a_cpf_an_email_and_a_phone_no_log_turn_or_export_holds_them(
    external_model_app: tuple[TestClient, ScriptedChatModel, AuditLog], caplog: pytest.LogCaptureFixture
) -> None:
    client, model, audit = external_model_app
    app_services = client.app.state.services  # type: ignore[attr-defined]

    def external_model(messages: Sequence[ChatMessage]) -> str:
        # The model is external: whatever step of the pipeline calls it, it must only ever see placeholders.
        assert_clean(json.dumps(messages, ensure_ascii=False), "a prompt sent to the external model")
        if "Documentos:" in messages[-1]["content"]:
            return first_sentence_of(1)(messages)
        return '{"tool": "none"}'  # any other step (e.g. choosing a tool) is told there is nothing to do

    model.add(external_model, external_model)  # one answer to each of the two messages
    caplog.set_level(logging.DEBUG)
    cid = client.post("/api/conversations").json()["id"]
    question = f"Meu CPF é {CPF}, e-mail {EMAIL}, telefone {PHONE}. Como emito a segunda via do boleto do IPTU?"

    first = client.post(f"/api/conversations/{cid}/messages", json={"text": question})
    second = client.post(f"/api/conversations/{cid}/messages/stream", json={"text": "E pelo " + PHONE + "?"})
    logging.getLogger("atende.tests.lgpd").info("citizen wrote: %s", question)
    audit.record(AuditEvent("user:1", "conversation.read", "conversation", cid, details={"excerpt": question}))

    assert first.status_code == 200
    assert second.status_code == 200
    # The citizen's own conversation keeps what they wrote; everything else must not.
    assert CPF in client.get(f"/api/conversations/{cid}").json()["messages"][0]["text"]
    for record in caplog.records:
        assert_clean(record.getMessage(), f"log record {record.name}")
    turns = list(app_services.store.iter_turns())
    assert len(turns) == 2
    assert_clean(json.dumps(turns, ensure_ascii=False), "the turn log")
    for fmt in ("jsonl", "csv"):
        out = io.StringIO()
        export_turns(app_services.store, out, fmt=fmt)
        assert_clean(out.getvalue(), f"the {fmt} turn-log export")
    csv_out, xlsx_out = io.StringIO(), io.BytesIO()
    write_csv(audit.iter_records(), csv_out)
    write_xlsx(audit.iter_records(), xlsx_out)
    assert_clean(csv_out.getvalue(), "the audit CSV export")
    assert_clean(_xlsx_text(xlsx_out.getvalue()), "the audit XLSX export")
    report = mask_data({"rows": [{"question": question, "answer": first.json()["answer"], "turns": turns}]})
    assert_clean(json.dumps(report, ensure_ascii=False), "an evaluation report")
    assert sum("Documentos:" in call[-1]["content"] for call in model.calls) == 2


def _xlsx_text(data: bytes) -> str:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    return "\n".join(repr(row) for row in sheet.iter_rows(values_only=True))


def test_a_turn_logged_before_a_pattern_was_added_is_masked_when_exported(tmp_path: Path) -> None:
    from core.store import ExchangeDraft, MessageDraft, TurnRecord

    services = lgpd_services(lgpd_settings(tmp_path))
    try:
        conversation = services.store.create_conversation("web")
        services.store.record_exchange(
            ExchangeDraft(
                turn=TurnRecord(
                    conversation_id=conversation.id,
                    channel="web",
                    user_text="minha matrícula é MAT-123456",
                    rewritten_query="matrícula MAT-123456",
                    prompt_version="test",
                    model_id="scripted",
                    answer="ok",
                    decision="answered",
                    latency_total_ms=1.0,
                ),
                user_message="minha matrícula é MAT-123456",
                reply=MessageDraft("ok", decision="answered"),
            )
        )
        configure_masker({"MATRICULA": r"MAT-\d{6}"})
        out = io.StringIO()

        export_turns(services.store, out)

        (row,) = [json.loads(line) for line in out.getvalue().splitlines()]
        assert row["user_text"] == "minha matrícula é [MATRICULA]"
        assert row["conversation_id"] == conversation.id
    finally:
        services.close()
