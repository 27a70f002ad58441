"""Real `atende serve` processes against one PostgreSQL schema and one Redis prefix: two processes share
one queue; two agents claiming one conversation through different processes leave exactly one winner; and a
restart, even with Redis's live state lost, loses nothing, because conversations and handoffs live in the database.

Every process is configured through ATENDE_* environment variables only, as a deployment would be."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from backing_services import REDIS_URL, RedisKeys
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.db import make_engine
from core.i18n import t
from core.models import Conversation, Event
from handoff.models import Handoff

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ATENDE = Path(sys.executable).with_name("atende")
# A cold process is ready in about 6 s here, two booting together in about 10 s; the margin covers a loaded CI box.
START_DEADLINE_S = 90.0
STOP_DEADLINE_S = 20.0
COMMAND_TIMEOUT_S = 120.0
LOG_TAIL_CHARS = 4000
AGENT_SCOPES = ("--scope", "conversations:read", "--scope", "conversations:write")  # permissions.ACTIONS
TEAM = "atendimento"  # ATENDE_HANDOFF_DEFAULT_TEAM's default: where a handoff naming no team waits
TAKEN = t("handoff.error.taken", "pt-BR")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-LOG_TAIL_CHARS:] if path.exists() else "(no log)"


class AppProcess:
    """One `atende serve` on a free loopback port; stdout and stderr go to a log file, shown when a test fails."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path, browser: CookieJar) -> None:
        self.name = name
        self.browser = browser
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(ATENDE), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                cwd=workdir,  # no .env file there: the environment is the whole configuration
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self) -> None:
        """Uvicorn listens only once the lifespan has warmed up (migrations, queue rebuild): /healthz means ready."""
        deadline = time.monotonic() + START_DEADLINE_S
        with httpx.Client(base_url=self.url, timeout=1.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                try:
                    if http.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                # Waiting on the process paces the polls and notices at once when it dies.
                try:
                    code = self.process.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
                pytest.fail(f"process {self.name} exited with code {code} before it was ready:\n{tail(self.log)}")
        pytest.fail(f"process {self.name} not ready within {START_DEADLINE_S:.0f}s:\n{tail(self.log)}")

    def crash(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(STOP_DEADLINE_S)

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops a process; SIGKILL if it does not finish in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class Deployment:
    """One database schema, one Redis key prefix and one data folder, shared by every process started from it."""

    env: dict[str, str]
    workdir: Path
    engine: Engine
    redis_client: redis.Redis
    redis_prefix: str
    processes: list[AppProcess] = field(default_factory=list)
    # The citizen's browser: its web chat key opens their conversations on every process (cookies ignore ports).
    browser: CookieJar = field(default_factory=CookieJar)

    def start(self, name: str) -> AppProcess:
        process = AppProcess(name, self.env, self.workdir, self.browser)
        self.processes.append(process)
        return process

    def agent_token(self, name: str) -> tuple[str, str]:
        """An agent's account and a bearer token of its own (its subject and the token), made by `atende users
        create` and `atende tokens create` with the same environment: the console serves staff, not integrations."""
        created = subprocess.run(
            [str(ATENDE), "users", "create", "--username", name, "--role", "agent"],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        assert created.returncode == 0, (
            f"atende users create failed:\n{created.stdout}\n{created.stderr[-LOG_TAIL_CHARS:]}"
        )
        user_id = created.stdout.split("(id ", 1)[1].split(",", 1)[0]
        done = subprocess.run(
            [str(ATENDE), "tokens", "create", "--user", name, *AGENT_SCOPES],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, f"atende tokens create failed:\n{done.stdout}\n{done.stderr[-LOG_TAIL_CHARS:]}"
        return f"user:{user_id}", done.stdout.strip().splitlines()[-1]

    def forget_live_state(self) -> int:
        """Delete every Redis key of the deployment, as a flushed or replaced Redis would; how many there were."""
        keys = list(self.redis_client.scan_iter(match=self.redis_prefix + "*"))
        if keys:
            self.redis_client.delete(*keys)
        return len(keys)

    def stop_all(self) -> None:
        for process in self.processes:
            code = process.stop()
            # Printed during teardown: pytest shows it only for a failed test.
            print(f"--- process {process.name} (port {process.port}, exit {code}) ---\n{tail(process.log)}")


def environment(database_url: str, redis_prefix: str, data_dir: Path) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("ATENDE_")}
    return inherited | {
        "ATENDE_ENVIRONMENT": "test",
        "ATENDE_SECRET_KEY": f"processes-test-{uuid.uuid4().hex}",
        "ATENDE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ATENDE_BLIND_INDEX_KEY": uuid.uuid4().hex,
        "ATENDE_DATA_DIR": str(data_dir),
        "ATENDE_DATABASE_URL": database_url,
        "ATENDE_REDIS_URL": REDIS_URL,
        "ATENDE_HANDOFF_REDIS_PREFIX": redis_prefix,
        "ATENDE_EMBEDDING_BACKEND": "hashing",
        "ATENDE_VECTOR_STORE": "memory",
        # Nothing listens there, and nothing calls it: the handoff routes never use the model, the OpenAI client
        # connects only on a request, and translation (the one model call an agent's reply could make) is off.
        "ATENDE_LLM_BACKEND": "openai",
        "ATENDE_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "ATENDE_HANDOFF_TRANSLATION": "off",
        # Plain HTTP on loopback: a Secure chat key cookie would never be sent back.
        "ATENDE_SESSION_COOKIE_SECURE": "false",
    }


@pytest.fixture
def deployment(tmp_path: Path, postgres_url: str, redis_keys: RedisKeys) -> Iterator[Deployment]:
    engine = make_engine(postgres_url)
    env = environment(postgres_url, redis_keys.prefix, tmp_path / "var")
    built = Deployment(env, tmp_path, engine, redis_keys.client, redis_keys.prefix)
    try:
        yield built
    finally:
        built.stop_all()  # before the schema is dropped
        built.forget_live_state()
        engine.dispose()


@dataclass(frozen=True)
class Agent:
    subject: str
    token: str


@dataclass(frozen=True)
class Pair:
    """Two app processes of one deployment, ready, and two agents."""

    a: AppProcess
    b: AppProcess
    ana: Agent
    bruno: Agent


@pytest.fixture
def pair(deployment: Deployment) -> Pair:
    # Both processes (and the token command) start on an empty schema and migrate it at once: the migration's
    # advisory lock lets one run the DDL while the others wait (core/migrate.py).
    a, b = deployment.start("a"), deployment.start("b")
    ana = Agent(*deployment.agent_token("ana"))  # issued while the processes boot
    bruno = Agent(*deployment.agent_token("bruno"))
    a.wait_ready()
    b.wait_ready()
    return Pair(a, b, ana, bruno)


def citizen(app: AppProcess) -> httpx.Client:
    return httpx.Client(base_url=app.url, cookies=app.browser, timeout=30.0, trust_env=False)


def console(app: AppProcess, agent: Agent) -> httpx.Client:
    return httpx.Client(
        base_url=app.url, headers={"Authorization": f"Bearer {agent.token}"}, timeout=30.0, trust_env=False
    )


def ask_for_a_person(app: AppProcess) -> str:
    """A citizen opens a web chat and asks for a person; the new conversation's id."""
    with citizen(app) as http:
        created = http.post("/api/conversations", json={})
        assert created.status_code == 201, created.text
        conversation_id = str(created.json()["id"])
        ticket = http.post(f"/api/conversations/{conversation_id}/handoff")
    assert ticket.status_code == 200, ticket.text
    assert ticket.json()["state"] == "waiting"
    return conversation_id


def queue(app: AppProcess, agent: Agent) -> dict[str, Any]:
    with console(app, agent) as http:
        response = http.get("/api/console/queue")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def waiting(app: AppProcess, agent: Agent) -> list[tuple[str, str, int]]:
    """(conversation id, team, position) of the waiting conversations, first served first."""
    return [(w["conversation_id"], w["team"], w["position"]) for w in queue(app, agent)["waiting"]]


def mine(app: AppProcess, agent: Agent) -> list[tuple[str, str]]:
    return [(h["conversation_id"], h["status"]) for h in queue(app, agent)["mine"]]


def ticket(app: AppProcess, conversation_id: str) -> dict[str, Any]:
    with citizen(app) as http:
        response = http.get(f"/api/conversations/{conversation_id}/handoff")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def claim_at_once(conversation_id: str, contenders: list[tuple[AppProcess, Agent]]) -> list[httpx.Response]:
    """Every contender claims the conversation at the same moment, each through its own process."""
    barrier = threading.Barrier(len(contenders))

    def claim(app: AppProcess, agent: Agent) -> httpx.Response:
        with console(app, agent) as http:
            assert http.get("/healthz").status_code == 200  # the connection is open before the race starts
            barrier.wait(timeout=30)
            return http.post(f"/api/console/conversations/{conversation_id}/claim")

    with ThreadPoolExecutor(len(contenders)) as pool:
        futures = [pool.submit(claim, app, agent) for app, agent in contenders]
        return [future.result(timeout=60) for future in futures]


def test_a_citizen_queued_through_one_process_is_in_the_queue_read_through_the_other(pair: Pair) -> None:
    first = ask_for_a_person(pair.a)
    second = ask_for_a_person(pair.b)

    expected = [(first, TEAM, 1), (second, TEAM, 2)]
    assert waiting(pair.b, pair.ana) == expected
    assert waiting(pair.a, pair.bruno) == expected
    assert ticket(pair.b, first)["position"] == 1
    assert ticket(pair.a, second)["position"] == 2

    with console(pair.b, pair.ana) as http:
        assert http.post(f"/api/console/conversations/{first}/claim").status_code == 200
    assert waiting(pair.a, pair.bruno) == [(second, TEAM, 1)]
    assert mine(pair.a, pair.ana) == [(first, "with_agent")]
    assert ticket(pair.a, second)["position"] == 1


def test_two_agents_claiming_one_conversation_through_two_processes_leave_exactly_one_winner(
    pair: Pair, deployment: Deployment
) -> None:
    contenders = [(pair.a, pair.ana), (pair.b, pair.bruno)]
    # A few rounds, so a race that only sometimes lets both win has several chances to show.
    for round_ in range(3):
        conversation_id = ask_for_a_person(pair.a if round_ % 2 else pair.b)

        responses = claim_at_once(conversation_id, contenders)

        assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
        (winner,) = (agent for (_, agent), r in zip(contenders, responses, strict=True) if r.status_code == 200)
        (refused,) = (r for r in responses if r.status_code == 409)
        assert refused.json() == {"code": "taken", "detail": TAKEN}
        with Session(deployment.engine) as db:
            handoffs = db.scalars(select(Handoff).where(Handoff.conversation_id == conversation_id)).all()
            assert [(h.status, h.agent) for h in handoffs] == [("with_agent", winner.subject)]
            conversation = db.get(Conversation, conversation_id)
            assert conversation is not None
            assert conversation.state == "with_agent"
            assigned = db.scalars(
                select(Event).where(Event.conversation_id == conversation_id, Event.kind == "handoff_assigned")
            ).all()
            assert [e.payload["agent"] for e in assigned] == [winner.subject]
        assert waiting(pair.a, pair.ana) == []
        assert (conversation_id, "with_agent") in mine(pair.b if winner is pair.ana else pair.a, winner)


def test_a_restart_that_also_lost_redis_brings_back_the_queue_in_order_and_the_served_conversation(
    pair: Pair, deployment: Deployment
) -> None:
    queued = [ask_for_a_person(app) for app in (pair.a, pair.b, pair.a, pair.b, pair.a)]
    served = queued[1]
    still_waiting = [c for c in queued if c != served]
    with console(pair.b, pair.ana) as http:
        assert http.post(f"/api/console/conversations/{served}/claim").status_code == 200
    with console(pair.a, pair.ana) as http:
        reply = http.post(
            f"/api/console/conversations/{served}/messages", json={"text": "Olá, sou a Ana. Vou verificar o seu IPTU."}
        )
        assert reply.status_code == 200, reply.text
    with citizen(pair.b) as http:
        answer = http.post(f"/api/conversations/{served}/messages", json={"text": "Obrigado, fico no aguardo."})
        assert answer.status_code == 200, answer.text
    before = [(c, TEAM, n) for n, c in enumerate(still_waiting, 1)]
    assert waiting(pair.a, pair.bruno) == before

    pair.a.crash()
    # A clean shutdown: uvicorn finishes the lifespan, then re-raises the SIGTERM (a SIGKILL fallback reads -9).
    assert pair.b.stop() == -signal.SIGTERM
    assert deployment.forget_live_state() > 0
    fresh = deployment.start("fresh")
    fresh.wait_ready()

    assert waiting(fresh, pair.bruno) == before
    assert [ticket(fresh, c)["position"] for c in still_waiting] == [1, 2, 3, 4]
    assert mine(fresh, pair.ana) == [(served, "with_agent")]
    assert ticket(fresh, served)["state"] == "with_agent"
    with console(fresh, pair.ana) as http:
        conversation = http.get(f"/api/console/conversations/{served}")
        assert conversation.status_code == 200, conversation.text
        assert [(m["role"], m["text"]) for m in conversation.json()["messages"]] == [
            ("agent", "Olá, sou a Ana. Vou verificar o seu IPTU."),
            ("user", "Obrigado, fico no aguardo."),
        ]
        assert http.post(f"/api/console/conversations/{served}/messages", json={"text": "Pronto!"}).status_code == 200
    with console(fresh, pair.bruno) as http:
        assert http.post(f"/api/console/conversations/{still_waiting[0]}/claim").status_code == 200
    assert waiting(fresh, pair.bruno) == [(c, TEAM, n) for n, c in enumerate(still_waiting[1:], 1)]
