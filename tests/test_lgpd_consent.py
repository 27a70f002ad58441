"""The consent register: history, current state, wildcard opt-outs and what outbound messaging may do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lgpd_support import PHONE

from core.audit import MemoryAuditSink
from core.db import make_engine, make_session_factory
from core.lgpd.consent import ConsentRegister
from core.migrate import upgrade

REF = "citizen:42"


@pytest.fixture
def audit() -> MemoryAuditSink:
    return MemoryAuditSink()


@pytest.fixture
def register(tmp_path: Path, audit: MemoryAuditSink) -> Iterator[ConsentRegister]:
    url = f"sqlite:///{(tmp_path / 'atende.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    clock = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n) for n in range(1000))
    yield ConsentRegister(make_session_factory(engine), audit, clock=lambda: next(clock))
    engine.dispose()


def test_without_any_record_only_answering_the_citizens_own_requests_is_allowed(register: ConsentRegister) -> None:
    assert register.is_opted_in(REF, "whatsapp", "atendimento")
    assert not register.is_opted_in(REF, "whatsapp", "campanhas")
    assert not register.is_opted_in(REF, "whatsapp", "pesquisa_satisfacao")


def test_the_latest_record_decides_and_the_history_keeps_every_change(register: ConsentRegister) -> None:
    register.record(REF, "whatsapp", "campanhas", "opt_in", "web:form")
    register.record(REF, "whatsapp", "campanhas", "opt_out", "whatsapp:keyword SAIR")
    register.record(REF, "whatsapp", "campanhas", "opt_in", "staff:user:3", actor="user:3")

    assert register.is_opted_in(REF, "whatsapp", "campanhas")
    assert [(e.status, e.source) for e in register.history(REF)] == [
        ("opt_in", "web:form"),
        ("opt_out", "whatsapp:keyword SAIR"),
        ("opt_in", "staff:user:3"),
    ]
    (current,) = register.current(REF)
    assert (current.status, current.actor) == ("opt_in", "user:3")


def test_consent_is_per_channel_and_per_citizen(register: ConsentRegister) -> None:
    register.record(REF, "whatsapp", "campanhas", "opt_in", "web:form")

    assert not register.is_opted_in(REF, "email", "campanhas")
    assert not register.is_opted_in("citizen:43", "whatsapp", "campanhas")


def test_an_opt_out_of_every_purpose_covers_service_messages_until_a_specific_opt_in(
    register: ConsentRegister,
) -> None:
    register.record(REF, "whatsapp", "campanhas", "opt_in", "web:form")
    register.record(REF, "whatsapp", "*", "opt_out", "whatsapp:keyword SAIR")

    assert not register.is_opted_in(REF, "whatsapp", "atendimento")
    assert not register.is_opted_in(REF, "whatsapp", "campanhas")

    register.record(REF, "whatsapp", "atendimento", "opt_in", "whatsapp:keyword VOLTAR")
    assert register.is_opted_in(REF, "whatsapp", "atendimento")
    assert not register.is_opted_in(REF, "whatsapp", "campanhas")


def test_a_consent_given_earlier_but_recorded_later_does_not_override_a_newer_one(
    register: ConsentRegister,
) -> None:
    register.record(REF, "sms", "campanhas", "opt_out", "sms:keyword PARE")
    register.record(REF, "sms", "campanhas", "opt_in", "import:paper-form", at=datetime(2025, 6, 1, tzinfo=UTC))

    assert not register.is_opted_in(REF, "sms", "campanhas")


def test_each_change_is_audited_with_the_citizen_as_subject(register: ConsentRegister, audit: MemoryAuditSink) -> None:
    register.record(REF, "whatsapp", "campanhas", "opt_in", "web:form", actor="citizen:abc", ip="10.1.1.1")

    (event,) = audit.events
    assert (event.action, event.subject, event.actor, event.ip) == ("consent.opt_in", REF, "citizen:abc", "10.1.1.1")
    assert event.details == {"channel": "whatsapp", "purpose": "campanhas", "source": "web:form"}


def test_personal_data_typed_into_the_source_is_masked(register: ConsentRegister) -> None:
    entry = register.record(REF, "sms", "campanhas", "opt_out", f"phone call from {PHONE}")

    assert PHONE not in entry.source
    assert "[TELEFONE]" in entry.source


@pytest.mark.parametrize(
    ("channel", "purpose", "status", "source"),
    [
        ("WhatsApp", "campanhas", "opt_in", "web:form"),
        ("whatsapp", "Campanhas!", "opt_in", "web:form"),
        ("whatsapp", "campanhas", "maybe", "web:form"),
        ("whatsapp", "campanhas", "opt_in", "  "),
    ],
)
def test_malformed_records_are_refused_and_nothing_is_stored(
    register: ConsentRegister, channel: str, purpose: str, status: str, source: str
) -> None:
    with pytest.raises(ValueError, match=r"channel|purpose|status|source"):
        register.record(REF, channel, purpose, status, source)  # type: ignore[arg-type]

    assert register.history(REF) == []
