"""Which chat model an evaluation uses: the configured one, or the deterministic scripted one for CI."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from assistant.grounding import DONT_KNOW
from assistant.llm import ChatMessage, ChatModel
from assistant.testing import ScriptedChatModel
from core.settings import Settings
from rag.chunking import split_sentences
from rag.text import content_terms

SCRIPTED = "scripted"
NO_TOOL = '{"tool": "none"}'
_PASSAGE = re.compile(
    r"^\[(\d+)\] [^\n]*\n(.*?)(?=^\[\d+\] |\n\nConversa anterior:|\n\nPergunta do cidadão:)", re.S | re.M
)
_QUESTION = re.compile(r"Pergunta do cidadão:\s*(.*)\Z", re.S)


def extractive_answer(messages: Sequence[ChatMessage]) -> str:
    """Answer with the passage sentence sharing most words with the question, cited; NAO_SEI when none does.

    Any prompt that is not an answer prompt (the tool chooser's) gets `{"tool": "none"}`.

    Deterministic and instant, it stands in for the language model so CI can check everything around it
    (routing, retrieval, abstention, grounding, citations, recording) on every commit.
    """
    prompt = messages[-1]["content"] if messages else ""
    found = _QUESTION.search(prompt)
    if found is None:
        return NO_TOOL  # any other prompt is the tool chooser's: knowledge questions call no tool
    question = set(content_terms(found.group(1)))
    best: tuple[int, int, str] | None = None
    for match in _PASSAGE.finditer(prompt):
        n = int(match.group(1))
        for sentence in split_sentences(" ".join(match.group(2).split())):
            if len(sentence.split()) < 5:
                continue
            overlap = len(question & set(content_terms(sentence)))
            if overlap and (best is None or overlap > best[0]):
                best = (overlap, n, sentence)
    if best is None:
        return DONT_KNOW
    _, n, sentence = best
    return f"{sentence.rstrip('.:;')}. [{n}]"


def scripted_model(calls: int) -> ScriptedChatModel:
    """A ScriptedChatModel that answers extractively up to `calls` times, then fails loudly.

    A budget, not a script (`exact=False`): how many calls a run makes depends on its questions.
    """
    return ScriptedChatModel([extractive_answer] * calls, model_id="scripted-extractive", exact=False)


def resolve_model(settings: Settings, name: str | None, *, calls: int = 10_000) -> tuple[Settings, ChatModel | None]:
    """Interpret `--model`: "scripted", a .gguf path, or a model name for the configured backend.

    Returns the settings to build services with and the model to inject (None: build the configured one).
    """
    if not name:
        return settings, None
    if name == SCRIPTED:
        return settings, scripted_model(calls)
    if name.endswith(".gguf"):
        return settings.model_copy(update={"llm_backend": "llamacpp", "llm_model_path": Path(name)}), None
    if settings.llm_backend == "openai":
        return settings.model_copy(update={"openai_model": name}), None
    return settings.model_copy(update={"llm_model": name}), None
