"""The action dialogue: from a citizen's request to a tool call, asking what is missing one thing at a time.

Order for a request: the arguments only the citizen can give (service, report, address, numbers) → a verified
identity when the tool touches their own data (CPF, then birth date, then `citizen_verify`) → arguments taken
from what they were shown (which debt, which slot) → an explicit "sim" before changing anything → the call →
a short pt-BR rendering. The state between turns lives in the database (assistant.tools.state).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from cryptography.fernet import Fernet, InvalidToken

from assistant.llm import Usage
from assistant.routing import frustration
from assistant.tools import extract, render
from assistant.tools.catalog import POLICIES, SERVICE_BY_CODE, TEAMS, service_name, services_in, team_for
from assistant.tools.chooser import RuleChooser, ToolChoice, ToolChooser
from assistant.tools.intent import Reading, enum_arguments, is_action, literal_arguments, read
from assistant.tools.session import ToolResult, ToolSession, ToolUnavailable
from assistant.tools.state import STATE_EVENT, ActionState, Pending, current_state
from atende.i18n import t
from atende.privacy import mask
from atende.store import ConversationStore, EventDraft
from rag.text import fold

log = logging.getLogger(__name__)

MAX_ASKS = 2  # the same question at most this many times more before giving up and offering a person
MAX_LISTED = 5
_DATE_LIKE = re.compile(
    r"(?<!\d)\d{1,2}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{2,4}(?!\d)"  # 15/03/1985, 15-3-85
    r"|(?<!\d)\d{4}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{1,2}(?!\d)"  # 1985-03-15, as the extractor also reads
    r"|(?<!\d)\d{8}(?!\d)"
)
# The written forms the extractor reads as a birth date: "15 de março de 1985", "15 mar 1985", "15/mar/85".
_SPELLED_DATE = re.compile(
    r"\d{1,2}\s*(?:de|/|-|\.)?\s*(?:janeiro|fevereiro|mar[cç]o|abril|maio|junho|julho|agosto|setembro|outubro|"
    r"novembro|dezembro|jan|fev|mar|abr|mai|jun|jul|ago|set|out|nov|dez)\.?\s*(?:do ano de|de|/|-|\.)?\s*"
    r"\d{2,4}(?!\d)"
    r"|(?<!\d)\d{1,2}\s+\d{1,2}\s+\d{4}(?!\d)",
    re.I,
)


def redact(text: str) -> str:
    """Masked for the turn log and the stored message: personal data and, since this is the verification
    dialogue, any date."""
    return _SPELLED_DATE.sub("[DATA]", _DATE_LIKE.sub("[DATA]", mask(text)))


class Sealer(Protocol):
    """Encrypts a value the dialogue keeps between turns (`atende.lgpd.crypto.FieldCipher` is one)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


class ProcessSealer:
    """A key that lives as long as the process: for a dialogue used without the app's LGPD cipher."""

    def __init__(self) -> None:
        self._fernet = Fernet(Fernet.generate_key())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode("ascii")).decode()


@dataclass
class ActionOutcome:
    """What the dialogue did this turn. `passthrough`: not an action; the pipeline answers, the state is kept."""

    answer: str
    state: ActionState
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    decision: Literal["answered", "handoff"] = "answered"
    handoff_team: str | None = None
    used_model: bool = False
    usage: Usage = field(default_factory=Usage)
    # The turn carried identity data (a birth date, a CPF): the turn log masks dates too.
    sensitive: bool = False
    error: str | None = None
    reason: str = ""
    passthrough: bool = False
    state_changed: bool = True

    def state_event(self) -> EventDraft | None:
        """The event that stores the new state, or None when the turn left it as it was."""
        if not self.state_changed:
            return None
        return EventDraft(STATE_EVENT, self.state.as_payload())

    def logged_calls(self) -> list[dict[str, Any]]:
        """The tool calls with their arguments masked, for the turn log."""
        return [
            {**call, "arguments": {k: masked_argument(k, v) for k, v in call.get("arguments", {}).items()}}
            for call in self.tool_calls
        ]


def masked_argument(name: str, value: Any) -> Any:
    if name == "birth_date":
        return "[DATA]"
    return mask(value) if isinstance(value, str) else value


