"""The agent's copilot: a suggested reply grounded in the knowledge base, internal articles included.

It reuses the assistant's retrieval, prompt and grounding check, so a suggestion is held to the same standard as
a bot answer; it is only ever shown to the agent, who edits it before sending (nothing is sent from here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.grounding import check_answer
from assistant.llm import ChatModel, LLMError, complete
from assistant.prompts import answer_messages
from core.i18n import t
from core.privacy import Pseudonymizer, mask
from core.store import MessageView
from rag.index import KnowledgeIndex
from rag.types import Audience

# Tool actions an agent may want next, offered by what the citizen asked (the agent decides; nothing runs here).
_ACTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("open_protocol", re.compile(r"\b(reclama|denúncia|denuncia|buraco|protocolo|solicita)", re.I)),
    ("second_copy", re.compile(r"\b(segunda via|2ª via|boleto|guia|iptu|taxa)", re.I)),
)


@dataclass(frozen=True)
class Suggestion:
    text: str  # empty when nothing in the knowledge base supports an answer
    citations: list[dict[str, Any]]
    actions: list[dict[str, str]]
    question: str
    reason: str = ""
    retrieved: list[str] = field(default_factory=list)  # doc ids, for the acceptance measurement


class Copilot:
    def __init__(
        self,
        model: ChatModel,
        index: KnowledgeIndex,
        *,
        organization: str,
        top_k: int = 3,
        max_tokens: int = 220,
        audiences: tuple[Audience, ...] = ("public", "internal"),
        llm_is_local: bool = True,
    ) -> None:
        self.model = model
        self.index = index
        self.organization = organization
        self.top_k = top_k
        self.max_tokens = max_tokens
        self.audiences = audiences
        self.llm_is_local = llm_is_local

    def suggest(self, messages: Sequence[MessageView]) -> Suggestion:
        question = _last_question(messages)
        actions = [
            {"action": name, "label": t(f"console.action.{name}")} for name, rx in _ACTIONS if rx.search(question)
        ]
        if not question:
            return Suggestion("", [], actions, question, reason="no_question")
        query = mask(question)
        hits = self.index.retrieve(query, self.top_k, self.audiences)
        if not hits:
            return Suggestion("", [], actions, question, reason="no_passages")
        # As for the assistant's answers: a remote provider sees typed placeholders, restored in the suggestion.
        pseudo = Pseudonymizer()
        prompt_question = question if self.llm_is_local else pseudo.pseudonymize(question)
        try:
            raw = complete(
                self.model, answer_messages(self.organization, prompt_question, hits), max_tokens=self.max_tokens
            )
        except LLMError as exc:
            return Suggestion("", [], actions, question, reason=f"llm_error: {exc}")
        text = raw.text if self.llm_is_local else pseudo.restore(raw.text)
        checked = check_answer(text, hits, question=query)
        retrieved = [h.chunk.doc_id for h in hits]
        if not checked.supported:
            return Suggestion("", [], actions, question, reason=checked.reason, retrieved=retrieved)
        citations = []
        for n in checked.cited:
            chunk = hits[n - 1].chunk
            citations.append(
                {"n": n, "doc_id": chunk.doc_id, "title": chunk.title, "url": chunk.url, "audience": chunk.audience}
            )
        return Suggestion(checked.answer, citations, actions, question, retrieved=retrieved)


def _last_question(messages: Sequence[MessageView]) -> str:
    """The citizen's latest message that is not a plain request for a person."""
    from assistant.routing import route_message

    for m in reversed(messages):
        if m.role == "user" and route_message(m.text).route != "human":
            return m.text
    return ""
