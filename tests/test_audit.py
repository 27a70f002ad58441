"""The hash-chained audit log on SQLite and PostgreSQL: appends, tamper detection, search and exports."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from lgpd_support import CPF, EMAIL
from openpyxl import load_workbook
from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError

from core.audit import AuditEvent, AuditLog, AuditQuery, ChainKeys, write_csv, write_xlsx
from core.db import make_engine, make_session_factory
from core.migrate import upgrade

SECRET = "a-real-secret-for-the-audit-tests-0123456789"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def audit_log(engine: Engine, secret: str = SECRET, previous: tuple[str, ...] = (), **kw: object) -> AuditLog:
    return AuditLog(make_session_factory(engine), ChainKeys.from_secrets(secret, previous), **kw)  # type: ignore[arg-type]


def event(n: int = 0, **changes: object) -> AuditEvent:
    values: dict[str, object] = {
        "actor": "user:7",
        "action": "citizen.read",
        "object_type": "citizen",
        "object_id": str(n),
        "ip": "10.0.0.5",
        "user_agent": "Mozilla/5.0",
        "details": {"n": n},
        "subject": f"citizen:{n}",
    }
    values.update(changes)
    return AuditEvent(**values)  # type: ignore[arg-type]


def allow_tampering(engine: Engine) -> None:
    """What a database administrator could do: switch the append-only triggers off."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))


def fill(log: AuditLog, count: int) -> None:
    for n in range(1, count + 1):
        log.record(event(n))


# Chain


def test_appended_records_are_numbered_from_one_and_each_links_to_the_previous(engine: Engine) -> None:
    log = audit_log(engine)
    first = log.append(event(1))
    second = log.append(event(2))

    assert (first.sequence, second.sequence) == (1, 2)
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash
    assert log.head() == (2, second.hash)
    result = log.verify()
    assert result.ok, result.reason
    assert result.checked == 2


def test_an_empty_log_verifies(engine: Engine) -> None:
    result = audit_log(engine).verify()

    assert result.ok
    assert result.checked == 0