@dataclass
class _Turn:
    conversation_id: str
    state: ActionState
    loaded: ActionState
    parts: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    choice: ToolChoice | None = None
    sensitive: bool = False
    error: str | None = None
    decision: Literal["answered", "handoff"] = "answered"
    handoff_team: str | None = None

    def say(self, text: str) -> None:
        self.parts.append(text)

    def outcome(self, reason: str = "") -> ActionOutcome:
        choice = self.choice or ToolChoice(None)
        return ActionOutcome(
            state_changed=self.state != self.loaded,
            answer="\n\n".join(p for p in self.parts if p),
            state=self.state,
            tool_calls=self.calls,
            decision=self.decision,
            handoff_team=self.handoff_team,
            used_model=choice.used_model,
            usage=choice.usage,
            sensitive=self.sensitive,
            error=self.error or choice.error,
            reason=reason,
        )


class ActionDialogue:
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

    def handle(self, conversation_id: str, text: str, route: str) -> ActionOutcome | None:
        """The turn's outcome when the message is (part of) an action; None when the pipeline should answer."""
        state = current_state(self.store.list_events(conversation_id))
        turn = _Turn(conversation_id, state, state)
        if route == "human":
            return self._handoff(turn, text, reason=text)
        reading = read(text)
        if state.pending is not None:
            # An angry message is not an answer to "what is your CPF?"; a yes or no to a question still is.
            if state.pending.awaiting not in ("confirm", "retry") and _needs_empathy(reading, text):
                return self._offer_person(turn, text)
            outcome = self._continue(turn, text, reading)
            if outcome is not None:
                return _acknowledge_anger(outcome, text)
            if route == "smalltalk":
                return None
            # Something else: the open question is dropped, whatever happens next.
            turn.state = state.with_pending(None)
        elif route == "smalltalk":
            return None
        if _needs_empathy(reading, text):
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
        turn.choice = choice
        if choice.tool is None:
            if turn.state != state:
                return ActionOutcome("", turn.state, passthrough=True, used_model=choice.used_model, usage=choice.usage)
            return None
        policy = POLICIES[choice.tool]
        if policy.needs_identity and choice.tool != "citizen_verify" and self._someone_else(turn.state, reading):
            turn.say(t("action.refuse.third_party"))
            return turn.outcome("third_party")
        return _acknowledge_anger(self._start(turn, choice.tool, dict(choice.arguments), text), text)

    def _someone_else(self, state: ActionState, reading: Reading) -> bool:
        if reading.third_party:
            return True
        if reading.cpfs and state.verified:
            return any(self._cpf_key(cpf) != state.cpf_key for cpf in reading.cpfs)
        return False

    def _cpf_key(self, cpf: str) -> str:
        digits = re.sub(r"\D", "", cpf)
        return hmac.new(self._identity_key, digits.encode(), hashlib.sha256).hexdigest()[:32]

    # Starting and advancing a request

    def _start(self, turn: _Turn, tool: str, args: dict[str, Any], text: str) -> ActionOutcome:
        if tool == "citizen_verify":
            return self._verification_step(turn, None, text)
        if tool == "handoff_to_human":
            return self._handoff(turn, text, reason=args.get("reason") or text, team=args.get("team"))
        return self._advance(turn, Pending(tool, args, awaiting=""), text)

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

    # Identity

    def _verification_step(self, turn: _Turn, then: Pending | None, text: str) -> ActionOutcome:
        """Start (or finish at once) the verification; `then` is the request waiting for it."""
        cpfs = extract.cpfs(text)
        when = extract.birth_date(text)
        if cpfs:
            turn.sensitive = True
        if cpfs and when:
            return self._verify(turn, then, cpfs[0], when)
        target = then or Pending("citizen_verify")
        if cpfs:
            waiting = replace(target, awaiting="birth_date", asked=0, cpf_encrypted=self._sealer.encrypt(cpfs[0]))
            return self._ask(turn, waiting, "action.ask.birth_date")
        intro = "action.ask.cpf_for" if then is not None else "action.ask.cpf"
        return self._ask(turn, replace(target, awaiting="cpf", asked=0), intro)

    def _verification_answer(self, turn: _Turn, pending: Pending, text: str, reading: Reading) -> ActionOutcome | None:
        then = None if pending.tool == "citizen_verify" else replace(pending, cpf_encrypted=None)
        if pending.awaiting == "cpf":
            cpfs = extract.cpfs(text)
            if not cpfs:
                if self._new_request(reading, pending) or reading.howto:
                    return None
                return self._reask(turn, pending, "action.ask_again.cpf")
            when = extract.birth_date(text)
            if when:
                return self._verify(turn, then, cpfs[0], when)
            waiting = replace(pending, awaiting="birth_date", asked=0, cpf_encrypted=self._sealer.encrypt(cpfs[0]))
            return self._ask(turn, waiting, "action.ask.birth_date")
        when = extract.birth_date(text, compact=True)
        if when is None:
            if self._new_request(reading, pending) or reading.howto:
                return None
            return self._reask(turn, pending, "action.ask_again.birth_date")
        cpf = self._recent_cpf(turn.conversation_id, text, pending)
        if cpf is None:
            return self._ask(turn, replace(pending, awaiting="cpf", asked=0), "action.ask.cpf")
        return self._verify(turn, then, cpf, when)

    def _recent_cpf(self, conversation_id: str, text: str, pending: Pending) -> str | None:
        found = extract.cpfs(text)
        if found:
            return found[0]
        if pending.cpf_encrypted:
            try:
                return self._sealer.decrypt(pending.cpf_encrypted)
            except (InvalidToken, ValueError):
                # Sealed by another process's throwaway key, or before a key change: ask again.
                log.info("the CPF kept for %s cannot be decrypted; asking for it again", conversation_id)
                return None
        # A conversation that started before messages were stored redacted still has it in clear.
        for message in reversed(self.store.list_messages(conversation_id, limit=8)):
            if message.role == "user":
                found = extract.cpfs(message.text)
                if found:
                    return found[-1]
        return None

    def _verify(self, turn: _Turn, then: Pending | None, cpf: str, birth_date: str) -> ActionOutcome:
        turn.sensitive = True
        result = self._call(turn, "citizen_verify", {"cpf": cpf, "birth_date": birth_date})
        if result is None:
            turn.state = turn.state.with_pending(None if then is None else replace(then, awaiting="cpf"))
            return turn.outcome("verify unavailable")
        if not result.ok:
            if result.error == "invalid_cpf":
                target = then or Pending("citizen_verify")
                return self._ask(turn, replace(target, awaiting="cpf", asked=0), "action.ask_again.cpf")
            turn.state = turn.state.with_pending(None)
            turn.say(result.message or t(f"action.error.{result.error}"))
            return turn.outcome(f"verify {result.error}")
        if not result.data.get("verified"):
            left = int(result.data.get("attempts_left") or 0)
            if left <= 0:
                turn.state = turn.state.with_pending(None)
                turn.say(t("action.verify.blocked"))
                return turn.outcome("verify blocked")
            target = then or Pending("citizen_verify")
            return self._ask(turn, replace(target, awaiting="cpf", asked=0), "action.verify.failed", left=left)
        first_name = result.data.get("first_name") or None
        turn.state = replace(
            turn.state,
            verified=True,
            first_name=first_name,
            pending=None,
            debts=(),
            appointments=(),
            last_tool="citizen_verify",
        )
        turn.state = replace(turn.state, cpf_key=self._cpf_key(cpf))
        turn.say(t("action.verify.ok_named" if first_name else "action.verify.ok", name=first_name or ""))
        if then is None:
            turn.say(t("action.verify.what_next"))
            return turn.outcome("verified")
        return self._advance(turn, then, "")

    # Arguments the citizen picks from something shown earlier

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

    # Calling

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

    # Handoff

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


