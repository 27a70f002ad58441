"""Text normalisation shared by lexical search, query handling and answer checks."""

from __future__ import annotations

import re
from functools import lru_cache

from unidecode import unidecode

_WORD = re.compile(r"[a-z0-9]{2,}")
_RAW_WORD = re.compile(r"[^\W_]{2,}")
# Citizens often type without accents; the Snowball stemmer only strips "-ção/-ções/-ão" with their accents.
_UNACCENTED_SUFFIXES = (("coes", "ções"), ("cao", "ção"), ("oes", "ões"), ("aes", "ães"), ("ao", "ão"))


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


def _with_suffix_accents(word: str) -> str:
    if word.isascii() and len(word) > 4:
        for plain, accented in _UNACCENTED_SUFFIXES:
            if word.endswith(plain):
                return word[: -len(plain)] + accented
    return word


def content_terms(text: str) -> list[str]:
    """Stemmed, accent-folded words without stopwords.

    Stemming happens before folding, so "vacinação", "vacinacao" and "vacinas" share the stem "vacin".
    """
    stop = _stopwords()
    kept = [_with_suffix_accents(w) for w in _RAW_WORD.findall(text.lower()) if fold(w) not in stop]
    return [fold(stem) for stem in _stemmer().stemWords(kept)]
