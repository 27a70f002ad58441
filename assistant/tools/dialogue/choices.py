"""Arguments the citizen picks from something shown earlier: which debt, which slot, which appointment.

What was shown is kept in the state as short memos, so "o segundo" or "a multa" can be resolved next turn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from assistant.tools import extract, render
from assistant.tools.catalog import services_in
from assistant.tools.dialogue.turn import ActionOutcome, DialogueSteps, _Turn
from assistant.tools.intent import Reading
from assistant.tools.state import ActionState, Pending
from core.i18n import t
from rag.text import fold

MAX_LISTED = 5


class ChoiceSteps(DialogueSteps):
    def _choice_answer(self, turn: _Turn, pending: Pending, text: str, reading: Reading) -> ActionOutcome | None:
        if reading.howto:
            # "Como emito a segunda via?" is a question, not "a segunda" of the list.
            return None
        listing = pending.awaiting.removeprefix("choice:")
        options = _options(turn.state, listing)
        picked = _pick(options, listing, text)
        if picked is None:
            if len(options) == 1 and extract.is_yes(text):
                picked = options[0]
            elif self._new_request(reading, pending) or not options or not _looks_like_a_pick(text):
                return None
            else:
                return self._reask(turn, pending, f"action.ask_again.choice.{listing}", count=len(options))
        key = {"debts": "debt_id", "slots": "slot_id", "appointments": "appointment_id"}[listing]
        args = {**pending.arguments, key: str(picked[key])}
        return self._advance(turn, replace(pending, arguments=args, awaiting="", asked=0), text)

    def _resolve(self, turn: _Turn, pending: Pending, text: str) -> Pending | None:
        """Fill ids from what the citizen was shown or from a listing call; None when the turn already answered."""
        tool, args = pending.tool, dict(pending.arguments)
        if tool == "payment_second_copy" and not args.get("debt_id"):
            return self._resolve_debt(turn, pending, text)
        if tool == "appointment_book" and not args.get("slot_id"):
            return self._resolve_slot(turn, pending, text)
        if tool == "appointment_cancel" and not args.get("appointment_id"):
            return self._resolve_appointment(turn, pending, text)
        return pending

    def _resolve_debt(self, turn: _Turn, pending: Pending, text: str) -> Pending | None:
        options = [d for d in turn.state.debts if d.get("status") != "pago"]
        fetched: list[Mapping[str, Any]] = []
        if not options:
            result = self._call(turn, "payment_list_debts", {})
            if result is None or not self._ok_or_explain(turn, result, pending):
                return None
            fetched = [d for d in result.data.get("debts", []) if isinstance(d, Mapping) and d.get("status") != "pago"]
            options = [_debt_memo(d) for d in fetched]
            turn.state = replace(turn.state, debts=tuple(options), last_tool="payment_list_debts")
        if not options:
            turn.state = turn.state.with_pending(None)
            turn.say(t("action.debts.none"))
            return None
        hint = str(pending.arguments.get("debt_hint") or "")
        named = _debts_named(options, hint) if hint else []
        if named:
            # "o Pix da multa": only the debts named are in question.
            options = named
            fetched = [d for d in fetched if str(d.get("debt_id")) in {str(n["debt_id"]) for n in named}]
            turn.state = replace(turn.state, debts=tuple(options))
        picked = _pick(options, "debts", text)
        if picked is None and len(options) == 1:
            picked = options[0]
        if picked is not None:
            return replace(pending, arguments={**pending.arguments, "debt_id": str(picked["debt_id"])})
        turn.state = turn.state.with_pending(replace(pending, awaiting="choice:debts", asked=0))
        if fetched:
            turn.say(render.debts(fetched, offer=False))
        elif named:
            turn.say(render.debts(options, offer=False))
        turn.say(t("action.ask.choice.debts"))
        return None

    def _resolve_slot(self, turn: _Turn, pending: Pending, text: str) -> Pending | None:
        options = list(turn.state.slots)
        picked = _pick(options, "slots", text) if options else None
        if picked is not None:
            return replace(pending, arguments={**pending.arguments, "slot_id": str(picked["slot_id"])})
        named = services_in(text, "appointment")
        service = pending.arguments.get("service") or (named[0] if named else None)
        if not service:
            self._ask(turn, replace(pending, awaiting="arg:service"), "action.ask.appointment_slots.service")
            return None
        self._show_slots(turn, service, {})
        return None

    def _resolve_appointment(self, turn: _Turn, pending: Pending, text: str) -> Pending | None:
        options = [a for a in turn.state.appointments if a.get("status", "agendado") == "agendado"]
        if not options and "appointment_list" in self.available():
            result = self._call(turn, "appointment_list", {})
            if result is None or not self._ok_or_explain(turn, result, pending):
                return None
            listed = [a for a in result.data.get("appointments", []) if isinstance(a, Mapping)]
            options = [_appointment_memo(a) for a in listed if a.get("status", "agendado") == "agendado"]
            turn.state = replace(turn.state, appointments=tuple(options))
        if not options:
            self._ask(turn, replace(pending, awaiting="arg:appointment_id", asked=0), "action.ask.no_appointments")
            return None
        picked = _pick(options, "appointments", text)
        if picked is None and len(options) == 1:
            picked = options[0]
        if picked is not None:
            return replace(pending, arguments={**pending.arguments, "appointment_id": str(picked["appointment_id"])})
        turn.state = turn.state.with_pending(replace(pending, awaiting="choice:appointments"))
        turn.say(render.appointments(options))
        turn.say(t("action.ask.choice.appointments"))
        return None

    def _show_slots(self, turn: _Turn, service: str, dates: Mapping[str, Any]) -> None:
        result = self._call(turn, "appointment_slots", {"service": service, **dates})
        if result is None:
            turn.state = turn.state.with_pending(Pending("appointment_slots", {"service": service, **dates}, "retry"))
            return
        if not result.ok:
            turn.state = turn.state.with_pending(None)
            turn.say(result.message or t(f"action.error.{result.error}"))
            return
        listed = [s for s in result.data.get("slots", []) if isinstance(s, Mapping)][:MAX_LISTED]
        memo = tuple(
            {
                "slot_id": str(s.get("slot_id")),
                "starts_at": s.get("starts_at"),
                "location": s.get("location"),
                "service": service,
            }
            for s in listed
        )
        pending = Pending("appointment_book", {"service": service}, "choice:slots") if listed else None
        turn.state = replace(turn.state, slots=memo, pending=pending, last_tool="appointment_slots")
        turn.say(render.slots(listed, service))


def _options(state: ActionState, listing: str) -> list[dict[str, Any]]:
    if listing == "debts":
        return [d for d in state.debts if d.get("status") != "pago"]
    if listing == "slots":
        return list(state.slots)
    return [a for a in state.appointments if a.get("status", "agendado") == "agendado"]


def _pick(options: Sequence[dict[str, Any]], listing: str, text: str) -> dict[str, Any] | None:
    if not options or not text:
        return None
    n = extract.choice(text, len(options))
    if n is not None:
        return options[n - 1]
    if listing == "debts":
        named = _debts_named(options, text)
        return named[0] if len(named) == 1 else None
    if listing == "slots":
        folded = fold(text)
        hour = re.search(r"\b(\d{1,2})\s*(?:h|:|horas?)\s*(\d{2})?", folded)
        days = extract.dates(text)
        if not hour and not days:
            return None
        for slot in options:
            starts = str(slot.get("starts_at") or "")
            if hour and starts[11:13] != f"{int(hour[1]):02d}":
                continue
            if days and starts[:10] != days[0].isoformat():
                continue
            return slot
        return None
    return None


def _looks_like_a_pick(text: str) -> bool:
    folded = fold(text)
    return (
        bool(re.search(r"\d|primeir|segund|terceir|quart|quint|ultim|opcao|esse|este|dele", folded))
        and len(folded.split()) <= 8
    )


def _debts_named(options: Sequence[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The debts the citizen names by kind ("a multa") or by a word of their reference ("a TLP")."""
    words = set(re.findall(r"[a-z0-9]{3,}", fold(text)))
    kinds = {k for k in ("iptu", "taxa", "multa") if k in words}
    named = [d for d in options if fold(str(d.get("kind"))) in kinds]
    if named:
        return named
    return [
        d for d in options if words & (set(re.findall(r"[a-z]{3,}", fold(str(d.get("reference") or "")))) - {"parcela"})
    ]


def _debt_memo(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "debt_id": str(d.get("debt_id")),
        "kind": d.get("kind"),
        "reference": d.get("reference"),
        "status": d.get("status"),
        "amount": d.get("amount"),
        "due_date": d.get("due_date"),
    }


def _appointment_memo(a: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "appointment_id": str(a.get("appointment_id")),
        "service": a.get("service"),
        "starts_at": a.get("starts_at"),
        "status": a.get("status", "agendado"),
    }
