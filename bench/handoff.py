"""Handoff latency: from a citizen's request to the event on an agent's console, over HTTP on loopback.

    python -m bench.handoff [--requests 200] [--database-url postgresql+psycopg://…] [--redis-url redis://…]

The app runs under uvicorn in this process (with Redis live state when --redis-url is given); an agent's
console holds the server-sent event stream open while the citizen side posts handoff requests one at a time.
Latency is measured from just before the citizen's POST to the moment its `queued` event is read by the console.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import build_services
from core.accounts.types import SYSTEM
from core.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(requests: int, database_url: str, redis_url: str | None) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="atende-bench-handoff-"))
    settings = Settings(
        environment="test",
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        handoff_redis_prefix=f"atende-bench:{uuid.uuid4().hex[:8]}:",
        vector_store="memory",
        embedding_backend="hashing",
        session_cookie_secure=False,
        totp_required_roles="",
        tools_enabled=False,
        # One address creates every conversation: the per-address limits would measure themselves.
        limit_conversations_per_ip=0,
        limit_handoffs_per_ip=0,
        _env_file=None,  # type: ignore[call-arg]
    )
    services = build_services(settings, model=ScriptedChatModel([]))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(services=services, warm_model=False), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    user, _ = services.accounts.directory.create_user(
        f"bench-{uuid.uuid4().hex[:6]}",
        "agent",
        team=None,
        password="senha-de-bench-longa",
        actor="bench",
        origin=SYSTEM,
    )
    session = services.accounts.sessions.create(user.id, auth_method="password", mfa_verified=True)
    cookies = {services.accounts.cookies.session: session.cookie}
    latencies: list[float] = []
    received: dict[str, float] = {}
    ready = threading.Event()

    def console() -> None:
        with (
            httpx.Client(base_url=base, cookies=cookies, timeout=120) as client,
            client.stream("GET", "/api/console/events", params={"wait": 60}) as response,
        ):
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                    if kind == "ready":
                        ready.set()
                elif line.startswith("data: ") and kind == "queued":
                    received[json.loads(line.removeprefix("data: "))["conversation_id"]] = time.perf_counter()
                    if len(received) >= requests:
                        return

    watcher = threading.Thread(target=console, daemon=True)
    watcher.start()
    ready.wait(30)
    with httpx.Client(base_url=base, timeout=30) as citizen:
        for _ in range(requests):
            cid = citizen.post("/api/conversations").json()["id"]
            started = time.perf_counter()
            citizen.post(f"/api/conversations/{cid}/handoff")
            while cid not in received:
                time.sleep(0.0005)
            latencies.append((received[cid] - started) * 1000)
    server.should_exit = True
    thread.join(10)
    services.close()
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=settings.handoff_redis_prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()
    ordered = sorted(latencies)
    return {
        "requests": requests,
        "database": "postgresql" if database_url.startswith("postgresql") else "sqlite",
        "live_state": "redis" if redis_url else "memory",
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--out", type=Path, default=None, help="append the result to this JSON file's runs")
    args = parser.parse_args()
    result = run(args.requests, args.database_url, args.redis_url)
    print(json.dumps(result))
    if args.out is not None:
        previous = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
        runs = [r for r in previous.get("runs", []) if r.get("live_state") != result["live_state"]]
        args.out.write_text(json.dumps({"runs": [*runs, result]}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
