"""The one entry point for a citizen's message, whichever channel it came from.

validate → forward to the agent when a person has the conversation → the assistant → the handoff decision
(a handoff reply or repeated abstentions queue the conversation). The web chat calls it for every message and
`atende eval` drives suites through it, so what an evaluation sees is what a citizen gets, handoff included.
A channel that must commit its reply in the same transaction as the bot's turn (WhatsApp) runs the same steps
with the gate's `…_in` forms (atende/handoff/gate.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.service import Assistant, AssistantReply, Token
from atende.handoff.gate import HANDED_OFF, forward_to_agent, hand_off_if_needed

if TYPE_CHECKING:
    from atende.handoff.service import HandoffService


@dataclass(frozen=True)
class ChannelReply:
    """What the channel sends back, and how it came about.

    `body` is the reply as the web chat's JSON API returns it (answer, decision, route, citations, message_id,
    timings_ms); `reply` is the assistant's own reply, None when the message went to a person instead.
    `handoff_team` is the team whose queue the conversation is in (or would join, after hours) when the
    outcome is a handoff.
    """

    body: dict[str, Any]
    reply: AssistantReply | None
    handoff_team: str | None = None

    @property
    def forwarded(self) -> bool:
        """The conversation is a person's: the message went to the agent, the bot did not answer."""
        return self.reply is None

    @property
    def answer(self) -> str:
        return str(self.body["answer"])

    @property
    def decision(self) -> str:
        return str(self.body["decision"])


def handle_message(
    assistant: Assistant,
    handoff: HandoffService | None,
    conversation_id: str,
    text: str,
    *,
    channel: str,
) -> ChannelReply:
    """Answer one citizen message through the handoff gate; raises InvalidMessage or ConversationNotFound."""
    text = assistant.validate(text)
    forwarded = forward_to_agent(handoff, conversation_id, text)
    if forwarded is not None:
        return ChannelReply(forwarded, None, _team(handoff, conversation_id, None))
    return _after(handoff, conversation_id, assistant.respond(conversation_id, text, channel=channel))


def handle_message_stream(
    assistant: Assistant,
    handoff: HandoffService | None,
    conversation_id: str,
    text: str,
    *,
    channel: str,
) -> Iterator[Token | ChannelReply]:
    """`handle_message` with the answer's tokens as they are generated, then the final ChannelReply."""
    text = assistant.validate(text)
    forwarded = forward_to_agent(handoff, conversation_id, text)
    if forwarded is not None:
        yield ChannelReply(forwarded, None, _team(handoff, conversation_id, None))
        return
    for item in assistant.respond_stream(conversation_id, text, channel=channel):
        if isinstance(item, Token):
            yield item
        elif isinstance(item, AssistantReply):
            yield _after(handoff, conversation_id, item)


def _after(handoff: HandoffService | None, conversation_id: str, reply: AssistantReply) -> ChannelReply:
    called = [call["name"] for call in reply.tool_calls if call.get("ok")]
    body = hand_off_if_needed(handoff, conversation_id, reply.as_dict(), tools=called)
    team = _team(handoff, conversation_id, reply) if body["decision"] == "handoff" else reply.handoff_team
    return ChannelReply(body, reply, team)


def _team(handoff: HandoffService | None, conversation_id: str, reply: AssistantReply | None) -> str | None:
    """The queue the conversation is really in; after hours (nothing queued) the team that was asked for."""
    asked = reply.handoff_team if reply is not None else None
    if handoff is None:
        return asked
    conversation = handoff.store.get_conversation(conversation_id)
    if conversation is not None and conversation.state in HANDED_OFF:
        current = handoff.current(conversation_id)
        if current is not None:
            return current.team
    return asked or handoff.default_team
