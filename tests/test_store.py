"""Conformance suite for the persistence layer, run against SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from backing_services import postgres_schema
from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from atende.logs_export import export_turns
from atende.schema import metadata
from core.db import make_engine, make_session_factory, normalize_url
from core.migrate import alembic_config, current_revision, downgrade, upgrade
from core.models import Message, Turn
from core.store import (
    ConversationNotFound,
    ConversationStore,
    EventDraft,
    ExchangeDraft,
    MessageDraft,
    TurnRecord,
)

# Every package's tables, as core.models gathers them; the migrations must build exactly these.
APP_TABLES = set(metadata.tables)
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        # A directory that does not exist yet: the engine has to create it.
        yield f"sqlite:///{(tmp_path / 'data' / 'atende.db').as_posix()}"
    else:
        # A non-UTC session time zone proves timestamps are normalised, not just passed through.
        with postgres_schema(options="-ctimezone=America/Sao_Paulo") as url:
            yield url


@pytest.fixture
def migrated_url(database_url: str) -> str:
    upgrade(database_url)
    return database_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> ConversationStore:
    return ConversationStore(make_session_factory(engine))


def make_turn(conversation_id: str, **changes: Any) -> TurnRecord:
    turn = TurnRecord(
        conversation_id=conversation_id,
        channel="web",
        user_text="Como emito a segunda via do IPTU? Meu CPF é [CPF]",
        rewritten_query="segunda via IPTU",
        retrieved=[{"chunk_id": "iptu#1", "doc_id": "iptu", "score": 0.82}],
        prompt_version="answer-v1",
        model_id="qwen2.5-1.5b",
        answer="Acesse o portal da prefeitura e escolha 'Segunda via'.",
        citations=[{"doc_id": "iptu", "title": "IPTU", "section": "Segunda via", "url": "https://x/iptu"}],
        decision="answered",
        latency_retrieve_ms=12.5,
        latency_first_token_ms=140.0,
        latency_total_ms=980.25,
        prompt_tokens=512,
        completion_tokens=64,
    )
    return replace(turn, **changes)


def log_turn(store: ConversationStore, turn: TurnRecord) -> int:
    """Record a turn as the app does, with the exchange it belongs to; return the turn's id."""
    return store.record_exchange(ExchangeDraft(turn=turn, user_message="oi", reply=MessageDraft("olá"))).turn_id


def schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


# Migrations


def test_upgrade_creates_exactly_the_orm_schema(migrated_url: str, engine: Engine) -> None:
    assert table_names(engine) == APP_TABLES | {"alembic_version"}
    assert schema_differences(engine) == []
    assert current_revision(migrated_url) == HEAD


def test_downgrade_to_base_and_upgrade_again_restores_the_schema(migrated_url: str, engine: Engine) -> None:
    downgrade(migrated_url)
    assert table_names(engine) & APP_TABLES == set()
    assert current_revision(migrated_url) is None

    upgrade(migrated_url)
    assert table_names(engine) >= APP_TABLES
    assert schema_differences(engine) == []
    assert current_revision(migrated_url) == HEAD


def test_upgrade_twice_is_a_no_op(migrated_url: str, engine: Engine) -> None:
    upgrade(migrated_url)
    assert current_revision(migrated_url) == HEAD
    assert schema_differences(engine) == []


@pytest.mark.integration
def test_processes_migrating_one_new_postgres_schema_at_once_all_succeed(postgres_url: str) -> None:
    # Two app processes starting together on an empty schema used to crash one on a duplicate alembic_version.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    def migrate(url: str, barrier: threading.Barrier) -> str | None:
        barrier.wait()
        upgrade(url)
        return current_revision(url)

    barrier = threading.Barrier(3)
    with ThreadPoolExecutor(3) as pool:
        revisions = list(pool.map(migrate, [postgres_url] * 3, [barrier] * 3))

    assert revisions == [HEAD] * 3


# Engine


def test_sqlite_engine_creates_the_directory_and_enables_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "atende.db"
    url = f"sqlite:///{path.as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        with Session(engine) as session:
            session.add(Message(conversation_id="missing", role="user", text="oi"))
            with pytest.raises(IntegrityError):
                session.flush()
    finally:
        engine.dispose()
    assert path.is_file()


