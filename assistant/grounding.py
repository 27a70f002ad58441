"""Checks that an answer cites only what was retrieved and says nothing the cited passages do not support."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.text import content_terms, fold
from rag.types import ScoredChunk

_CITATION = re.compile(r"\[(\d{1,2})\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
# Numbers carry the facts citizens act on (values, deadlines, phones, addresses): each must appear in context.
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
DONT_KNOW = "NAO_SEI"


@dataclass(frozen=True)
class GroundingResult:
    answer: str
    cited: list[int]  # 1-based indices into the context passages, in order of first use
    supported: bool
    support: float  # share of the answer's content words found in the passages
    reason: str = ""


def is_dont_know(text: str) -> bool:
    folded = fold(text)
    return "nao_sei" in folded or "nao sei" in folded[:40] or folded.strip(" .") in {"", "nao"}


def _sentences(text: str) -> list[str]:
    body = _CITATION.sub("", text)
    return [s.strip() for s in _SENTENCE.split(body) if len(content_terms(s)) >= 2]


_LIST_MARKER = re.compile(r"(?m)^\s*\d{1,2}[.)]\s+")


def numbers_in(text: str) -> set[str]:
    """The numbers of a text, list markers left out, written without separators ("1.500,00" -> "150000")."""
    return {re.sub(r"[.,]", "", n) for n in _NUMBER.findall(_LIST_MARKER.sub(" ", text))}


def check_answer(
    answer: str,
    passages: Sequence[ScoredChunk],
    question: str = "",
    *,
    min_support: float = 0.6,
) -> GroundingResult:
    """Validate citations and lexical support; unknown citation numbers are removed, not trusted."""
    text = answer.strip()
    if not text or is_dont_know(text):
        return GroundingResult("", [], False, 0.0, "model declined")
    n = len(passages)
    # Small models number their citations unreliably (the right fact, the neighbour's [2]); sources are
    # attributed below from the words of each sentence, and the model's own markers are dropped.
    text = _CITATION.sub("", text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()

    context_terms = [set(content_terms(p.chunk.embedding_text())) for p in passages]
    all_terms = set().union(*context_terms) if context_terms else set()
    question_terms = set(content_terms(question))
    context_numbers = set().union(*(numbers_in(p.chunk.embedding_text()) for p in passages)) | numbers_in(question)

    sentences = _sentences(text)
    if not sentences:
        return GroundingResult(text, [], False, 0.0, "no content")
    # Support is counted over words, not sentences: a one-line lead-in ("siga os passos abaixo") should not
    # sink an answer whose facts all come from the passages. Words echoed from the question don't count.
    found = total = 0
    best_for: list[int] = []
    for s in sentences:
        terms = set(content_terms(s)) - question_terms or set(content_terms(s))
        found += len(terms & all_terms)
        total += len(terms)
        overlaps = [len(terms & context_terms[j]) for j in range(n)]
        if overlaps and max(overlaps) > 0:
            best_for.append(overlaps.index(max(overlaps)) + 1)
    unsupported_numbers = numbers_in(_CITATION.sub("", text)) - context_numbers
    support = found / total if total else 0.0
    cited = list(dict.fromkeys(best_for))
    best_doc = passages[0].chunk.doc_id if passages else None
    if cited and best_doc not in {passages[i - 1].chunk.doc_id for i in cited}:
        # Small models happily quote a neighbouring article (a parking fee for a business licence): an answer
        # must rest on the most relevant document retrieved.
        return GroundingResult(text, cited, False, 0.0, "does not cite the best-matching document")
    if unsupported_numbers:
        return GroundingResult(text, cited, False, support, f"numbers not in context: {sorted(unsupported_numbers)}")
    if support < min_support:
        return GroundingResult(text, cited, False, support, f"support {support:.2f} below {min_support}")
    return GroundingResult(text, cited, True, support)
