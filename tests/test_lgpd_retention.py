"""The retention job anonymises idle conversations only, once, and leaves an audit record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lgpd_support import CPF, lgpd_services, lgpd_settings
from sqlalchemy import update

from atende.lgpd.retention import RetentionJob
from atende.services import Services
from core.audit import AuditLog, AuditQuery, MemoryAuditSink
from core.db import make_session_factory
from core.i18n import t
from core.models import Conversation

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    svc = lgpd_services(lgpd_settings(tmp_path, database_url))
    yield svc
    svc.close()


def conversation_idle_since(services: Services, when: datetime) -> str:
    conversation = services.store.create_conversation("web", citizen_ref=f"citizen:{when.day}")
    services.store.add_message(conversation.id, "user", f"Meu CPF é {CPF}")
    with services.engine.begin() as connection:
        connection.execute(update(Conversation).where(Conversation.id == conversation.id).values(updated_at=when))
    return conversation.id


def job(services: Services, audit: MemoryAuditSink | None = None) -> RetentionJob:
    return RetentionJob(make_session_factory(services.engine), audit or services.audit, clock=lambda: NOW)


def test_only_conversations_idle_longer_than_the_period_are_anonymised(services: Services) -> None:
    old = conversation_idle_since(services, NOW - timedelta(days=31))
    recent = conversation_idle_since(services, NOW - timedelta(days=29))

    report = job(services).run(30)

    assert report.conversations == 1
    assert report.cutoff == NOW - timedelta(days=30)
    assert services.store.list_messages(old)[0].text == t("lgpd.anonymised_text")
    assert CPF in services.store.list_messages(recent)[0].text
    old_view = services.store.get_conversation(old)
    assert old_view is not None
    assert old_view.citizen_ref is None
    assert old_view.updated_at == NOW - timedelta(days=31)


def test_a_second_run_finds_nothing_left_to_do(services: Services) -> None:
    conversation_idle_since(services, NOW - timedelta(days=400))

    first = job(services).run(365)
    second = job(services).run(365)

    assert (first.conversations, second.conversations) == (1, 0)


def test_many_old_conversations_are_handled_across_batches(services: Services) -> None:
    ids = [conversation_idle_since(services, NOW - timedelta(days=100 + n)) for n in range(5)]

    report = job(services).run(90, batch_size=2)

    assert report.conversations == 5
    assert all(services.store.list_messages(cid)[0].text == t("lgpd.anonymised_text") for cid in ids)


def test_each_run_is_audited_with_its_counts(services: Services) -> None:
    conversation_idle_since(services, NOW - timedelta(days=40))
    assert isinstance(services.audit, AuditLog)

    job(services).run(30, actor="cli:retention")

    (record,) = services.audit.search(AuditQuery(action="lgpd.retention"))
    assert record.actor == "cli:retention"
    assert record.details["conversations"] == 1
    assert record.details["days"] == 30


def test_a_period_under_one_day_is_refused(services: Services) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        job(services, MemoryAuditSink()).run(0)
