"""Concurrency through the MCP tools: protocol numbers and slot bookings, on SQLite and PostgreSQL.

Each call runs in its own worker thread with its own database connection, as in the app.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from conftest import service_unavailable
from mcp import Client
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from atende.db import make_engine, make_session_factory, normalize_url
from atende.migrate import upgrade
from atende.settings import Settings
from tools_mcp.domain import Domain
from tools_mcp.models import Appointment, AppointmentSlot
from tools_mcp.seed import CITIZENS, seed
from tools_mcp.server import build_mcp_server
from tools_mcp.testing import ToolOutcome, call, make_test_domain

pytestmark = pytest.mark.anyio

POSTGRES_URL = os.environ.get("ATENDE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_schema() -> Iterator[str]:
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def domain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Domain]:
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{(tmp_path / 'atende.db').as_posix()}"])
    else:
        urls = _postgres_schema()
    url = next(urls)
    upgrade(url)
    # Enough connections that the worker threads really run side by side.
    engine = make_engine(url, pool_size=20, max_overflow=40)
    settings = Settings(environment="test", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    built = make_test_domain(make_session_factory(engine), settings)
    seed(built)
    yield built
    engine.dispose()
    for _ in urls:  # runs the PostgreSQL schema's cleanup
        pass


async def _all_at_once(client: Client, calls: list[tuple[str, dict[str, str | bool], str]]) -> list[ToolOutcome]:
    results: list[ToolOutcome | None] = [None] * len(calls)

    async def one(i: int, tool: str, arguments: dict[str, str | bool], conversation: str) -> None:
        results[i] = await call(client, tool, arguments, conversation=conversation)

    async with anyio.create_task_group() as group:
        for i, (tool, arguments, conversation) in enumerate(calls):
            group.start_soon(one, i, tool, arguments, conversation)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


async def test_50_parallel_protocol_openings_get_50_distinct_sequential_numbers(domain: Domain) -> None:
    year = domain.clock.today().year
    with domain.sessions() as session:
        before = session.scalar(text("SELECT last_value FROM protocol_counters WHERE year = :y"), {"y": year}) or 0
    calls: list[tuple[str, dict[str, str | bool], str]] = [
        ("protocol_open", {"service": "tapa_buraco", "description": f"Buraco {n}", "anonymous": True}, f"conv-{n}")
        for n in range(50)
    ]
    async with Client(build_mcp_server(domain)) as client:
        outcomes = await _all_at_once(client, calls)
    assert all(o.ok for o in outcomes), [o.data for o in outcomes if not o.ok][:3]
    numbers = sorted(o.data["number"] for o in outcomes)
    assert numbers == [f"{year}-{before + n:06d}" for n in range(1, 51)]


async def test_20_parallel_bookings_of_one_slot_give_exactly_one_booking(domain: Domain) -> None:
    people = CITIZENS[:20]
    for n, person in enumerate(people):
        assert domain.verifier.verify(f"conv-{n}", person.cpf, person.birth_date.isoformat(), actor="test").verified
    slot_id = domain.appointments.free_slots("emissao_rg", None, None)[0]["slot_id"]
    calls: list[tuple[str, dict[str, str | bool], str]] = [
        ("appointment_book", {"slot_id": slot_id}, f"conv-{n}") for n in range(len(people))
    ]
    async with Client(build_mcp_server(domain)) as client:
        outcomes = await _all_at_once(client, calls)
    assert sum(o.ok for o in outcomes) == 1
    assert sorted({o.error for o in outcomes if not o.ok}) == ["conflict"]
    with domain.sessions() as session:
        assert session.scalar(select(AppointmentSlot.booked).where(AppointmentSlot.id == int(slot_id))) == 1
        assert (
            session.scalar(select(func.count()).select_from(Appointment).where(Appointment.slot_id == int(slot_id)))
            == 1
        )
