"""Filling a request: ask for what is missing one thing at a time, take the answers, confirm before acting."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from assistant.tools import extract, render
from assistant.tools.catalog import POLICIES, SERVICE_BY_CODE, service_name
from assistant.tools.dialogue.turn import ActionOutcome, DialogueSteps, _Turn
from assistant.tools.intent import Reading, enum_arguments, is_action, literal_arguments
from assistant.tools.state import ActionState, Pending
from core.i18n import t
from rag.text import fold

MAX_ASKS = 2  # the same question at most this many times more before giving up and offering a person


class FillingSteps(DialogueSteps):
    def _advance(self, turn: _Turn, pending: Pending, text: str) -> ActionOutcome:
        tool, args = pending.tool, dict(pending.arguments)
        if tool in ("protocol_status", "protocol_add_comment") and not args.get("number") and turn.state.protocols:
            # "E o meu protocolo?" right after opening or listing one: the most recent is meant.
            args["number"] = turn.state.protocols[-1]
        missing = _missing_literal(tool, args)
        if missing:
            return self._ask(turn, replace(pending, awaiting=f"arg:{missing}", asked=0), f"action.ask.{tool}.{missing}")
        policy = POLICIES[tool]
        if (
            policy.needs_identity
            and not (tool == "protocol_open" and args.get("anonymous"))
            and not turn.state.verified
        ):
            return self._verification_step(turn, replace(pending, awaiting=""), text)
        resolved = self._resolve(turn, replace(pending, arguments=args), text)
        if resolved is None:
            return turn.outcome(tool)
        pending = resolved
        if policy.confirm and pending.awaiting != "confirmed":
            pending = replace(pending, awaiting="confirm", asked=0)
            turn.state = turn.state.with_pending(pending)
            turn.say(self._confirmation(turn.state, pending))
            return turn.outcome(f"confirm {tool}")
        return self._execute(turn, replace(pending, awaiting=""))

    def _ask(self, turn: _Turn, pending: Pending, key: str, **params: Any) -> ActionOutcome:
        turn.state = turn.state.with_pending(pending)
        turn.say(t(key, **params))
        return turn.outcome(f"ask {pending.awaiting}")

    # Continuing after a question

    def _continue(self, turn: _Turn, text: str, reading: Reading) -> ActionOutcome | None:
        pending = turn.state.pending
        assert pending is not None
        awaiting = pending.awaiting
        if awaiting in ("confirm", "retry"):
            if extract.is_yes(text):
                return self._execute(turn, replace(pending, awaiting="confirmed"))
            if extract.is_no(text):
                turn.state = turn.state.with_pending(None)
                offered = pending.tool == "handoff_to_human"
                turn.say(t("action.offer_person.declined" if offered else "action.declined"))
                return turn.outcome("declined")
            return None
        if extract.wants_to_stop(text):
            turn.state = turn.state.with_pending(None)
            turn.say(t("action.dropped"))
            return turn.outcome("dropped")
        if awaiting in ("cpf", "birth_date"):
            turn.sensitive = True
            return self._verification_answer(turn, pending, text, reading)
        if awaiting.startswith("choice:"):
            return self._choice_answer(turn, pending, text, reading)
        if awaiting.startswith("arg:"):
            return self._argument_answer(turn, pending, awaiting.removeprefix("arg:"), text, reading)
        return None

    def _new_request(self, reading: Reading, pending: Pending) -> bool:
        """The citizen moved on to another request instead of answering."""
        return is_action(reading) and reading.tool != pending.tool and reading.tool != "citizen_verify"

    def _reask(self, turn: _Turn, pending: Pending, key: str, **params: Any) -> ActionOutcome:
        if pending.asked >= MAX_ASKS:
            turn.state = turn.state.with_pending(None)
            turn.say(t("action.give_up"))
            return turn.outcome("gave up")
        turn.state = turn.state.with_pending(replace(pending, asked=pending.asked + 1))
        turn.say(t(key, **params))
        return turn.outcome(f"ask again {pending.awaiting}")

    def _argument_answer(
        self, turn: _Turn, pending: Pending, name: str, text: str, reading: Reading
    ) -> ActionOutcome | None:
        if self._new_request(reading, pending):
            return None
        value = _argument_from_answer(pending.tool, name, text)
        if value is None and reading.howto:
            return None
        if value is None:
            return self._reask(turn, pending, f"action.ask_again.{pending.tool}.{name}")
        args = {**pending.arguments, name: value}
        if pending.tool == "protocol_open" and name == "service" and not args.get("description_given"):
            args["description"] = text.strip()
            args["description_given"] = True
            where = extract.address(text)
            if where and not args.get("address"):
                args["address"] = where
        return self._advance(turn, replace(pending, arguments=args, awaiting="", asked=0), text)

    def _confirmation(self, state: ActionState, pending: Pending) -> str:
        args = pending.arguments
        if pending.tool == "protocol_open":
            where = t("action.confirm.address", address=args["address"]) if args.get("address") else ""
            key = "action.confirm.protocol_open_anonymous" if args.get("anonymous") else "action.confirm.protocol_open"
            return t(
                key,
                service=service_name(str(args.get("service"))),
                description=args.get("description", ""),
                where=where,
            )
        if pending.tool == "appointment_book":
            slot = next((s for s in state.slots if str(s.get("slot_id")) == str(args.get("slot_id"))), {})
            return t(
                "action.confirm.appointment_book",
                service=service_name(str(slot.get("service") or args.get("service") or "")),
                when=render.when(slot.get("starts_at")),
                location=slot.get("location", ""),
            )
        if pending.tool == "appointment_cancel":
            appointment = next(
                (a for a in state.appointments if str(a.get("appointment_id")) == str(args.get("appointment_id"))), None
            )
            details = (
                t(
                    "action.confirm.appointment_details",
                    service=service_name(str(appointment.get("service"))),
                    when=render.when(appointment.get("starts_at")),
                )
                if appointment
                else ""
            )
            return t("action.confirm.appointment_cancel", appointment_id=args.get("appointment_id"), details=details)
        return t("action.confirm.generic")


def _missing_literal(tool: str, args: Mapping[str, Any]) -> str | None:
    if tool == "protocol_open":
        if not args.get("service"):
            return "service"
        if not args.get("description"):
            return "description"
        service = SERVICE_BY_CODE.get(str(args["service"]))
        if service is not None and service.needs_address and not args.get("address"):
            return "address"
    if tool in ("protocol_status", "protocol_add_comment") and not args.get("number"):
        return "number"
    if tool == "protocol_add_comment" and not args.get("text"):
        return "text"
    if tool == "appointment_slots" and not args.get("service"):
        return "service"
    return None


def _argument_from_answer(tool: str, name: str, text: str) -> Any:
    if name == "number":
        return extract.protocol_number(text)
    if name == "appointment_id":
        found = extract.object_id(text, "appointment") or re.fullmatch(r"\D{0,15}(\d{1,9})\D{0,5}", text.strip())
        return found if isinstance(found, str) or found is None else found[1]
    if name == "service":
        kind = "appointment" if tool in ("appointment_slots", "appointment_book") else "protocol"
        found = enum_arguments("appointment_slots" if kind == "appointment" else "protocol_open", text).get("service")
        if found:
            return found
        folded = fold(text)
        for code, service in SERVICE_BY_CODE.items():
            if service.kind == kind and (code.replace("_", " ") in folded or fold(service.name) in folded):
                return code
        # Anything else the citizen reports still has a home: the ombudsman triages it.
        return "ouvidoria" if kind == "protocol" and len(text.split()) >= 3 else None
    if name == "address":
        return extract.address(text) or (text.strip() if len(text.strip()) >= 5 else None)
    if name in ("description", "text"):
        return text.strip() if len(text.strip()) >= 3 else None
    return literal_arguments(tool, text).get(name)
