"""Identity guesses per CPF per day (with growing pauses and an alert) and protocols per conversation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from backing_services import RedisKeys
from mcp import Client

from core.audit import MemoryAuditSink
from core.db import make_engine, make_session_factory
from core.i18n import t
from core.migrate import upgrade
from core.principals import Principal
from core.ratelimit import InMemoryRateLimiter, RateLimiter
from core.settings import Settings
from domain.errors import DomainError
from domain.seed import CITIZENS, seed
from domain.wiring import Domain
from tools_mcp.server import build_mcp_server
from tools_mcp.testing import call, make_test_domain

MARIA, JOAO = CITIZENS[0], CITIZENS[1]
WRONG = "01/01/2000"


class Seconds:
    """The limiter's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tools:
    def __init__(self, root: Path, **overrides: object) -> None:
        url = f"sqlite:///{(root / 'atende.db').as_posix()}"
        if not (root / "atende.db").exists():
            upgrade(url)
        self.engine = make_engine(url)
        self.settings = Settings(environment="test", data_dir=root, _env_file=None, **overrides)  # type: ignore[call-arg]
        self.audit = MemoryAuditSink()

    def domain(self, limiter: RateLimiter) -> Domain:
        return make_test_domain(make_session_factory(self.engine), self.settings, audit=self.audit, limiter=limiter)


@pytest.fixture
def tools(tmp_path: Path) -> Iterator[Tools]:
    world = Tools(tmp_path)
    seed(world.domain(InMemoryRateLimiter()))
    yield world
    world.engine.dispose()


def guess(domain: Domain, conversation: str, birth_date: str = WRONG, who: object = MARIA) -> bool:
    return domain.verifier.verify(conversation, who.cpf, birth_date, actor="test").verified  # type: ignore[attr-defined]


def refusal(domain: Domain, conversation: str, birth_date: str = WRONG) -> DomainError:
    with pytest.raises(DomainError) as caught:
        guess(domain, conversation, birth_date)
    assert caught.value.code == "rate_limited"
    return caught.value


# Identity verification


def test_after_a_few_failed_guesses_each_further_one_waits_twice_as_long(tools: Tools) -> None:
    clock = Seconds()
    domain = tools.domain(InMemoryRateLimiter(clock=clock))
    for n in range(5):
        assert not guess(domain, f"c{n}")

    clock.now += 901  # the 15-minute window and the first pause (15 min) are over
    assert not guess(domain, "c5")
    clock.now += 901
    error = refusal(domain, "c6")  # the sixth failure pauses the CPF for 30 minutes
    assert error.params["minutes"] == 15
    clock.now += 900
    assert not guess(domain, "c7")


def test_a_cpf_is_locked_for_the_day_at_the_daily_cap_and_the_lock_is_logged_and_audited(
    tools: Tools, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Seconds()
    domain = tools.domain(InMemoryRateLimiter(clock=clock))
    with caplog.at_level(logging.WARNING, logger="domain.verification"):
        for n in range(1, 11):
            assert not guess(domain, f"c{n}")
            clock.now += domain.verifier.policy.backoff_s(n) + 1  # each pause waited out, all inside one day

    assert clock.now < 24 * 3600
    error = refusal(domain, "c11", MARIA.birth_date.isoformat())  # even the right date is refused now

    assert error.key == "tools.error.verification_locked"
    assert "bloqueada" in error.message
    locked = [e for e in tools.audit.events if e.action == "citizen.verification_locked"]
    assert len(locked) == 1
    assert locked[0].details["cpf_masked"] != MARIA.cpf
    assert MARIA.cpf not in str(locked[0].details)
    warnings = [r for r in caplog.records if "locked" in r.getMessage()]
    assert len(warnings) == 1
    assert "".join(c for c in MARIA.cpf if c.isdigit()) not in warnings[0].getMessage()
    assert guess(domain, "joao", JOAO.birth_date.isoformat(), JOAO)  # other citizens are unaffected
    clock.now = 24 * 3600 + 1
    assert guess(domain, "next-day", MARIA.birth_date.isoformat())


def test_successful_verifications_do_not_count_towards_the_daily_cap(tools: Tools) -> None:
    domain = tools.domain(InMemoryRateLimiter(clock=Seconds()))
    for n in range(15):
        assert guess(domain, f"c{n}", MARIA.birth_date.isoformat())


@pytest.mark.integration
def test_the_daily_cap_holds_across_two_processes_sharing_redis(tmp_path: Path, redis_keys: RedisKeys) -> None:
    from redis import Redis

    from core.ratelimit import RedisRateLimiter

    # No short window and no pauses: only the daily cap is left to stop the guesses.
    tools = Tools(tmp_path, verification_max_attempts=100, verification_backoff_base_s=0)
    seed(tools.domain(InMemoryRateLimiter()))
    clients = [Redis.from_url(redis_keys.url) for _ in range(2)]
    first, second = (tools.domain(RedisRateLimiter(client, redis_keys.prefix)) for client in clients)
    try:
        for n in range(10):
            assert not guess(first if n % 2 else second, f"c{n}")

        assert refusal(first, "c10").key == "tools.error.verification_locked"
        assert refusal(second, "c11").key == "tools.error.verification_locked"
        assert len([e for e in tools.audit.events if e.action == "citizen.verification_locked"]) == 1
    finally:
        for client in clients:
            client.close()
        tools.engine.dispose()


# Protocols a conversation opens


@pytest.mark.anyio
async def test_a_conversation_opens_only_a_few_protocols_per_hour_while_staff_are_not_limited(tools: Tools) -> None:
    domain = tools.domain(InMemoryRateLimiter())
    report = {"service": "ouvidoria", "description": "Denúncia de obra irregular", "anonymous": True}
    async with Client(build_mcp_server(domain)) as client:
        opened = [await call(client, "protocol_open", report, conversation="flood") for _ in range(4)]
        elsewhere = await call(client, "protocol_open", report, conversation="other")

    assert [o.ok for o in opened] == [True, True, True, False]
    assert opened[-1].error == "rate_limited"
    assert opened[-1].data["message"] == t("tools.error.protocol_quota", minutes=60)
    assert elsewhere.ok
    staff = Principal(
        kind="staff", subject="user:7", scopes=frozenset({"protocols:write", "protocols:read", "citizens:pii"})
    )
    async with Client(build_mcp_server(domain, local_principal=staff)) as client:
        for _ in range(4):
            assert (await call(client, "protocol_open", {**report, "anonymous": False, "cpf": MARIA.cpf})).ok


@pytest.mark.anyio
async def test_a_refused_protocol_does_not_use_up_the_conversation_quota(tools: Tools) -> None:
    domain = tools.domain(InMemoryRateLimiter())
    async with Client(build_mcp_server(domain)) as client:
        for _ in range(3):
            wrong = {"service": "conserto de foguete", "description": "x", "anonymous": True}
            assert (await call(client, "protocol_open", wrong, conversation="c1")).error == "invalid_argument"
        report = {"service": "ouvidoria", "description": "Buraco na rua", "anonymous": True}
        assert all([(await call(client, "protocol_open", report, conversation="c1")).ok for _ in range(3)])