@pytest.mark.parametrize(
    "url",
    ["postgresql://u@db/atende", "postgres://u@db/atende", "postgresql+psycopg://u@db/atende"],
)
def test_postgres_urls_always_use_the_psycopg_driver(url: str) -> None:
    assert normalize_url(url).drivername == "postgresql+psycopg"


# Conversations


def test_new_conversation_starts_with_the_bot_in_portuguese(store: ConversationStore) -> None:
    created = store.create_conversation("web")

    fetched = store.get_conversation(created.id)

    assert fetched == created
    assert fetched.state == "bot"
    assert fetched.language == "pt-BR"
    assert fetched.channel == "web"
    assert fetched.citizen_ref is None
    assert len(fetched.id) == 32
    assert uuid.UUID(hex=fetched.id).version == 4


def test_conversation_keeps_the_channel_language_and_citizen_it_was_created_with(store: ConversationStore) -> None:
    conversation = store.create_conversation("whatsapp", language="en", citizen_ref="protocolo-123")

    fetched = store.get_conversation(conversation.id)

    assert fetched == conversation
    assert (fetched.channel, fetched.language, fetched.citizen_ref) == ("whatsapp", "en", "protocolo-123")


def test_unknown_conversation_id_reads_as_none(store: ConversationStore) -> None:
    assert store.get_conversation(uuid.uuid4().hex) is None
    assert store.list_messages(uuid.uuid4().hex) == []
    assert store.list_events(uuid.uuid4().hex) == []


WRITES_TO_A_CONVERSATION: dict[str, Callable[[ConversationStore, str], object]] = {
    "add_message": lambda store, cid: store.add_message(cid, "user", "oi"),
    "add_event": lambda store, cid: store.add_event(cid, "handoff_requested", {}),
}


@pytest.mark.parametrize("write", WRITES_TO_A_CONVERSATION.values(), ids=WRITES_TO_A_CONVERSATION.keys())
def test_writing_to_an_unknown_conversation_raises_conversation_not_found(
    store: ConversationStore, write: Callable[[ConversationStore, str], object]
) -> None:
    missing = uuid.uuid4().hex

    with pytest.raises(ConversationNotFound) as raised:
        write(store, missing)

    assert raised.value.conversation_id == missing
    assert list(store.iter_turns()) == []


# Messages


