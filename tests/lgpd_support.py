"""Helpers for the audit and LGPD tests: databases on SQLite or a throwaway PostgreSQL schema, services over them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import KNOWLEDGE, service_unavailable
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from assistant.testing import ScriptedChatModel
from atende.db import make_engine, normalize_url
from atende.services import Services, build_services
from atende.settings import Settings

POSTGRES_URL = os.environ.get("ATENDE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Valid check digits, so the detectors take them for real data.
CPF = "529.982.247-25"
CPF_DIGITS = "52998224725"
EMAIL = "maria.silva@example.com"
PHONE = "(19) 99876-5432"


def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    admin = make_engine(POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        service_unavailable(f"PostgreSQL at {POSTGRES_URL}", exc.orig)
    url = normalize_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def database_urls(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{(tmp_path / 'atende.db').as_posix()}"
    else:
        yield from postgres_schema_url()


def lgpd_settings(tmp_path: Path, database_url: str = "", **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "data_dir": tmp_path / "var",
        "knowledge_dir": KNOWLEDGE,
        "database_url": database_url,
        "vector_store": "memory",
        "embedding_backend": "hashing",
        "abstain_threshold": 0.2,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def lgpd_services(settings: Settings, model: ScriptedChatModel | None = None) -> Services:
    services = build_services(settings, model=model or ScriptedChatModel([]))
    services.warm_up()
    return services


def sign_in(client: Any, accounts: Any, role: str, username: str | None = None) -> tuple[dict[str, str], str]:
    """Sign a fresh member of `role` in (session cookie in the client): the headers a mutation needs, and the
    member's audit actor ("user:<id>")."""
    from atende.accounts.testing import create_user, sign_in_directly

    client.cookies.clear()
    user = create_user(accounts, username or f"{role}-{uuid.uuid4().hex[:6]}", role)
    csrf = sign_in_directly(client, accounts, user)
    return {"X-CSRF-Token": csrf, "User-Agent": "pytest-staff-browser"}, user.subject
