"""Measurements for decisions 0010-0013 (run by hand; not a test)."""

import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import anyio
from mcp import Client
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from core.db import make_engine, make_session_factory, normalize_url
from core.migrate import upgrade
from core.settings import Settings
from domain.models import Protocol
from domain.seed import CITIZENS, seed
from tools_mcp.server import build_mcp_server
from tools_mcp.testing import call, make_test_domain

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_url():
    admin = make_engine(PG)
    schema = f"m_{uuid.uuid4().hex[:10]}"
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    return (
        normalize_url(PG)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False),
        admin,
        schema,
    )


def setup(kind, tmp):
    if kind == "sqlite":
        url = f"sqlite:///{tmp}/m-{uuid.uuid4().hex[:6]}.db"
        cleanup = lambda: None
    else:
        url, admin, schema = pg_url()

        def cleanup():
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

    upgrade(url)
    engine = make_engine(url, pool_size=20, max_overflow=40)
    d = make_test_domain(make_session_factory(engine), Settings(environment="test", data_dir=tmp, _env_file=None))
    seed(d)
    return d, engine, cleanup


async def burst(d, n, tool, argsf):
    async with Client(build_mcp_server(d)) as c:
        t0 = time.perf_counter()
        out = [None] * n

        async def one(i):
            out[i] = await call(c, tool, argsf(i), conversation=f"conv-{i}")

        async with anyio.create_task_group() as g:
            for i in range(n):
                g.start_soon(one, i)
        return time.perf_counter() - t0, out


async def latency(d, tool, args, conv, n=200):
    async with Client(build_mcp_server(d)) as c:
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = await call(c, tool, args, conversation=conv)
            ts.append((time.perf_counter() - t0) * 1000)
        ts.sort()
        return round(ts[len(ts) // 2], 2), round(ts[int(len(ts) * 0.95)], 2)


def racy_numbering(d, n=50):
    """The alternative: SELECT max(number)+1, rely on the unique constraint, retry on conflict."""
    retries = [0]

    def one(i):
        while True:
            try:
                with d.sessions.begin() as s:
                    last = s.scalar(select(func.max(Protocol.number))) or "2026-000000"
                    seq = int(last.split("-")[1]) + 1
                    s.execute(
                        insert(Protocol).values(
                            number=f"2026-{seq:06d}",
                            service_code="tapa_buraco",
                            team="obras",
                            anonymous=True,
                            description="x",
                            status="aberto",
                            due_date=d.clock.today(),
                            opened_at=d.clock.now(),
                            updated_at=d.clock.now(),
                        )
                    )
                return
            except IntegrityError:
                retries[0] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(40) as ex:
        list(ex.map(one, range(n)))
    return time.perf_counter() - t0, retries[0]


async def main():
    tmp = "/tmp/meas"
    res = {}
    for kind in ("sqlite", "postgresql"):
        d, engine, cleanup = setup(kind, tmp)
        el, out = await burst(
            d, 50, "protocol_open", lambda i: {"service": "tapa_buraco", "description": f"b{i}", "anonymous": True}
        )
        res[f"{kind}.protocol_open_50_parallel_s"] = round(el, 3)
        res[f"{kind}.protocol_open_ok"] = sum(o.ok for o in out)
        for i, p in enumerate(CITIZENS[:20]):
            d.verifier.verify(f"conv-{i}", p.cpf, p.birth_date.isoformat(), actor="m")
        slot = d.appointments.free_slots("emissao_rg", None, None)[0]["slot_id"]
        el, out = await burst(d, 20, "appointment_book", lambda i: {"slot_id": slot})
        res[f"{kind}.book_20_parallel_s"] = round(el, 3)
        res[f"{kind}.book_ok"] = sum(o.ok for o in out)
        res[f"{kind}.protocol_status_ms_p50_p95"] = await latency(
            d, "protocol_status", {"number": "2026-000001"}, "conv-0"
        )
        res[f"{kind}.payment_list_debts_ms_p50_p95"] = await latency(d, "payment_list_debts", {}, "conv-0")
        el, retries = racy_numbering(d)
        res[f"{kind}.max_plus_one_retry_50_s"] = round(el, 3)
        res[f"{kind}.max_plus_one_retries"] = retries
        engine.dispose()
        cleanup()
    print(json.dumps(res, indent=1))


anyio.run(main)
