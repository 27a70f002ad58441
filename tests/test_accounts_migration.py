"""Migration 0003 creates exactly the account tables the ORM declares, on SQLite and PostgreSQL, and goes back."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from atende.schema import metadata
from core.accounts import models as account_models
from core.db import make_engine
from core.migrate import downgrade, upgrade

ACCOUNT_TABLES = {"teams", "users", "password_history", "recovery_codes", "staff_sessions", "api_tokens"}


def account_differences(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()

    return [diff for diff in diffs if _table_of(diff) in ACCOUNT_TABLES]


def _table_of(diff: Any) -> str | None:
    """The table an Alembic autogenerate difference is about."""
    op = diff[0] if isinstance(diff, list) else diff  # modify_* differences come as lists of tuples
    kind: str = op[0]
    if kind in ("add_table", "remove_table"):
        return str(op[1].name)
    if kind in ("add_column", "remove_column") or kind.startswith("modify_"):
        return str(op[2])
    table = getattr(op[1], "table", None)  # indexes, constraints, foreign keys
    return str(table.name) if table is not None else None


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_migration_creates_exactly_the_orm_account_tables(database_url: str) -> None:
    upgrade(database_url)

    assert tables(database_url) >= ACCOUNT_TABLES
    assert account_differences(database_url) == []
    assert {t.name for t in metadata.sorted_tables} >= ACCOUNT_TABLES
    assert account_models.User.__tablename__ == "users"


def test_downgrading_below_0003_removes_the_account_tables_and_upgrading_restores_them(database_url: str) -> None:
    upgrade(database_url)

    downgrade(database_url, "0002")
    gone = tables(database_url) & ACCOUNT_TABLES
    upgrade(database_url)

    assert gone == set()
    assert tables(database_url) >= ACCOUNT_TABLES
    assert account_differences(database_url) == []


def test_a_token_must_have_exactly_one_owner_in_the_database(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    insert = text(
        "INSERT INTO api_tokens (token_hash, prefix, name, scopes, created_by, created_at) "
        "VALUES ('h', 'p', 'n', '[]', 'test', CURRENT_TIMESTAMP)"
    )
    try:
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert)
    finally:
        engine.dispose()


def test_upgrading_gives_never_expiring_tokens_the_maximum_lifetime_from_now_and_keeps_them_approved(
    database_url: str,
) -> None:
    from datetime import UTC, datetime, timedelta

    upgrade(database_url, "0012")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO api_tokens (token_hash, prefix, name, integration, scopes, created_by, created_at) "
                    "VALUES ('h', 'p', 'n', 'legado', '[\"payments:read\"]', 'user:3', :created)"
                ),
                {"created": datetime(2025, 1, 1, tzinfo=UTC)},
            )
        before = datetime.now(UTC)
        upgrade(database_url)
        with engine.connect() as connection:
            row = connection.execute(text("SELECT expires_at, approved_by, approved_at FROM api_tokens")).one()
    finally:
        engine.dispose()

    expires = row.expires_at if isinstance(row.expires_at, datetime) else datetime.fromisoformat(row.expires_at)
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    assert before + timedelta(days=89) < expires < before + timedelta(days=91)
    assert row.approved_by == "system:migration"
    assert row.approved_at is not None
