"""Where a learned intent may change what the rules decided, and where it may not.

The rules stay the first pass: a guess is looked at only when they found nothing but a question for the knowledge
base, and it then needs a foothold in the message's own words, so that a message near the examples only by its
topic ("a coleta passa às terças") is not taken for what the examples ask:

- "person": the message names a person at all ("gente", "alguém", "atender"); the conversation goes to a person.
- "angry": the message carries one mark of frustration (`assistant.routing.frustration`), the guess standing for
  the second one the rules want; the action dialogue offers a person, as it does for the rules' angry citizen.
- "smalltalk": no numbers and no tool's subject; answered as small talk of the kind its phrases say.
- "tool:<name>": the rules already read that tool's subject in the message but not a request to act ("Estou com
  algum imposto em atraso?"), and it is not a "como faço..." question; the action dialogue starts the tool.

Never over a request the rules act on, identity data, a protocol number or an instruction aimed at the tools.
"""

from __future__ import annotations

import re

from assistant.intents import IntentGuess
from assistant.routing import Routing, frustration, mentions_person, small_talk_kind
from assistant.tools import extract
from assistant.tools.intent import Reading, is_action, read

# The tools a guess may start; verification and the handoff have their own ways in.
_STARTABLE = frozenset(
    {
        "payment_list_debts",
        "payment_second_copy",
        "protocol_open",
        "protocol_status",
        "protocol_list",
        "appointment_slots",
        "appointment_list",
        "appointment_cancel",
        "citizen_lookup",
    }
)


def open_to_guess(routing: Routing, text: str) -> bool:
    """Whether any guess could change what the rules decided for this message (if not, no need to read it)."""
    return routing.route == "knowledge" and _open(read(text), text)


def overrule(routing: Routing, guess: IntentGuess, text: str) -> Routing:
    """`routing` with the guess applied where this policy allows it; `routing` itself everywhere else."""
    intent = guess.intent
    if routing.route != "knowledge" or intent is None:
        return routing
    reading = read(text)
    if not _open(reading, text):
        return routing
    if intent == "person" and mentions_person(text):
        return Routing("human", intent=intent)
    if intent == "angry" and frustration(text).marks == 1:
        return Routing("knowledge", intent=intent)
    if intent == "smalltalk" and reading.tool is None and not re.search(r"\d", text):
        return Routing("smalltalk", small_talk_kind(text), intent=intent)
    tool = intent.removeprefix("tool:")
    if (
        intent.startswith("tool:")
        and tool == reading.tool
        and tool in _STARTABLE
        and not reading.explicit_howto
        and not reading.third_party
    ):
        return Routing("knowledge", intent=intent)
    return routing


def _open(reading: Reading, text: str) -> bool:
    return not (is_action(reading) or reading.injection or reading.cpfs or extract.protocol_number(text))