# Helpers


def _acknowledge_anger(outcome: ActionOutcome, text: str) -> ActionOutcome:
    """An angry citizen whose request is being done hears first that they were heard, and that a person is there."""
    if outcome.decision == "handoff" or not outcome.answer or not frustration(text).angry:
        return outcome
    return replace(outcome, answer=f"{t('action.empathy')}\n\n{outcome.answer}")


def _needs_empathy(reading: Reading, text: str) -> bool:
    """An angry citizen is offered a person first, unless they ask something the assistant can simply do.

    A question on how things work still gets its answer, and so does a request worded as one ("quero a
    segunda via"), except a new report of a problem they say was already reported and not solved ("já reclamei
    três vezes do buraco"). An outburst that only touches a tool's subject ("fui cobrada duas vezes na segunda
    via!") is not a request for it. Identity data and protocol numbers are answers to act on, whatever the tone.
    """
    upset = frustration(text)
    if not upset.angry or reading.explicit_howto or reading.cpfs or extract.protocol_number(text):
        return False
    if reading.tool is None or not is_action(reading) or not reading.request:
        return True
    return reading.tool == "protocol_open" and upset.again


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


def _team_of_pending(state: ActionState) -> str | None:
    tool = state.pending.tool if state.pending else state.last_tool
    if tool in ("payment_list_debts", "payment_second_copy"):
        return "tributos"
    return None
