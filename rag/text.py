"""Text normalisation shared by lexical search, query handling and answer checks."""

from __future__ import annotations

import re
from functools import lru_cache

from unidecode import unidecode

_WORD = re.compile(r"[a-z0-9]{2,}")


def fold(text: str) -> str:
    """Lowercase and strip accents, so 'matrícula' and 'matricula' match (citizens often skip accents)."""
    return unidecode(text).lower()


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_PORTUGUESE

    return frozenset(fold(w) for w in STOPWORDS_PORTUGUESE)


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("portuguese")


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def content_terms(text: str) -> list[str]:
    """Stemmed, accent-folded words without stopwords."""
    stop = _stopwords()
    kept = [w for w in words(text) if w not in stop]
    return list(_stemmer().stemWords(kept))
