"""The citizen's language, and the reply-language policy (docs/decisions/0009-reply-language.md).

Knowledge answers stay in Portuguese: the knowledge base, the grounding check and the staff who take over
are Portuguese. Messages the assistant sends from its catalogue (greeting, abstention, handoff, errors)
go out in the citizen's language; a knowledge answer to a Spanish or English message starts with a
one-line notice, in that language, that the answer is in Portuguese.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from core.i18n import DEFAULT_LOCALE, t

if TYPE_CHECKING:
    from assistant.service import AssistantReply

SUPPORTED = ("pt-BR", "es", "en")
# Measured on the suites (decision 0009): below these, pt-BR slang ("blz, valeu", "ok") gets taken for
# Spanish or English; above them every Spanish and English test message of three words or more is caught.
MIN_CONFIDENCE = 0.7
MIN_WORDS = 3
# Catalogue messages the assistant sends verbatim; a reply equal to one of them is sent in the citizen's language.
FIXED_KEYS = (
    "abstain",
    "abstain_internal",
    "handoff",
    "llm_error",
    "greeting",
    "thanks",
    "goodbye",
    "farewell",
    "howareyou",
    "ack",
    "who",
)
_WORD = re.compile(r"[^\W\d_]{2,}")


@lru_cache(maxsize=1)
def _detector() -> Any:
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(Language.PORTUGUESE, Language.SPANISH, Language.ENGLISH).build()


def warm_up() -> None:
    """Build the language detector now: its models take about 1.4 s to load, which the first message must not pay."""
    _detector()


def detect_language(text: str) -> str:
    """BCP-47 tag of a message's language: "pt-BR" unless it is clearly Spanish ("es") or English ("en")."""
    return identify_language(text) or DEFAULT_LOCALE


def identify_language(text: str) -> str | None:
    """ "pt-BR", "es" or "en" when the message clearly is in it; None when it is too short or too mixed to tell."""
    if len(_WORD.findall(text)) < MIN_WORDS:
        return None
    best = _detector().compute_language_confidence_values(text)[0]
    if best.value < MIN_CONFIDENCE:
        return None
    return {"SPANISH": "es", "ENGLISH": "en"}.get(best.language.name, DEFAULT_LOCALE)


def localize(reply: AssistantReply, message: str, organization: str) -> AssistantReply:
    """Apply the reply-language policy to a reply written in pt-BR, and record the reply's language."""
    if reply.language != DEFAULT_LOCALE:
        return reply  # already written in the citizen's language
    language = detect_language(message)
    if language == DEFAULT_LOCALE:
        return replace(reply, language=DEFAULT_LOCALE)
    for key in FIXED_KEYS:
        if reply.answer == t(key, DEFAULT_LOCALE, organization=organization):
            return replace(reply, answer=t(key, language, organization=organization), language=language)
    if reply.decision == "answered" and reply.route == "knowledge":
        return replace(reply, answer=f"{t('language_notice', language)}\n\n{reply.answer}", language=DEFAULT_LOCALE)
    return replace(reply, language=DEFAULT_LOCALE)
