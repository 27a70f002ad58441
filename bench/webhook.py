"""WhatsApp webhook acknowledgement: throughput and latency on loopback, with the load from a second process.

    python -m bench.webhook [--requests 20000] [--concurrency 32] [--variants sqlite_group_commit,...]

The app runs under uvicorn (one process, as `atende serve`) in this process; a child process replays signed
Cloud API deliveries over keep-alive connections, a bounded number of them, and reports what it saw. Zero loss
means every acknowledged message id is in the inbox afterwards. Variants compare inbox designs
(docs/decisions/0024-durable-inbox.md): the group commit the app uses, one commit per request, PostgreSQL,
and a Redis stream.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

SECRET = "bench-app-secret"
TARGETS = {"throughput_rps_min": 1000, "p99_ms_max": 50, "lost": 0}
VARIANTS = (
    "sqlite_group_commit",
    "sqlite_group_commit_without_base_http_middleware",
    "sqlite_commit_per_request",
    "postgresql_group_commit",
    "redis_stream",
)
FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "whatsapp" / "text_message.json"
FALLBACK_BODY: dict[str, Any] = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "1234567890987654321",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "556130000000", "phone_number_id": "1122334455667"},
                        "contacts": [{"profile": {"name": "Cidadã"}, "wa_id": "5561900000001", "user_id": "BR.1"}],
                        "messages": [
                            {
                                "from": "5561900000001",
                                "id": "wamid.x",
                                "timestamp": "1697043223",
                                "text": {"body": "Como emito a segunda via do IPTU?"},
                                "type": "text",
                            }
                        ],
                    },
                }
            ],
        }
    ],
}


# The load generator (child process)


def _requests(n: int, port: int) -> list[tuple[str, bytes]]:
    from channels.whatsapp.signature import sign

    base = json.loads(FIXTURE.read_text(encoding="utf-8")) if FIXTURE.is_file() else FALLBACK_BODY
    out = []
    for i in range(n):
        body = copy.deepcopy(base)
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        message["id"] = wamid = f"wamid.bench{i}"
        message["timestamp"] = str(int(time.time()))
        raw = json.dumps(body).encode()
        head = (
            f"POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {sign(SECRET, raw)}\r\nContent-Length: {len(raw)}\r\n\r\n"
        )
        out.append((wamid, head.encode() + raw))
    return out


async def _connection(
    port: int, pending: list[tuple[str, bytes]], latencies: list[float], acked: list[str], statuses: Counter[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while pending:
            wamid, request = pending.pop()
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            status = int(status_line.split()[1])
            statuses[status] += 1
            if status == 200:
                acked.append(wamid)
    finally:
        writer.close()


async def _load(port: int, n: int, concurrency: int) -> dict[str, Any]:
    pending = _requests(n, port)
    pending.reverse()
    latencies: list[float] = []
    acked: list[str] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, pending, latencies, acked, statuses) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 2)

    return {
        "requests": n,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "throughput_rps": round(n / elapsed, 1),
        "latency_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99), "max": round(latencies[-1], 2)},
        "statuses": {str(k): v for k, v in statuses.items()},
        "acknowledged": len(set(acked)),
    }


def _load_main(port: int, n: int, concurrency: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_load(port, n, concurrency))))


# The server (this process)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _uvicorn(app: Any) -> Iterator[int]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        thread.join(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def _atende(work: Path, database_url: str, *, max_batch: int) -> Iterator[tuple[Any, Callable[[], int]]]:
    """The real app with the WhatsApp channel, its workers off (only the acknowledgement is measured)."""
    from pydantic import SecretStr
    from sqlalchemy import func, select

    from assistant.testing import ScriptedChatModel
    from atende.app import create_app
    from atende.services import build_services
    from conversation.inbox import InboxWriter
    from conversation.models import InboxRow
    from core.settings import Settings

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        data_dir=work,
        database_url=database_url,
        vector_store="memory",
        embedding_backend="hashing",
        whatsapp_app_secret=SecretStr(SECRET),
        whatsapp_worker="off",
        log_level="WARNING",
    )
    services = build_services(settings, model=ScriptedChatModel([]))
    wa = services.whatsapp
    assert wa is not None
    wa.writer = InboxWriter(wa.engine, max_batch=max_batch)

    def stored() -> int:
        with wa.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(InboxRow)) or 0)

    try:
        yield create_app(services=services, warm_model=False), stored
    finally:
        services.close()


@contextmanager
def _redis_stream() -> Iterator[tuple[Any, Callable[[], int]]]:
    """The alternative inbox: the same checks, then XADD to a Redis stream (a worker would XREADGROUP it)."""
    import redis
    import redis.asyncio as aioredis
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from channels.whatsapp.payloads import fan_out
    from channels.whatsapp.signature import is_valid

    url = os.environ.get("ATENDE_REDIS_URL") or "redis://127.0.0.1:6379/0"
    stream = f"atende:bench:wa:{uuid.uuid4().hex}"
    client = aioredis.Redis.from_url(url)

    async def receive(request: Request) -> Response:
        body = await request.body()
        if not is_valid(SECRET, body, request.headers.get("x-hub-signature-256")):
            return Response(status_code=401)
        items = fan_out(json.loads(body))
        async with client.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.xadd(stream, {"key": item.key, "payload": json.dumps(item.payload)})
            await pipe.execute()
        return Response(status_code=200)

    sync = redis.Redis.from_url(url)
    try:
        sync.ping()
        yield (
            Starlette(routes=[Route("/webhooks/whatsapp", receive, methods=["POST"])]),
            lambda: len({e[1][b"key"] for e in cast(list[Any], sync.xrange(stream))}),
        )
    finally:
        sync.delete(stream)
        sync.close()


@contextmanager
def _postgres_schema() -> Iterator[str]:
    from sqlalchemy import text

    from core.db import make_engine, normalize_url

    base = os.environ.get("ATENDE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            normalize_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _measure(app: Any, stored: Callable[[], int], requests: int, concurrency: int) -> dict[str, Any]:
    with _uvicorn(app) as port:
        child = subprocess.run(
            [sys.executable, "-m", "bench.webhook", "--load", str(port), "--requests", str(requests),
             "--concurrency", str(concurrency)],
            capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
    result: dict[str, Any] = json.loads(child.stdout)
    result["stored"] = stored()
    result["lost"] = result["acknowledged"] - result["stored"]
    return result


def bench_webhook(
    work: Path, *, requests: int = 20_000, concurrency: int = 32, variants: tuple[str, ...] | None = None
) -> dict[str, Any]:
    variants = variants or VARIANTS
    out: dict[str, Any] = {"targets": TARGETS, "cpus": os.cpu_count(), "variants": {}}
    for variant in variants:
        path = work / f"webhook-{variant}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        sqlite_url = f"sqlite:///{(path / 'atende.db').as_posix()}"
        try:
            if variant == "sqlite_group_commit":
                with _atende(path, sqlite_url, max_batch=512) as (app, stored):
                    result = _measure(app, stored, requests, concurrency)
            elif variant == "sqlite_group_commit_without_base_http_middleware":
                # The app's `@app.middleware("http")` runs every request through Starlette's BaseHTTPMiddleware
                # (a task group and memory streams per request); this variant shows the webhook without it,
                # i.e. with that middleware rewritten as a plain ASGI one.
                from starlette.middleware.base import BaseHTTPMiddleware

                with _atende(path, sqlite_url, max_batch=512) as (app, stored):
                    app.user_middleware = [m for m in app.user_middleware if m.cls is not BaseHTTPMiddleware]
                    result = _measure(app, stored, requests, concurrency)
            elif variant == "sqlite_commit_per_request":
                with _atende(path, sqlite_url, max_batch=1) as (app, stored):
                    result = _measure(app, stored, requests, concurrency)
            elif variant == "postgresql_group_commit":
                with _postgres_schema() as url, _atende(path, url, max_batch=512) as (app, stored):
                    result = _measure(app, stored, requests, concurrency)
            elif variant == "redis_stream":
                with _redis_stream() as (app, stored):
                    result = _measure(app, stored, requests, concurrency)
            else:
                raise ValueError(f"unknown variant {variant!r}")
        except Exception as exc:  # a missing PostgreSQL or Redis skips that variant, not the benchmark
            result = {"error": f"{type(exc).__name__}: {exc}"}
        out["variants"][variant] = result
        print(f"webhook {variant}: {json.dumps(result)}", flush=True)
    main = out["variants"].get("sqlite_group_commit", {})
    if "throughput_rps" in main:
        out["meets_targets"] = (
            main["throughput_rps"] >= TARGETS["throughput_rps_min"]
            and main["latency_ms"]["p99"] <= TARGETS["p99_ms_max"]
            and main["lost"] == 0
            and main["statuses"] == {"200": requests}
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--variants", default="")
    parser.add_argument("--work", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    if args.load:
        _load_main(args.load, args.requests, args.concurrency)
        return
    variants = tuple(v for v in args.variants.split(",") if v) or None
    print(json.dumps(bench_webhook(args.work, requests=args.requests, concurrency=args.concurrency, variants=variants),
                     indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
