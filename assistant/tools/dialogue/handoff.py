"""Handoff: empathy for an angry citizen, the offer of a person, and the handoff itself."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from assistant.routing import frustration
from assistant.tools import extract, render
from assistant.tools.catalog import TEAMS, team_for
from assistant.tools.dialogue.turn import ActionOutcome, DialogueSteps, _Turn
from assistant.tools.intent import Reading, is_action
from assistant.tools.state import ActionState, Pending
from core.i18n import t
from core.privacy import mask


class HandoffSteps(DialogueSteps):
    def _offer_person(self, turn: _Turn, text: str) -> ActionOutcome:
        """Empathy and the offer of a person; a citizen still angry after the offer is handed off at once."""
        pending = turn.loaded.pending
        if pending is not None and pending.tool == "handoff_to_human":
            return self._handoff(turn, text, reason=str(pending.arguments.get("reason") or text))
        args: dict[str, Any] = {"reason": mask(text.strip())[:300]}
        team = team_for(text)
        if team:
            args["team"] = team
        turn.state = turn.state.with_pending(Pending("handoff_to_human", args, awaiting="confirm"))
        turn.say(t("action.offer_person"))
        return turn.outcome("frustrated")

    def _handoff(self, turn: _Turn, text: str, *, reason: str, team: str | None = None) -> ActionOutcome:
        chosen = team if team in TEAMS else team_for(text) or _team_of_pending(turn.state)
        args: dict[str, Any] = {"reason": mask(reason.strip())[:300] or "pedido do cidadão"}
        if chosen:
            args["team"] = chosen
        turn.state = turn.state.with_pending(None)
        turn.decision = "handoff"
        result = self._call(turn, "handoff_to_human", args) if "handoff_to_human" in self.available() else None
        if result is not None and result.ok:
            team_code = str(result.data.get("team") or chosen or "atendimento")
            turn.handoff_team = team_code
            turn.say(render.handoff(result.data, TEAMS.get(team_code, team_code)))
        else:
            turn.handoff_team = chosen or "atendimento"
            turn.parts = [t("handoff")]
        return turn.outcome("citizen_request")


def _acknowledge_anger(outcome: ActionOutcome, text: str, *, angry: bool = False) -> ActionOutcome:
    """An angry citizen whose request is being done hears first that they were heard, and that a person is there.

    `angry`: the message was read as an angry citizen's by other means than its marks of frustration."""
    if outcome.decision == "handoff" or not outcome.answer or not (angry or frustration(text).angry):
        return outcome
    return replace(outcome, answer=f"{t('action.empathy')}\n\n{outcome.answer}")


def _needs_empathy(reading: Reading, text: str, *, angry: bool = False) -> bool:
    """An angry citizen is offered a person first, unless they ask something the assistant can simply do.

    A question on how things work still gets its answer, and so does a request worded as one ("quero a
    segunda via"), except a new report of a problem they say was already reported and not solved ("já reclamei
    três vezes do buraco"). An outburst that only touches a tool's subject ("fui cobrada duas vezes na segunda
    via!") is not a request for it. Identity data and protocol numbers are answers to act on, whatever the tone.
    `angry`: the message was read as an angry citizen's by other means than its marks of frustration.
    """
    upset = frustration(text)
    if not (angry or upset.angry) or reading.explicit_howto or reading.cpfs or extract.protocol_number(text):
        return False
    if reading.tool is None or not is_action(reading) or not reading.request:
        return True
    return reading.tool == "protocol_open" and upset.again


def _team_of_pending(state: ActionState) -> str | None:
    tool = state.pending.tool if state.pending else state.last_tool
    if tool in ("payment_list_debts", "payment_second_copy"):
        return "tributos"
    return None