def test_a_record_edited_with_raw_sql_breaks_verification_at_that_record(engine: Engine) -> None:
    log = audit_log(engine)
    fill(log, 5)
    allow_tampering(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'user:1' WHERE sequence = 3"))

    result = log.verify()

    assert not result.ok
    assert result.first_broken == 3
    assert "edited" in result.reason


def test_a_record_rewritten_with_a_recomputed_plain_hash_is_still_detected(engine: Engine) -> None:
    import hashlib

    log = audit_log(engine)
    fill(log, 3)
    allow_tampering(engine)
    forged = hashlib.sha256(b"forged").hexdigest()
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET object_id = '99', hash = :h WHERE sequence = 2"), {"h": forged})
        connection.execute(text("UPDATE audit_log SET prev_hash = :h WHERE sequence = 3"), {"h": forged})

    result = log.verify()

    assert result.first_broken == 2


def test_a_deleted_record_is_reported_as_missing(engine: Engine) -> None:
    log = audit_log(engine)
    fill(log, 4)
    allow_tampering(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE sequence = 2"))

    result = log.verify()

    assert result.first_broken == 2
    assert "missing" in result.reason


def test_records_cut_from_the_end_are_detected_through_the_chain_head(engine: Engine) -> None:
    log = audit_log(engine)
    fill(log, 4)
    allow_tampering(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE sequence = 4"))

    result = log.verify()

    assert result.first_broken == 4


def test_the_database_refuses_to_update_or_delete_audit_records(engine: Engine) -> None:
    log = audit_log(engine)
    fill(log, 1)

    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    assert log.verify().ok


def test_concurrent_appenders_keep_one_gapless_valid_chain(engine: Engine) -> None:
    threads, per_thread = 6, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def append_many(worker: int) -> None:
        log = audit_log(engine)  # one AuditLog per worker, as separate app processes would have
        start.wait()
        try:
            for n in range(per_thread):
                log.record(event(worker * 100 + n))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=append_many, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    result = audit_log(engine).verify()
    assert result.ok, result.reason
    assert result.checked == threads * per_thread
    object_ids = {r.object_id for r in audit_log(engine).iter_records()}
    assert len(object_ids) == threads * per_thread


# Keys


def test_records_signed_before_a_secret_change_verify_when_the_former_secret_is_listed(engine: Engine) -> None:
    fill(audit_log(engine, "old-secret-0123456789abcdef"), 2)
    audit_log(engine, SECRET).record(event(3))

    assert audit_log(engine, SECRET, previous=("old-secret-0123456789abcdef",)).verify().ok
    unlisted = audit_log(engine, SECRET).verify()
    assert unlisted.first_broken == 1
    assert "unknown key" in unlisted.reason


# What is stored


def test_personal_data_in_details_is_masked_before_it_is_stored_and_hashed(engine: Engine) -> None:
    log = audit_log(engine)
    log.record(event(1, details={"note": f"cidadão {CPF} pediu por {EMAIL}", "fields": ["cpf"]}))

    (record,) = log.search()
    assert record.details == {"note": "cidadão [CPF] pediu por [EMAIL]", "fields": ["cpf"]}
    assert log.verify().ok


def test_times_come_from_the_server_clock_in_utc_and_are_shown_in_sao_paulo(engine: Engine) -> None:
    at = datetime(2026, 3, 10, 15, 30, 0, 123456, tzinfo=UTC)
    log = audit_log(engine, clock=lambda: at)
    log.record(event(1))

    (record,) = log.search()
    assert record.occurred_at == at
    assert record.as_dict()["occurred_at_local"] == "2026-03-10T12:30:00.123456-03:00"
    assert log.verify().ok


def test_overlong_fields_are_clipped_to_their_columns_and_still_verify(engine: Engine) -> None:
    log = audit_log(engine)
    log.record(event(1, user_agent="x" * 2000, object_id="o" * 400))

    (record,) = log.search()
    assert len(record.user_agent or "") == 512
    assert len(record.object_id or "") == 255
    assert log.verify().ok


# Search


def test_search_filters_by_actor_action_object_subject_and_time(engine: Engine) -> None:
    now = [datetime(2026, 5, 1, 12, tzinfo=UTC)]
    log = audit_log(engine, clock=lambda: now[0])
    log.record(event(1))
    now[0] += timedelta(days=1)
    log.record(event(2, actor="user:8", action="citizen.pii.reveal"))
    now[0] += timedelta(days=1)
    log.record(event(1, action="lgpd.export"))

    def objects(**filters: object) -> list[str | None]:
        return [r.object_id for r in log.search(AuditQuery(**filters))]  # type: ignore[arg-type]

    assert objects(actor="user:8") == ["2"]
    assert objects(action="lgpd.export") == ["1"]
    assert objects(object_type="citizen", object_id="1") == ["1", "1"]
    assert objects(subject="citizen:2") == ["2"]
    assert objects(since=datetime(2026, 5, 2, tzinfo=UTC), until=datetime(2026, 5, 3, tzinfo=UTC)) == ["2"]


def test_search_returns_newest_first_in_pages(engine: Engine) -> None:
    log = audit_log(engine)
    fill(log, 5)

    first = log.search(limit=2)
    second = log.search(limit=2, before=first[-1].sequence)

    assert [r.sequence for r in first] == [5, 4]
    assert [r.sequence for r in second] == [3, 2]


def test_search_refuses_naive_datetimes(engine: Engine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        audit_log(engine).search(AuditQuery(since=datetime(2026, 1, 1)))


# Exports


def test_csv_export_lists_every_record_with_local_times_and_defused_formulas(engine: Engine) -> None:
    log = audit_log(engine, clock=lambda: datetime(2026, 7, 1, 3, 0, tzinfo=UTC))
    fill(log, 2)
    log.record(event(3, user_agent='=HYPERLINK("http://evil")'))
    out = io.StringIO()

    count = write_csv(log.iter_records(), out)

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert count == 3
    assert [row["sequence"] for row in rows] == ["1", "2", "3"]
    assert rows[0]["occurred_at_local"] == "2026-07-01T00:00:00-03:00"
    assert rows[2]["user_agent"].startswith("'=")


def test_xlsx_export_opens_in_openpyxl_with_formulas_kept_as_text(engine: Engine) -> None:
    log = audit_log(engine)
    fill(log, 2)
    log.record(event(3, object_id="=1+1"))
    out = io.BytesIO()

    count = write_xlsx(log.iter_records(AuditQuery(actor="user:7")), out)

    sheet = load_workbook(io.BytesIO(out.getvalue())).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert count == 3
    assert rows[0][:3] == ("sequence", "occurred_at_local", "actor")
    assert [row[0] for row in rows[1:]] == [1, 2, 3]
    object_id_cell = sheet.cell(row=4, column=6)
    assert object_id_cell.value == "=1+1"
    assert object_id_cell.data_type == "s"
