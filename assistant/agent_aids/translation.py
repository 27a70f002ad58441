"""Translation between a citizen and the agent serving them (docs/decisions/0032-handoff-translation.md), also
used for the assistant's own answers.

A citizen's message in a language other than the agent's is shown to the agent with its translation; the agent's
reply reaches the citizen translated, with the agent's own words below it (the handoff stores and shows both:
handoff.annotations). Translation never blocks a message: a failed or unusable translation leaves the
message as it was written.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Final, Protocol

from assistant.language import identify_language
from assistant.llm import ChatMessage, ChatModel, LLMError, complete
from core.privacy import Pseudonymizer, find_pii

log = logging.getLogger(__name__)

LANGUAGE_NAMES: Final[dict[str, str]] = {"pt-BR": "Brazilian Portuguese", "es": "Spanish", "en": "English"}
_BASES: Final[dict[str, str]] = {"pt": "pt-BR", "es": "es", "en": "en"}


def normalize_language(code: str | None) -> str | None:
    """The supported language a BCP-47 tag names ("pt" and "pt-PT" read as "pt-BR", "en-US" as "en"); None for
    other languages, which are not translated."""
    if not code:
        return None
    return _BASES.get(code.strip().split("-")[0].split("_")[0].lower())


class TranslationError(Exception):
    """No usable translation: the model failed or what it wrote is not a translation of the text."""


class Translator(Protocol):
    @property
    def name(self) -> str: ...

    def translate(self, text: str, source: str, target: str) -> str:
        """`text` from `source` into `target` (codes of LANGUAGE_NAMES); raises TranslationError."""
        ...


def translate_or_none(translator: Translator, text: str, source: str, target: str) -> str | None:
    """The translation, or None when there is none to show; the failure is logged, never raised."""
    try:
        return translator.translate(text, source, target)
    except TranslationError as exc:
        # The text itself is personal data: only the reason is logged.
        log.warning(
            "translation %s -> %s by %s failed, message left untranslated: %s", source, target, translator.name, exc
        )
        return None


# Measured (bench/translation.py, decision 0032): with the rules in a long system prompt the embedded 1.5B model
# sometimes "translated" the rules instead of the message; next to the text, as below, it did not.
_SYSTEM: Final = "You are a professional translator. You only translate; you never answer or comment."
_REQUEST: Final = (
    "Translate this {source} text into {target}. Keep numbers, names and placeholders like <CPF_1> exactly as "
    "written. Reply with the translation only.\n\n{source}: {text}\n{target}:"
)
_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {"translation": {"type": "string"}},
    "required": ["translation"],
}
# Labels small models put before the translation despite the prompt.
_LEAD: Final = re.compile(
    r"^\s*(?:here(?:'s| is) the translation[^:\n]*:|translation[^:\n]{0,40}:|tradução[^:\n]{0,40}:|"
    r"traducción[^:\n]{0,40}:)\s*",
    re.IGNORECASE,
)
_QUOTES: Final = {'"': '"', "“": "”", "«": "»", "'": "'"}
_WORDS: Final = re.compile(r"[^\W_]+")
_PLACEHOLDER: Final = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")  # as core.privacy.Pseudonymizer writes them


class LLMTranslator:
    """The chat model translates; a remote model sees personal data as placeholders, restored in the result.

    `constrained` asks for JSON `{"translation": …}` through `complete_json` (a grammar on llama.cpp) instead of
    plain text; both were measured (bench/translation.py).
    """

    name = "llm"

    def __init__(
        self,
        model: ChatModel,
        *,
        llm_is_local: bool = True,
        max_tokens: int = 512,
        max_chars: int = 4000,
        constrained: bool = False,
    ) -> None:
        self._model = model
        self._local = llm_is_local
        self._max_tokens = max_tokens
        self._max_chars = max_chars
        self._constrained = constrained

    def translate(self, text: str, source: str, target: str) -> str:
        if source not in LANGUAGE_NAMES or target not in LANGUAGE_NAMES or source == target:
            raise TranslationError(f"unsupported language pair {source} -> {target}")
        if len(text) > self._max_chars:
            raise TranslationError(f"text longer than {self._max_chars} characters")
        pseudo = Pseudonymizer()
        prompt_text = text if self._local else pseudo.pseudonymize(text)
        messages: list[ChatMessage] = [
            {"role": "system", "content": _SYSTEM},
            {
                "role": "user",
                "content": _REQUEST.format(
                    source=LANGUAGE_NAMES[source], target=LANGUAGE_NAMES[target], text=prompt_text
                ),
            },
        ]
        # About 4 characters a token; a translation is rarely more than twice as long as its text.
        budget = min(self._max_tokens, 48 + len(prompt_text) // 2)
        try:
            if self._constrained:
                done = self._model.complete_json(messages, schema=_SCHEMA, max_tokens=budget)
                raw = _json_translation(done.text)
            else:
                done = complete(self._model, messages, max_tokens=budget)
                raw = done.text
        except LLMError as exc:
            raise TranslationError(f"model error: {exc}") from exc
        if done.usage.completion_tokens is not None and done.usage.completion_tokens >= budget:
            raise TranslationError(f"cut off at {budget} tokens")
        translation = _clean(raw, LANGUAGE_NAMES[target])
        _check(prompt_text, translation, source)
        restored = translation if self._local else pseudo.restore(translation)
        lost = [hit.kind for hit in find_pii(text) if hit.text not in restored]
        if lost:
            raise TranslationError(f"personal data left out or altered: {', '.join(sorted(set(lost)))}")
        return restored


def _json_translation(raw: str) -> str:
    try:
        value = json.loads(raw)["translation"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TranslationError("unreadable JSON answer") from exc
    if not isinstance(value, str):
        raise TranslationError("unreadable JSON answer")
    return value


def _clean(raw: str, target_name: str) -> str:
    text = _LEAD.sub("", raw.strip(), count=1).strip()
    if text.casefold().startswith(f"{target_name.casefold()}:"):  # the prompt's own label, repeated
        text = text[len(target_name) + 1 :].strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


def _check(text: str, translation: str, source: str) -> None:
    """Refuse what is not a translation of `text`: nothing, an answer or a ramble, or the text itself."""
    if not translation:
        raise TranslationError("empty answer")
    if len(translation) > 2 * len(text) + 40:
        raise TranslationError(f"answer of {len(translation)} characters for a text of {len(text)}")
    if _WORDS.findall(translation.casefold()) == _WORDS.findall(text.casefold()):
        raise TranslationError("answer repeats the text")
    if identify_language(translation) == source:
        raise TranslationError(f"answer is still in {source}")
    if set(_PLACEHOLDER.findall(translation)) - set(_PLACEHOLDER.findall(text)):
        raise TranslationError("answer has placeholders the text has not (the prompt's own words)")
