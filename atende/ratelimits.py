"""Limits on anonymous citizen traffic: one declarative table, enforced in one place (an ASGI middleware).

Each limited route (method + path template, as in core/accounts/permissions.py) names its policies: how many
requests per client IP or per conversation in a window, from Settings. Counters live in the rate limiter
(core.ratelimit): Redis when configured, so every app process counts the same requests. A message asking
for a person counts as a handoff request; routes that generate an answer also pass the answer gate
(atende.answer_gate); and, when ATENDE_CHALLENGE=pow, a client past a burst solves a proof-of-work puzzle
first (atende.challenge). Refusals are 429 with Retry-After (428 with the puzzle) and the usual
`{"code", "detail"}` body in pt-BR.

The route functions know nothing of this, so a limit is added or changed here alone.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.routing import route_message
from atende.challenge import HEADER
from core.accounts.access import origin_of
from core.accounts.ipfilter import counted_as
from core.errors import BodyTooLarge, body_too_large_response, error_body
from core.i18n import t
from core.store import HANDED_OFF

if TYPE_CHECKING:
    from atende.answer_gate import AnswerGate
    from atende.services import Services
    from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    per: Literal["ip", "conversation"]
    setting: str  # the Settings field with how many requests the window allows (0: no limit)
    window_s: float


POLICIES: Final[dict[str, Policy]] = {
    "conversations_per_ip": Policy("ip", "limit_conversations_per_ip", 60.0),
    "messages_per_conversation": Policy("conversation", "limit_messages_per_conversation", 60.0),
    "messages_per_ip": Policy("ip", "limit_messages_per_ip", 60.0),
    "handoffs_per_conversation": Policy("conversation", "limit_handoffs_per_conversation", 3600.0),
    "handoffs_per_ip": Policy("ip", "limit_handoffs_per_ip", 3600.0),
}


@dataclass(frozen=True)
class RouteLimits:
    policies: tuple[str, ...]
    challenge: bool = False  # subject to the proof-of-work step after a burst
    answers: bool = False  # generates an answer: waits for the answer gate
    # Counted too when the message asks for a person in a conversation that is the bot's: it joins the queue
    asking_person: tuple[str, ...] = ()


_HANDOFFS: Final = ("handoffs_per_conversation", "handoffs_per_ip")
_MESSAGES: Final = RouteLimits(
    ("messages_per_conversation", "messages_per_ip"), challenge=True, answers=True, asking_person=_HANDOFFS
)

# method + path template → limits. The JSON and streamed message routes share their counters (same policies).
# WhatsApp is not here: Meta paces inbound messages per number, and a contact cannot open conversations at will.
LIMITED_ROUTES: Final[dict[tuple[str, str], RouteLimits]] = {
    ("POST", "/api/conversations"): RouteLimits(("conversations_per_ip",), challenge=True),
    ("POST", "/api/conversations/{conversation_id}/messages"): _MESSAGES,
    ("POST", "/api/conversations/{conversation_id}/messages/stream"): _MESSAGES,
    ("POST", "/api/conversations/{conversation_id}/handoff"): RouteLimits(_HANDOFFS),
}


def _check_table() -> None:
    for key, limits in LIMITED_ROUTES.items():
        for name in limits.policies + limits.asking_person:
            if name not in POLICIES:
                raise ValueError(f"route {key} names unknown limit policy {name!r}")
            if POLICIES[name].per == "conversation" and "{conversation_id}" not in key[1]:
                raise ValueError(f"route {key}: {name!r} counts per conversation but the path has no conversation id")


_check_table()

_COMPILED: Final[list[tuple[str, re.Pattern[str], RouteLimits]]] = [
    (method, compile_path(path)[0], limits) for (method, path), limits in LIMITED_ROUTES.items()
]


def match_route(method: str, path: str) -> tuple[RouteLimits, dict[str, str]] | None:
    for route_method, regex, limits in _COMPILED:
        if route_method == method:
            found = regex.match(path)
            if found is not None:
                return limits, found.groupdict()
    return None


def limited_response(code: str, detail: str, retry_after_s: float, status: int = 429) -> JSONResponse:
    retry = max(1, math.ceil(retry_after_s))
    return JSONResponse(error_body(code, detail), status, headers={"Retry-After": str(retry)})


def wait_text(seconds: float) -> str:
    """ "30 segundos", "5 minutos": how long to wait, in words a citizen reads."""
    if seconds < 90:
        return t("limits.seconds", n=max(1, math.ceil(seconds)))
    return t("limits.minutes", n=math.ceil(seconds / 60))


def count_requests(
    services: Services, policies: tuple[str, ...], client: str, params: dict[str, str]
) -> tuple[str, float] | None:
    """Count the request under each of `policies`; the longest refusal (policy, retry after) or None."""
    settings: Settings = services.settings
    refused: tuple[str, float] | None = None
    for name in policies:
        policy = POLICIES[name]
        allowed: int = getattr(settings, policy.setting)
        if allowed <= 0:
            continue
        subject = client if policy.per == "ip" else params["conversation_id"]
        decision = services.limiter.hit(f"http:{name}:{subject}", limit=allowed, window_s=policy.window_s)
        if not decision.allowed and (refused is None or decision.retry_after_s > refused[1]):
            refused = (name, decision.retry_after_s)
    return refused


class CitizenTrafficLimits:
    """The table above, on every request to a limited route: puzzle, counters, then the answer gate."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = match_route(scope.get("method", ""), scope.get("path", "")) if scope["type"] == "http" else None
        services: Services | None = getattr(scope["app"].state, "services", None) if matched else None
        if matched is None or services is None:
            await self.app(scope, receive, send)
            return
        limits, params = matched
        conn = HTTPConnection(scope)
        client = counted_as(origin_of(conn).ip)
        if limits.challenge:
            puzzle = await run_in_threadpool(services.challenge.check, client, conn.headers.get(HEADER))
            if puzzle is not None:
                body = error_body("challenge_required", t("limits.challenge"), challenge=puzzle.as_dict())
                await JSONResponse(body, 428)(scope, receive, send)
                return
        refused = await run_in_threadpool(count_requests, services, limits.policies, client, params)
        turn: _Turn | None = None
        if refused is None and limits.answers:
            try:
                receive, text = await _buffered(receive)
            except BodyTooLarge as exc:
                await body_too_large_response(exc.limit)(scope, receive, send)
                return
            turn = _Turn(services, params["conversation_id"], text)
            if limits.asking_person and turn.asks_person and await run_in_threadpool(turn.is_bots):
                # "Quero falar com um atendente" queues the conversation like POST …/handoff, so it counts the same.
                refused = await run_in_threadpool(count_requests, services, limits.asking_person, client, params)
        if refused is not None:
            policy, retry_after_s = refused
            log.info("request refused by the %s limit (retry in %.0fs)", policy, retry_after_s)
            detail = t(f"limits.{policy}", wait=wait_text(retry_after_s))
            await limited_response("rate_limited", detail, retry_after_s)(scope, receive, send)
            return
        if turn is None:
            await self.app(scope, receive, send)
            return
        await self._through_gate(services.answer_gate, turn, scope, receive, send)

    async def _through_gate(self, gate: AnswerGate, turn: _Turn, scope: Scope, receive: Receive, send: Send) -> None:
        # When busy, a turn that never reaches the model (small talk, a person's conversation) need not queue.
        if not gate.free() and not await run_in_threadpool(turn.needs_model):
            await self.app(scope, receive, send)
            return
        admission = await gate.acquire()
        if admission.slot is None:
            log.warning(
                "answer queue full: %d answering, %d waiting; refused (retry in %.0fs)",
                gate.active,
                gate.waiting,
                admission.retry_after_s,
            )
            detail = t("limits.answer_queue", wait=wait_text(admission.retry_after_s))
            await limited_response("assistant_busy", detail, admission.retry_after_s)(scope, receive, send)
            return
        status = 0

        async def watch_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            # The slot is held until the last byte of a streamed answer is sent, or the client goes away.
            await self.app(scope, receive, watch_status)
        finally:
            gate.release(admission.slot, measure=status == 200)


