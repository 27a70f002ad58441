"""PostgreSQL and Redis for tests: a throwaway schema, a key prefix of one's own, and what to do when they are down.

Every test that needs either gets it from here (or from the `database_url`, `postgres_url` and `redis_keys`
fixtures in conftest.py, which use these), so the setup and the clean-up exist once.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    import redis

POSTGRES_URL = os.environ.get("ATENDE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ATENDE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_unavailable(what: str, error: object) -> NoReturn:
    """PostgreSQL and Redis are part of the test suite: under `make test` (and CI) their absence is a failure."""
    message = f"{what} is not reachable: {error}"
    if os.environ.get("ATENDE_REQUIRE_SERVICES") == "1" or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def postgres_schema(*, options: str = "") -> Iterator[str]:
    """A URL whose connections live in a fresh schema (empty: the caller migrates it), dropped afterwards.

    `options` are more libpq `-c` settings for every connection, e.g. `-ctimezone=America/Sao_Paulo`.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from core.db import make_engine, normalize_url

    admin = make_engine(POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        service_unavailable(f"PostgreSQL at {POSTGRES_URL}", exc.orig)
    url = normalize_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema} {options}".strip()})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass(frozen=True)
class RedisKeys:
    """A reachable Redis, a client on it, and a key prefix no other test uses."""

    url: str
    prefix: str
    client: redis.Redis


@contextmanager
def redis_keyspace() -> Iterator[RedisKeys]:
    """Redis under a fresh key prefix; every key under it is deleted afterwards, whatever wrote it."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        service_unavailable(f"Redis at {REDIS_URL}", exc)
    keys = RedisKeys(REDIS_URL, f"atende-test:{uuid.uuid4().hex[:12]}:", client)
    try:
        yield keys
    finally:
        stored = list(client.scan_iter(match=keys.prefix + "*"))
        if stored:
            client.delete(*stored)
        client.close()