def test_messages_are_listed_in_the_order_they_were_added(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")
    other = store.create_conversation("web")
    texts = ["Bom dia", "Olá! Como posso ajudar?", "Quero a segunda via do IPTU", "Claro."]
    roles = ["user", "assistant", "user", "assistant"]
    for role, body in zip(roles, texts, strict=True):
        store.add_message(conversation.id, role, body)  # type: ignore[arg-type]
        store.add_message(other.id, "user", "noise")

    messages = store.list_messages(conversation.id)

    assert [m.text for m in messages] == texts
    assert [m.role for m in messages] == roles
    assert [m.id for m in messages] == sorted(m.id for m in messages)
    assert {m.conversation_id for m in messages} == {conversation.id}


def test_message_limit_keeps_the_most_recent_messages_oldest_first(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")
    for n in range(6):
        store.add_message(conversation.id, "user", f"m{n}")

    assert [m.text for m in store.list_messages(conversation.id, limit=3)] == ["m3", "m4", "m5"]
    assert store.list_messages(conversation.id, limit=0) == []


def test_message_keeps_its_decision_and_citations(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")
    citations = [{"doc_id": "iptu", "title": "IPTU", "section": "Prazos", "url": "https://x/iptu"}]

    added = store.add_message(conversation.id, "assistant", "Até 10/03.", "answered", citations)

    (stored,) = store.list_messages(conversation.id)
    assert stored == added
    assert stored.decision == "answered"
    assert stored.citations == tuple(citations)


def test_adding_a_message_touches_the_conversation(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")

    message = store.add_message(conversation.id, "user", "oi")

    fetched = store.get_conversation(conversation.id)
    assert fetched is not None
    assert fetched.updated_at == message.created_at


# Turns and exchanges


def test_record_exchange_stores_both_messages_the_turn_and_the_events(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")

    exchange = store.record_exchange(
        ExchangeDraft(
            turn=make_turn(conversation.id, decision="handoff"),
            user_message="Quero falar com um atendente, meu CPF é 123.456.789-09",
            reply=MessageDraft("Vou transferir você.", decision="handoff"),
            events=[EventDraft("handoff_requested", {"reason": "citizen asked"})],
        ),
    )

    messages = store.list_messages(conversation.id)
    assert messages == [exchange.user_message, exchange.reply]
    assert messages[0].role == "user"
    assert messages[0].text.endswith("123.456.789-09")
    assert messages[1].role == "assistant"
    assert messages[1].decision == "handoff"
    (turn,) = store.iter_turns()
    assert turn["id"] == exchange.turn_id
    assert turn["user_text"].endswith("[CPF]")
    assert turn["decision"] == "handoff"
    (recorded_event,) = store.list_events(conversation.id)
    assert recorded_event.kind == "handoff_requested"
    assert recorded_event.payload == {"reason": "citizen asked"}


def test_record_exchange_for_an_unknown_conversation_writes_nothing(store: ConversationStore) -> None:
    missing = uuid.uuid4().hex

    with pytest.raises(ConversationNotFound):
        store.record_exchange(ExchangeDraft(turn=make_turn(missing), user_message="oi", reply=MessageDraft("olá")))

    assert store.list_messages(missing) == []
    assert list(store.iter_turns()) == []


@pytest.fixture
def turn_inserts_fail() -> Iterator[None]:
    """Make every turn INSERT blow up, after the messages of an exchange are already flushed."""

    def fail(*_args: object) -> None:
        raise RuntimeError("disk full")

    event.listen(Turn, "before_insert", fail)
    yield
    event.remove(Turn, "before_insert", fail)


@pytest.mark.usefixtures("turn_inserts_fail")
def test_record_exchange_rolls_back_the_messages_when_the_turn_fails(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")

    with pytest.raises(RuntimeError, match="disk full"):
        store.record_exchange(
            ExchangeDraft(
                turn=make_turn(conversation.id),
                user_message="oi",
                reply=MessageDraft("olá"),
                events=[EventDraft("handoff_requested")],
            ),
        )

    assert store.list_messages(conversation.id) == []
    assert store.list_events(conversation.id) == []
    assert store.get_conversation(conversation.id) == conversation


def test_record_exchange_rolls_back_everything_when_an_event_cannot_be_stored(
    store: ConversationStore,
) -> None:
    conversation = store.create_conversation("web")

    # SQLite serialises JSON in SQLAlchemy (which wraps the error), psycopg in the driver.
    with pytest.raises((StatementError, TypeError)):
        store.record_exchange(
            ExchangeDraft(
                turn=make_turn(conversation.id),
                user_message="oi",
                reply=MessageDraft("olá"),
                events=[EventDraft("handoff_requested", {"not json": object()})],
            ),
        )

    assert store.list_messages(conversation.id) == []
    assert list(store.iter_turns()) == []
    assert store.list_events(conversation.id) == []


def test_turn_ids_increase_in_the_order_turns_are_recorded(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")

    first = log_turn(store, make_turn(conversation.id))
    second = log_turn(store, make_turn(conversation.id, decision="abstained", error="no context"))

    assert second > first
    assert [t["id"] for t in store.iter_turns()] == [first, second]


def test_iter_turns_yields_json_ready_dicts_with_every_column(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")
    turn_id = log_turn(store, make_turn(conversation.id))

    (turn,) = store.iter_turns()

    assert list(turn) == [column.name for column in Turn.__table__.columns]
    assert json.loads(json.dumps(turn)) == turn
    assert turn["id"] == turn_id
    assert turn["conversation_id"] == conversation.id
    assert turn["retrieved"] == [{"chunk_id": "iptu#1", "doc_id": "iptu", "score": 0.82}]
    assert turn["citations"][0]["section"] == "Segunda via"
    assert turn["latency_total_ms"] == 980.25
    assert turn["prompt_tokens"] == 512
    assert turn["error"] is None
    assert datetime.fromisoformat(turn["created_at"]).tzinfo is not None


def test_iter_turns_keeps_turns_from_since_inclusive_to_until_exclusive(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")
    start = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    ids = [log_turn(store, make_turn(conversation.id, created_at=start + timedelta(hours=hour))) for hour in range(4)]

    def window(since: datetime | None, until: datetime | None) -> list[int]:
        return [t["id"] for t in store.iter_turns(since, until)]

    assert window(None, None) == ids
    assert window(start + timedelta(hours=1), None) == ids[1:]
    assert window(None, start + timedelta(hours=2)) == ids[:2]
    assert window(start + timedelta(hours=1), start + timedelta(hours=3)) == ids[1:3]
    # The same instant written in another zone selects the same turns.
    assert window((start + timedelta(hours=1)).astimezone(SAO_PAULO), None) == ids[1:]


def test_iter_turns_streams_more_rows_than_one_batch(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")
    ids = [log_turn(store, make_turn(conversation.id)) for _ in range(7)]

    assert [t["id"] for t in store.iter_turns(batch_size=2)] == ids


def test_iter_turns_refuses_naive_bounds(store: ConversationStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.iter_turns(since=datetime(2025, 1, 1))


def test_export_turns_writes_one_json_object_per_line(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")
    start = datetime(2025, 3, 10, tzinfo=UTC)
    for day in range(3):
        log_turn(store, make_turn(conversation.id, created_at=start + timedelta(days=day), answer=f"Resposta nº {day}"))
    out = io.StringIO()

    written = export_turns(store, out, since=start + timedelta(days=1), until=None)

    lines = out.getvalue().splitlines()
    assert written == len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert [row["answer"] for row in rows] == ["Resposta nº 1", "Resposta nº 2"]
    assert "nº" in lines[0]


def test_export_turns_as_csv_has_a_header_and_one_row_per_turn(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")
    log_turn(store, make_turn(conversation.id))
    log_turn(store, make_turn(conversation.id, latency_first_token_ms=None))
    out = io.StringIO()

    written = export_turns(store, out, since=None, until=None, fmt="csv")

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert written == len(rows) == 2
    assert json.loads(rows[0]["retrieved"])[0]["chunk_id"] == "iptu#1"
    assert rows[1]["latency_first_token_ms"] == ""


def test_export_turns_rejects_an_unknown_format(store: ConversationStore) -> None:
    with pytest.raises(ValueError, match="format"):
        export_turns(store, io.StringIO(), None, None, fmt="xml")  # type: ignore[arg-type]


# Events and health


def test_events_are_listed_in_the_order_they_happened(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")
    store.add_event(conversation.id, "handoff_requested", {"queue": "iptu"})
    store.add_event(conversation.id, "agent_joined", {"agent": 7})

    events = store.list_events(conversation.id)

    assert [(e.kind, e.payload) for e in events] == [
        ("handoff_requested", {"queue": "iptu"}),
        ("agent_joined", {"agent": 7}),
    ]


def test_ping_reaches_the_database(store: ConversationStore) -> None:
    store.ping()


def test_every_timestamp_comes_back_timezone_aware_in_utc(store: ConversationStore) -> None:
    conversation = store.create_conversation("web")
    store.add_event(conversation.id, "opened", {})
    local = datetime(2025, 3, 10, 9, 30, tzinfo=SAO_PAULO)
    log_turn(store, make_turn(conversation.id, created_at=local))

    fetched = store.get_conversation(conversation.id)
    assert fetched is not None
    (asked, answered) = store.list_messages(conversation.id)
    (recorded_event,) = store.list_events(conversation.id)
    (turn,) = store.iter_turns()
    stamps = [fetched.created_at, fetched.updated_at, asked.created_at, answered.created_at, recorded_event.created_at]
    assert all(stamp.utcoffset() == timedelta(0) for stamp in stamps)
    assert turn["created_at"] == "2025-03-10T12:30:00+00:00"