class _Turn:
    """What the middleware can tell about a message before the route runs, from its text and the conversation."""

    def __init__(self, services: Services, conversation_id: str, text: str | None) -> None:
        self._services = services
        self._conversation_id = conversation_id
        self._route = route_message(text).route if text is not None else None
        self._state: str | None = None
        self._loaded = False

    @property
    def asks_person(self) -> bool:
        return self._route == "human"

    def state(self) -> str | None:
        if not self._loaded:
            conversation = self._services.store.get_conversation(self._conversation_id)
            self._state = conversation.state if conversation is not None else None
            self._loaded = True
        return self._state

    def is_bots(self) -> bool:
        """The bot has the conversation (a request for a person would queue it)."""
        return self.state() == "bot"

    def needs_model(self) -> bool:
        """Whether the turn may generate with the model: not when a person has the conversation (or it does not
        exist), nor for small talk and requests for a person (answered by rules). Unknown text counts as a
        question."""
        state = self.state()
        if state is None or state in HANDED_OFF:
            return False
        return self._route not in ("smalltalk", "human")


async def _buffered(receive: Receive) -> tuple[Receive, str | None]:
    """Read the message body (BodySizeLimit, outside, bounds it) and a `receive` that replays it to the route."""
    chunks: list[bytes] = []
    final: Message | None = None
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            final = message  # the client left while sending
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    text: str | None = None
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("text"), str):
            text = parsed["text"]
    except ValueError:
        pass
    return _replay(body, receive, final), text


def _replay(body: bytes, receive: Receive, final: Message | None = None) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if final is not None:
            return final
        return await receive()

    return replay
