"""Turns a follow-up ("e quanto custa?") into a standalone query using the conversation history."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.compose import cue_terms, question_terms
from rag.text import content_terms, fold

# Openers and pronouns that only make sense with an earlier question.
_FOLLOWUP = re.compile(
    r"^(e|mas|entao|tambem|ai|e se|e pra|e para|e o|e a|e os|e as|e quanto|e qual|e onde|e quando|e como)\b"
    r"|\b(isso|disso|nisso|esse|essa|desse|dessa|nesse|nessa|ele|ela|dele|dela|la|ali|mesmo|mesma)\b"
)


def is_followup(message: str) -> bool:
    folded = fold(message).strip()
    if _FOLLOWUP.search(folded) or len(content_terms(message)) <= 2:
        return True
    # "precisa marcar horário?" names no topic, only the kind of fact it wants: the topic is the earlier one.
    return set(question_terms(message)) <= cue_terms(message)


def rewrite_query(message: str, previous_questions: Sequence[str]) -> str:
    """Prefix the last question when the message depends on it; standalone messages pass through.

    Concatenation keeps the topic words the retriever needs and costs no model call, which on two CPU cores
    is worth several seconds per turn (docs/decisions/0005-follow-up-rewrite.md).
    """
    if not previous_questions or not is_followup(message):
        return message
    return f"{previous_questions[-1]} {message}"
