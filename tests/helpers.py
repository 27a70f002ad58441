"""Small helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from assistant.llm import ChatMessage


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
