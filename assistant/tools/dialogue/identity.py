"""Identity: the CPF, then the birth date, then `citizen_verify`; and noticing a request for someone else."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import replace

from cryptography.fernet import InvalidToken

from assistant.tools import extract
from assistant.tools.dialogue.turn import ActionOutcome, DialogueSteps, _Turn
from assistant.tools.intent import Reading
from assistant.tools.state import ActionState, Pending
from core.i18n import t

log = logging.getLogger(__name__)


class IdentitySteps(DialogueSteps):
    def _someone_else(self, state: ActionState, reading: Reading) -> bool:
        if reading.third_party:
            return True
        if reading.cpfs and state.verified:
            return any(self._cpf_key(cpf) != state.cpf_key for cpf in reading.cpfs)
        return False

    def _cpf_key(self, cpf: str) -> str:
        digits = re.sub(r"\D", "", cpf)
        return hmac.new(self._identity_key, digits.encode(), hashlib.sha256).hexdigest()[:32]

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
