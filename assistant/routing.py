"""Cheap, deterministic routing of a message before any retrieval or model call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rag.text import fold

Route = Literal["human", "smalltalk", "knowledge", "action"]
SmallTalk = Literal["greeting", "thanks", "goodbye", "howareyou", "who", "ack"]

_HUMAN = re.compile(
    r"\b(falar|conversar|chamar|quero|queria|preciso|passa|transfere|transferir|me passe|atendimento)\b"
    r"[^.?!]{0,30}\b(atendentes?|humanos?|pessoas?( de verdade| real)?|alguem|operador|funcionari[oa]s?|servidor)\b"
    r"|^\s*(um |uma )?(atendente|humano|pessoa)\s*(por favor|pfv|pf)?\s*[!.?]*\s*$"
)

_SMALLTALK: list[tuple[SmallTalk, re.Pattern[str]]] = [
    ("howareyou", re.compile(r"\b(tudo (bem|bom|certo)|como (vai|voce esta|vc esta|vc ta|voce ta))\b")),
    (
        "who",
        re.compile(r"\b(quem (e|eh) voce|quem e vc|voce e (um )?(robo|bot|humano)|vc e (um )?(robo|bot))\b"),
    ),
    ("thanks", re.compile(r"\b(obrigad[oa]|obg|brigad[oa]|valeu|vlw|agradeco|grat[oa])\b")),
    ("goodbye", re.compile(r"\b(tchau|ate (logo|mais|breve)|falou|flw)\b")),
    (
        "greeting",
        re.compile(r"\b(oi+|ola|opa|eai|e ai|bom dia|boa tarde|boa noite|hello|hi|hey|saudacoes|alo)\b"),
    ),
]
_FILLER = re.compile(
    r"\b(oi+|ola|opa|eai|e ai|bom|boa|dia|tarde|noite|tudo|bem|bom|certo|como|vai|voce|vc|esta|ta|obrigad[oa]|"
    r"obg|brigad[oa]|muito|mto|valeu|vlw|agradeco|grat[oa]|tchau|ate|logo|mais|breve|falou|flw|hello|hi|hey|"
    r"quem|e|eh|um|robo|bot|humano|saudacoes|alo|pela|ajuda|atencao|por|favor|pfv|ok|blz|beleza|entendi|"
    r"certo|show|top|legal|perfeito|isso|sim|nao|nada|mesmo|prefeitura|pessoal|gente|amigo|amiga|senhor|senhora)\b"
)


@dataclass(frozen=True)
class Routing:
    route: Route
    smalltalk: SmallTalk | None = None


def route_message(text: str) -> Routing:
    folded = fold(text)
    if _HUMAN.search(folded):
        return Routing("human")
    leftover = re.sub(r"[\W\d_]+", " ", _FILLER.sub(" ", folded)).strip()
    # A message of bare numbers ("983.690.060-86 15/03/1985", "2026-000123") is data, not small talk.
    if not leftover and not re.search(r"\d{3}", folded):
        for kind, pattern in _SMALLTALK:
            if pattern.search(folded):
                return Routing("smalltalk", kind)
        if folded.strip(" !.?"):
            return Routing("smalltalk", "ack")
    return Routing("knowledge")
