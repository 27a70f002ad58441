"""The handoff summary an agent reads first: why the citizen came, what the bot answered, data, what is pending.

Extractive and deterministic (no model call): built from the stored messages, so it is instant, costs nothing on
the embedded demo and never invents a fact. Personal data is masked; the citizen card reveals it on request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant.routing import route_message
from core.privacy import find_pii, mask
from core.store import MessageView

MAX_TEXT = 280
REASON_MESSAGES = 2


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1].rstrip() + "…"


def summarize(messages: Sequence[MessageView]) -> dict[str, Any]:
    """{"reason": [...], "answers": [{"text", "citations"}], "data": [{"kind", "count"}], "pending": str|None}."""
    citizen = [m for m in messages if m.role == "user"]
    # "Quero falar com um atendente" says how, not why: the reason is what the citizen came about.
    matters = [m for m in citizen if route_message(m.text).route != "human"] or citizen
    reason = [_clip(mask(m.text)) for m in matters[:REASON_MESSAGES]]
    answers = [
        {
            "text": _clip(mask(m.text)),
            "citations": [{"title": c.get("title", ""), "url": c.get("url", "")} for c in m.citations],
        }
        for m in messages
        if m.role == "assistant" and m.decision == "answered"
    ]
    kinds: dict[str, int] = {}
    for m in citizen:
        for found in find_pii(m.text):
            kinds[found.kind] = kinds.get(found.kind, 0) + 1
    return {
        "reason": reason,
        "answers": answers,
        "data": [{"kind": kind, "count": count} for kind, count in sorted(kinds.items())],
        "pending": _pending(messages),
    }


def _pending(messages: Sequence[MessageView]) -> str | None:
    """The citizen's last request that no grounded answer or agent reply followed."""
    waiting: str | None = None
    for m in messages:
        # "quero falar com um atendente" is the handoff itself, not the matter the agent must resolve.
        if m.role == "user" and route_message(m.text).route != "human":
            waiting = m.text
        elif m.role == "agent" or (m.role == "assistant" and m.decision == "answered"):
            waiting = None
    return None if waiting is None else _clip(mask(waiting))
