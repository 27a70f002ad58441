"""When the assistant hands a conversation to a person, judged from the conversation after each bot reply."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.agent_aids.sentiment import Sentiment
from core.store import MessageView

ABSTENTIONS_BEFORE_HANDOFF = 2


def handoff_reason(messages: Sequence[MessageView], latest: Sentiment | None = None) -> str | None:
    """ "citizen_request" when the latest reply is a handoff, "strongly_negative" when the citizen's latest message
    (`latest`) was, "abstained_twice" after consecutive abstentions."""
    replies = [m for m in messages if m.role == "assistant"]
    if not replies:
        return None
    if replies[-1].decision == "handoff":
        return "citizen_request"
    if latest is not None and latest.strong:
        return "strongly_negative"
    recent = replies[-ABSTENTIONS_BEFORE_HANDOFF:]
    if len(recent) == ABSTENTIONS_BEFORE_HANDOFF and all(m.decision == "abstained" for m in recent):
        return "abstained_twice"
    return None
