"""Data-subject rights: export and erase across every registered source, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lgpd_support import CPF, CPF_DIGITS, EMAIL, PHONE, lgpd_services, lgpd_settings
from sqlalchemy import MetaData, select

from atende.lgpd.rights import InvalidSubject, checked_subject, render_html
from atende.services import Services
from core.audit import AuditQuery
from core.data_subjects import DataSubject, DataSubjectRegistry
from core.i18n import t
from core.models import utcnow
from core.store import EventDraft, ExchangeDraft, MessageDraft, TurnRecord

REF = "citizen:42"
OTHER_REF = "citizen:77"
OTHER_EMAIL = "joao@example.org"
SECRETS = (CPF, CPF_DIGITS, EMAIL, PHONE, "99876-5432", "19998765432")


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    svc = lgpd_services(lgpd_settings(tmp_path, database_url))
    yield svc
    svc.close()


def lgpd(services: Services) -> Any:
    assert services.lgpd is not None
    return services.lgpd


def converse(services: Services, citizen_ref: str, text: str, *, event_note: str = "") -> str:
    conversation = services.store.create_conversation("web", citizen_ref=citizen_ref)
    turn = TurnRecord(
        conversation_id=conversation.id,
        channel="web",
        user_text="masked question",
        rewritten_query="masked question",
        prompt_version="test",
        model_id="scripted",
        answer="masked answer",
        decision="answered",
        latency_total_ms=10.0,
    )
    events = [EventDraft("handoff_requested", {"reason": "abstained", "note": event_note})] if event_note else []
    services.store.record_exchange(
        ExchangeDraft(turn=turn, user_message=text, reply=MessageDraft(f"Anotei: {text}", "answered"), events=events)
    )
    return conversation.id


def database_text(services: Services) -> str:
    """Every value of every row of every table, as one string."""
    metadata = MetaData()
    metadata.reflect(services.engine)
    parts = []
    with services.engine.connect() as connection:
        for table in metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in connection.execute(select(table)))
    return "\n".join(parts)


def seed(services: Services) -> tuple[str, str]:
    mine = converse(services, REF, f"Meu CPF é {CPF}, e-mail {EMAIL}, telefone {PHONE}", event_note=f"ligar em {PHONE}")
    theirs = converse(services, OTHER_REF, f"Meu e-mail é {OTHER_EMAIL}")
    lgpd(services).consent.record(REF, "whatsapp", "campanhas", "opt_in", "web:form")
    lgpd(services).consent.record(OTHER_REF, "whatsapp", "campanhas", "opt_out", "web:form")
    return mine, theirs


def test_export_gathers_the_citizens_conversations_and_consent_and_is_audited(services: Services) -> None:
    mine, _ = seed(services)

    export = lgpd(services).rights.export(DataSubject(citizen_id="42"), actor="user:1", ip="10.0.0.9")

    body = export.as_json()
    (conversation,) = body["sources"]["conversations"]["conversations"]
    assert conversation["id"] == mine
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert CPF in conversation["messages"][0]["text"]
    assert conversation["events"][0]["kind"] == "handoff_requested"
    assert [e["status"] for e in body["sources"]["consent"]["history"]] == ["opt_in"]
    assert OTHER_EMAIL not in repr(body)
    (record,) = services.audit.search(AuditQuery(action="lgpd.export"))  # type: ignore[attr-defined]
    assert (record.actor, record.subject, record.ip) == ("user:1", REF, "10.0.0.9")


def test_the_readable_export_escapes_what_the_citizen_wrote(services: Services) -> None:
    converse(services, REF, "<script>alert(1)</script> meu CPF é " + CPF)
    export = lgpd(services).rights.export(DataSubject(citizen_refs=(REF,)), actor="user:1")

    page = render_html(export, organization="Prefeitura de Santa Aurora")

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert CPF in page
    assert t("lgpd.export.title") in page


def test_erase_leaves_none_of_the_citizens_personal_data_anywhere_in_the_database(services: Services) -> None:
    seed(services)
    before = database_text(services)
    assert all(secret in before for secret in (CPF, EMAIL, PHONE))

    report = lgpd(services).rights.erase(DataSubject(citizen_id="42"), actor="user:1")

    after = database_text(services)
    for secret in SECRETS:
        assert secret not in after
    assert OTHER_EMAIL in after
    assert report.rows["conversations"] > 0
    assert report.rows["consent"] == 1


def test_erase_keeps_the_rows_dates_and_decisions_statistics_need(services: Services) -> None:
    mine, _ = seed(services)
    messages_before = services.store.list_messages(mine)
    events_before = services.store.list_events(mine)

    lgpd(services).rights.erase(DataSubject(citizen_id="42"), actor="user:1")

    messages_after = services.store.list_messages(mine)
    assert [(m.role, m.decision, m.created_at) for m in messages_after] == [
        (m.role, m.decision, m.created_at) for m in messages_before
    ]
    assert {m.text for m in messages_after} == {t("lgpd.anonymised_text")}
    assert [e.kind for e in services.store.list_events(mine)] == [e.kind for e in events_before]
    conversation = services.store.get_conversation(mine)
    assert conversation is not None
    assert conversation.citizen_ref is None
    assert conversation.updated_at == services.store.get_conversation(mine).updated_at  # type: ignore[union-attr]
    turns = list(services.store.iter_turns())
    assert [turn["decision"] for turn in turns] == ["answered", "answered"]


def test_erasing_twice_is_harmless_and_both_requests_are_audited(services: Services) -> None:
    seed(services)
    subject = DataSubject(citizen_id="42")

    lgpd(services).rights.erase(subject, actor="user:1")
    again = lgpd(services).rights.erase(subject, actor="user:1")

    assert again.total == 0
    records = services.audit.search(AuditQuery(action="lgpd.erase", subject=REF))  # type: ignore[attr-defined]
    assert len(records) == 2
    assert services.audit.verify().ok  # type: ignore[attr-defined]


def test_a_module_registers_its_own_source_and_resolver_and_erase_reaches_them(services: Services) -> None:
    seed(services)
    erased: list[DataSubject] = []

    class Citizens:
        name = "fake_registry"

        def export(self, subject: DataSubject) -> dict[str, Any]:
            return {"name": "Maria Silva"} if subject.citizen_id == "42" else {}

        def erase(self, subject: DataSubject) -> int:
            erased.append(subject)
            return 1

    class ByCpf:
        def resolve(self, subject: DataSubject) -> DataSubject:
            return DataSubject(citizen_id="42") if subject.cpf == CPF_DIGITS else subject

    registry: DataSubjectRegistry = lgpd(services).data_subjects
    registry.register(Citizens())
    registry.add_resolver(ByCpf())

    export = lgpd(services).rights.export(checked_subject(None, CPF), actor="user:1")
    report = lgpd(services).rights.erase(checked_subject(None, CPF), actor="user:1")

    assert export.sources["fake_registry"] == {"name": "Maria Silva"}
    assert export.sources["conversations"]["conversations"]
    assert erased == [DataSubject(citizen_id="42", cpf=CPF_DIGITS, citizen_refs=(REF,))]
    assert report.rows["fake_registry"] == 1
    assert report.subject_key == REF
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Citizens())


def test_a_failing_source_leaves_an_audit_record_of_the_failed_erase(services: Services) -> None:
    class Broken:
        name = "broken"

        def export(self, subject: DataSubject) -> dict[str, Any]:
            return {}

        def erase(self, subject: DataSubject) -> int:
            raise RuntimeError("disk full")

    lgpd(services).data_subjects.register(Broken())

    with pytest.raises(RuntimeError, match="disk full"):
        lgpd(services).rights.erase(DataSubject(citizen_id="42"), actor="user:1")

    (record,) = services.audit.search(AuditQuery(action="lgpd.erase_failed"))  # type: ignore[attr-defined]
    assert record.details == {"error": "RuntimeError"}


def test_a_subject_known_only_by_cpf_is_audited_under_a_keyed_hash_never_the_cpf(services: Services) -> None:
    lgpd(services).rights.export(checked_subject(None, CPF), actor="user:1")

    (record,) = services.audit.search(AuditQuery(action="lgpd.export"))  # type: ignore[attr-defined]
    assert record.subject is not None
    assert re.fullmatch(r"cpf:[0-9a-f]{32}", record.subject)
    assert CPF_DIGITS not in database_text(services)


@pytest.mark.parametrize(
    ("citizen_id", "cpf", "refs", "key"),
    [
        (None, None, (), "error.lgpd.no_subject"),
        ("  ", "", ("  ",), "error.lgpd.no_subject"),
        (None, "529.982.247-26", (), "error.lgpd.invalid_cpf"),
    ],
)
def test_a_request_without_a_citizen_or_with_a_wrong_cpf_is_refused(
    citizen_id: str | None, cpf: str | None, refs: tuple[str, ...], key: str
) -> None:
    with pytest.raises(InvalidSubject) as error:
        checked_subject(citizen_id, cpf, refs)

    assert error.value.key == key


def test_erasing_a_whatsapp_citizen_known_by_phone_leaves_the_number_in_no_table(services: Services) -> None:
    from channels.whatsapp.payloads import Sender

    assert services.whatsapp is not None
    phone = "5519998765432"
    contact = services.whatsapp.contacts.touch("1122334455667", Sender(None, phone, "Maria"), utcnow())
    services.store.add_message(str(contact.conversation_id), "user", "Olá, bom dia")
    lgpd(services).consent.record(
        contact.citizen_ref, "whatsapp", "*", "opt_out", "whatsapp:keyword SAIR", actor=contact.citizen_ref
    )
    assert phone not in contact.citizen_ref
    assert phone in database_text(services)

    report = lgpd(services).rights.erase(DataSubject(citizen_refs=(f"whatsapp:{phone}",)), actor="user:1")

    assert report.rows["whatsapp"] == 1
    assert report.rows["consent"] == 1
    assert phone[2:] not in database_text(services)
