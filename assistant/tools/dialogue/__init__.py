"""The action dialogue: from a citizen's request to a tool call, asking what is missing one thing at a time.

Order for a request: the arguments only the citizen can give (service, report, address, numbers) → a verified
identity when the tool touches their own data (CPF, then birth date, then `citizen_verify`) → arguments taken
from what they were shown (which debt, which slot) → an explicit "sim" before changing anything → the call →
a short pt-BR rendering. The state between turns lives in the database (assistant.tools.state).

Modules, one for each part of a turn; `ActionDialogue` is put together from their classes of steps:

- `turn`: the turn in progress (`_Turn`), what it hands back (`ActionOutcome`), and `DialogueSteps`, the steps
  the modules call on one another.
- `credentials`: `redact` and `masked_argument` for the stored message and the turn log; the `Sealer` that
  keeps the CPF encrypted between turns.
- `identity`: the CPF, the birth date and `citizen_verify`; a CPF or a request for someone else.
- `filling`: the arguments only the citizen can give, asked one at a time; their answers; the confirmation.
- `choices`: arguments picked from what was shown (debts, slots, appointments), fetched when nothing was.
- `execution`: the tool call, a refusal, and the rendered answer.
- `handoff`: empathy for an angry citizen, the offer of a person, the handoff.
- here: `ActionDialogue`, the entry point (`handle`) and where a request starts.
"""

from __future__ import annotations

import logging
from typing import Any

from assistant.tools.catalog import POLICIES
from assistant.tools.chooser import RuleChooser, ToolChoice, ToolChooser
from assistant.tools.dialogue.choices import ChoiceSteps
from assistant.tools.dialogue.credentials import ProcessSealer, Sealer, masked_argument, redact
from assistant.tools.dialogue.execution import ExecutionSteps
from assistant.tools.dialogue.filling import FillingSteps
from assistant.tools.dialogue.handoff import HandoffSteps, _acknowledge_anger, _needs_empathy
from assistant.tools.dialogue.identity import IdentitySteps
from assistant.tools.dialogue.turn import ActionOutcome, _Turn
from assistant.tools.intent import is_action, read
from assistant.tools.session import ToolSession, ToolUnavailable
from assistant.tools.state import Pending, current_state
from core.i18n import t
from core.store import ConversationStore

__all__ = ["ActionDialogue", "ActionOutcome", "ProcessSealer", "Sealer", "masked_argument", "redact"]

log = logging.getLogger(__name__)


class ActionDialogue(FillingSteps, ChoiceSteps, IdentitySteps, ExecutionSteps, HandoffSteps):
    def __init__(
        self,
        tools: ToolSession,
        store: ConversationStore,
        chooser: ToolChooser | None = None,
        *,
        identity_key: bytes = b"",
        sealer: Sealer | None = None,
    ) -> None:
        self.tools = tools
        self.store = store
        self.chooser = chooser or RuleChooser()
        self._identity_key = identity_key
        self._sealer = sealer or ProcessSealer()
        self._available: tuple[str, ...] | None = None

    def warm_up(self) -> None:
        try:
            self.tools.warm_up()
        except ToolUnavailable as exc:
            # A remote tool server may start after us; calls reconnect, and say so to the citizen meanwhile.
            log.warning("MCP tools not reachable at start-up: %s", exc)
            return
        self.available()

    def available(self) -> tuple[str, ...]:
        """The assistant's tools the server offers (listed once; the contract's set when it cannot be reached)."""
        if self._available is None:
            try:
                listed = {spec.name for spec in self.tools.list_tools()}
            except ToolUnavailable as exc:
                log.warning("cannot list the MCP tools yet: %s", exc)
                return tuple(POLICIES)
            self._available = tuple(name for name in POLICIES if name in listed)
        return self._available

    # Entry point

    def awaiting(self, conversation_id: str) -> bool:
        """Whether the dialogue asked the citizen something (a CPF, a choice, a "sim") the next message may answer."""
        return current_state(self.store.list_events(conversation_id)).pending is not None

    def handle(self, conversation_id: str, text: str, route: str, *, hint: str | None = None) -> ActionOutcome | None:
        """The turn's outcome when the message is (part of) an action; None when the pipeline should answer.

        `hint` is the learned intent the routing passed on (assistant.intents.policy): "angry" reads the message as
        an angry citizen's, "tool:<name>" starts that tool when nothing else was chosen."""
        state = current_state(self.store.list_events(conversation_id))
        turn = _Turn(conversation_id, state, state)
        if route == "human":
            return self._handoff(turn, text, reason=text)
        reading = read(text)
        angry = hint == "angry"
        if state.pending is not None:
            # An angry message is not an answer to "what is your CPF?"; a yes or no to a question still is.
            if state.pending.awaiting not in ("confirm", "retry") and _needs_empathy(reading, text, angry=angry):
                return self._offer_person(turn, text)
            outcome = self._continue(turn, text, reading)
            if outcome is not None:
                return _acknowledge_anger(outcome, text, angry=angry)
            if route == "smalltalk":
                return None
            # Something else: the open question is dropped, whatever happens next.
            turn.state = state.with_pending(None)
        elif route == "smalltalk":
            return None
        if _needs_empathy(reading, text, angry=angry):
            return self._offer_person(turn, text)
        if reading.injection:
            turn.say(t("action.refuse.injection"))
            return turn.outcome("injection")
        topic = POLICIES.get(reading.tool or "")
        if topic is not None and topic.needs_identity and self._someone_else(turn.state, reading):
            turn.say(t("action.refuse.third_party"))
            return turn.outcome("third_party")
        if reading.tool == "citizen_verify" and (reading.cpfs or is_action(reading)):
            # Identity data is handled by code alone: it never goes to a model, whatever the routing.
            choice = ToolChoice("citizen_verify", dict(reading.arguments))
        else:
            choice = self.chooser.choose(text, reading, turn.state, self.available())
        hinted = reading.tool is not None and hint == f"tool:{reading.tool}" and reading.tool in self.available()
        if choice.tool is None and hinted:
            # The rules read the tool's subject, the examples a request for it: together, a request.
            choice = ToolChoice(reading.tool, dict(reading.arguments), choice.used_model, choice.usage)
        turn.choice = choice
        if choice.tool is None:
            if turn.state != state:
                return ActionOutcome("", turn.state, passthrough=True, used_model=choice.used_model, usage=choice.usage)
            return None
        policy = POLICIES[choice.tool]
        if policy.needs_identity and choice.tool != "citizen_verify" and self._someone_else(turn.state, reading):
            turn.say(t("action.refuse.third_party"))
            return turn.outcome("third_party")
        return _acknowledge_anger(self._start(turn, choice.tool, dict(choice.arguments), text), text, angry=angry)

    # Starting a request

    def _start(self, turn: _Turn, tool: str, args: dict[str, Any], text: str) -> ActionOutcome:
        if tool == "citizen_verify":
            return self._verification_step(turn, None, text)
        if tool == "handoff_to_human":
            return self._handoff(turn, text, reason=args.get("reason") or text, team=args.get("team"))
        return self._advance(turn, Pending(tool, args, awaiting=""), text)
