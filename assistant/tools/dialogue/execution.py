"""The tool call and its outcome: call the server and record it, act on a refusal, render the answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from assistant.tools import render
from assistant.tools.dialogue.choices import _appointment_memo, _debt_memo
from assistant.tools.dialogue.turn import ActionOutcome, DialogueSteps, _Turn
from assistant.tools.session import ToolResult, ToolUnavailable
from assistant.tools.state import Pending
from core.i18n import t


class ExecutionSteps(DialogueSteps):
    def _call(self, turn: _Turn, name: str, args: Mapping[str, Any]) -> ToolResult | None:
        """Call a tool and record it; None (with the citizen told) when the server did not answer."""
        sent = {k: v for k, v in args.items() if not k.endswith(("_given", "_hint"))}
        record: dict[str, Any] = {"name": name, "arguments": dict(sent), "ok": False, "error": None}
        turn.calls.append(record)
        try:
            result = self.tools.call_tool(name, sent, conversation_id=turn.conversation_id)
        except ToolUnavailable as exc:
            record["error"] = "timeout" if exc.timed_out else "unavailable"
            turn.error = str(exc)
            turn.say(t("action.error.timeout" if exc.timed_out else "action.error.unavailable"))
            return None
        record["ok"] = result.ok
        record["error"] = result.error
        return result

    def _ok_or_explain(self, turn: _Turn, result: ToolResult, pending: Pending) -> bool:
        if result.ok:
            return True
        if result.error == "not_verified":
            turn.state = replace(turn.state, verified=False)
            self._verification_step(turn, replace(pending, awaiting=""), "")
            return False
        turn.state = turn.state.with_pending(None)
        turn.say(result.message or t(f"action.error.{result.error}"))
        return False

    def _execute(self, turn: _Turn, pending: Pending) -> ActionOutcome:
        tool = pending.tool
        args = {k: v for k, v in pending.arguments.items() if not k.endswith(("_given", "_hint"))}
        if tool == "handoff_to_human":  # the person offered to a frustrated citizen, accepted
            return self._handoff(turn, "", reason=str(args.get("reason") or ""), team=args.get("team"))
        if tool == "appointment_book":
            args = {"slot_id": args["slot_id"]}
        if tool == "appointment_slots":
            self._show_slots(turn, str(args.get("service")), {k: v for k, v in args.items() if k.startswith("date_")})
            return turn.outcome(tool)
        result = self._call(turn, tool, args)
        if result is not None and result.error == "unavailable":
            # The server answered, but what stands behind the tool (a bank's API, the database) is down for now:
            # as when the server does not answer, the request waits for a retry.
            turn.say(t("action.error.unavailable"))
            result = None
        if result is None:
            # Nothing is lost: the request waits for "tentar de novo".
            turn.state = turn.state.with_pending(replace(pending, awaiting="retry"))
            return turn.outcome(f"{tool} unavailable")
        if not result.ok:
            if result.error == "not_verified":
                turn.state = replace(turn.state, verified=False)
                return self._verification_step(turn, replace(pending, awaiting=""), "")
            turn.state = turn.state.with_pending(None)
            key = "action.refuse.third_party" if result.error == "identity_mismatch" else f"action.error.{result.error}"
            turn.say(result.message or t(key))
            return turn.outcome(f"{tool} {result.error}")
        turn.state = replace(turn.state, pending=None, last_tool=tool)
        self._render(turn, tool, args, result.data)
        return turn.outcome(tool)

    def _render(self, turn: _Turn, tool: str, args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        state = turn.state
        if tool == "payment_list_debts":
            listed = [d for d in data.get("debts", []) if isinstance(d, Mapping)]
            memo = tuple(_debt_memo(d) for d in render.unpaid(listed))
            pending = Pending("payment_second_copy", {}, "choice:debts") if memo else None
            turn.state = replace(state, debts=memo, pending=pending)
            turn.say(render.debts(listed, args.get("status")))
        elif tool == "payment_second_copy":
            debt = next((d for d in state.debts if str(d.get("debt_id")) == str(args.get("debt_id"))), None)
            turn.say(render.second_copy(data, debt))
        elif tool == "protocol_open":
            # The reference (number and access code): "e o meu protocolo?" later needs no verification.
            turn.state = replace(state, protocols=(*state.protocols, str(data.get("reference") or data.get("number"))))
            turn.say(render.protocol_opened(data))
        elif tool == "protocol_status":
            turn.say(render.protocol_status(data))
        elif tool == "protocol_list":
            listed = [p for p in data.get("protocols", []) if isinstance(p, Mapping)]
            turn.state = replace(state, protocols=tuple(str(p.get("number")) for p in reversed(listed)))
            turn.say(render.protocol_list(listed))
        elif tool == "protocol_add_comment":
            turn.say(render.comment_added(data))
        elif tool == "appointment_book":
            booked = _appointment_memo({**data, "status": "agendado"})
            turn.state = replace(state, slots=(), appointments=(*state.appointments, booked))
            turn.say(render.booked(data))
        elif tool == "appointment_cancel":
            gone = str(data.get("appointment_id"))
            kept = tuple(a for a in state.appointments if str(a.get("appointment_id")) != gone)
            turn.state = replace(state, appointments=kept)
            turn.say(render.cancelled(data))
        elif tool == "appointment_list":
            listed = [a for a in data.get("appointments", []) if isinstance(a, Mapping)]
            turn.state = replace(state, appointments=tuple(_appointment_memo(a) for a in listed))
            turn.say(render.appointments(listed))
        elif tool == "citizen_lookup":
            turn.say(render.citizen(data))
        else:
            turn.say(t("action.done"))
