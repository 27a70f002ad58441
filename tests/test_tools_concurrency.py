"""Concurrency through the MCP tools: protocol numbers and slot bookings, on SQLite and PostgreSQL.

Each call runs in its own worker thread with its own database connection, as in the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client
from sqlalchemy import func, select, text

from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from core.settings import Settings
from domain.models import Appointment, AppointmentSlot
from domain.seed import CITIZENS, seed
from domain.wiring import Domain
from tools_mcp.server import build_mcp_server
from tools_mcp.testing import ToolOutcome, call, make_test_domain

pytestmark = pytest.mark.anyio


@pytest.fixture
def domain(database_url: str, tmp_path: Path) -> Iterator[Domain]:
    upgrade(database_url)
    # Enough connections that the worker threads really run side by side.
    engine = make_engine(database_url, pool_size=20, max_overflow=40)
    settings = Settings(environment="test", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    built = make_test_domain(make_session_factory(engine), settings)
    seed(built)
    yield built
    engine.dispose()


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
