"""The respond pipeline: one entry point every channel uses for a citizen's message."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Any, Literal

from assistant.compose import COMPOSE_VERSION, evidence_of, select
from assistant.grounding import GroundingResult, check_answer, numbers_in
from assistant.intents import IntentReader
from assistant.intents.policy import open_to_guess, overrule
from assistant.language import identify_language, localize
from assistant.llm import ChatModel, LLMError, StreamChunk, Usage
from assistant.prompts import LEAD_IN_VERSION, PROMPT_VERSION, answer_messages, lead_in_messages
from assistant.rewrite import rewrite_query
from assistant.routing import Route, Routing, route_message
from assistant.tools.chooser import TOOL_PROMPT_VERSION
from assistant.tools.dialogue import ActionDialogue, ActionOutcome, redact
from core.i18n import DEFAULT_LOCALE, t
from core.privacy import Pseudonymizer, mask
from core.store import (
    ConversationNotFound,
    ConversationStore,
    EventDraft,
    ExchangeDraft,
    MessageDraft,
    RecordedExchange,
    TurnRecord,
)
from rag.index import KnowledgeIndex
from rag.retriever import confidence
from rag.types import Audience, Chunk, ScoredChunk

log = logging.getLogger(__name__)

Decision = Literal["answered", "abstained", "handoff"]
AnswerMode = Literal["extractive", "constrained", "generative"]


class InvalidMessage(ValueError):
    """The citizen's message cannot be processed; `key` names the pt-BR explanation in the catalogue."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    section: str
    url: str
    # The article's own text of each part the answer used, so the link can show it highlighted.
    quotes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "doc_id": self.doc_id,
            "title": self.title,
            "section": self.section,
            "url": self.url,
            "quotes": list(self.quotes),
        }


@dataclass(frozen=True)
class AssistantReply:
    answer: str
    decision: Decision
    route: Route
    citations: list[Citation]
    timings_ms: dict[str, float]
    retrieved: list[ScoredChunk] = field(default_factory=list)
    rewritten_query: str = ""
    confidence: float | None = None
    evidence: float | None = None
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    reason: str = ""
    message_id: int | None = None
    turn_id: int | None = None
    # Tools the assistant called for this turn: {"name", "arguments", "ok", "error"} each, in call order.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    handoff_team: str | None = None
    language: str = "pt-BR"
    # The learned intent that changed the routing (assistant.intents.policy); None when the rules alone decided.
    intent: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "decision": self.decision,
            "route": self.route,
            "citations": [c.as_dict() for c in self.citations],
            "message_id": self.message_id,
            "timings_ms": self.timings_ms,
        }


@dataclass(frozen=True)
class Token:
    """A piece of the answer as the model generates it (before the grounding check)."""

    text: str


@dataclass(frozen=True)
class Drafted:
    """The assistant's final reply for a turn and the exchange that records it, not yet stored."""

    reply: AssistantReply
    exchange: ExchangeDraft

    def recorded(self, recorded: RecordedExchange) -> AssistantReply:
        """The reply with the ids its stored message and turn-log row got."""
        return replace(self.reply, message_id=recorded.reply.id, turn_id=recorded.turn_id)


@dataclass(frozen=True)
class AssistantConfig:
    organization: str = "Prefeitura de Santa Aurora"
    top_k: int = 3
    abstain_threshold: float = 0.3
    evidence_threshold: float = 0.35
    answer_mode: AnswerMode = "extractive"
    max_words: int = 80
    max_tokens: int = 220
    max_message_chars: int = 2000
    history_turns: int = 2
    llm_is_local: bool = True
    audiences: tuple[Audience, ...] = ("public",)
    locale: str = "pt-BR"


class Assistant:
    def __init__(
        self,
        model: ChatModel,
        index: KnowledgeIndex,
        store: ConversationStore,
        config: AssistantConfig,
        *,
        actions: ActionDialogue | None = None,
        translate: Callable[[str, str, str], str | None] | None = None,
        intents: IntentReader | None = None,
    ) -> None:
        self.model = model
        self.index = index
        self.store = store
        self.config = config
        # Requests to act (debts, Pix, protocols, appointments) go through the MCP tools; None: answers only.
        self.actions = actions
        # (text, source, target) -> translation or None; answers questions in Spanish and English when set.
        self.translate = translate
        # A learned reading of first messages the rules send to the knowledge base (decision 0047); None: rules only.
        self.intents = intents

    def validate(self, text: str) -> str:
        cleaned = text.strip()
        if not cleaned:
            raise InvalidMessage("error.empty_message")
        if len(cleaned) > self.config.max_message_chars:
            raise InvalidMessage("error.message_too_long", max=self.config.max_message_chars)
        return cleaned

    def draft_stream(self, conversation_id: str, text: str, channel: str = "web") -> Iterator[Token | Drafted]:
        """Yield answer tokens as they are generated, then the final, checked reply with the exchange to store.

        Nothing is written: the caller stores the exchange (`ConversationStore.record_exchange_in`) in the
        transaction that also holds the turn's handoff and outgoing messages."""
        started = time.perf_counter()
        text = self.validate(text)
        if self.store.get_conversation(conversation_id) is None:
            raise ConversationNotFound(conversation_id)
        history = self._history(conversation_id)
        routing, intent_ms = self._route(conversation_id, text, history)
        action = (
            self.actions.handle(conversation_id, text, routing.route, hint=routing.intent)
            if self.actions is not None
            else None
        )
        if action is not None and not action.passthrough:
            reply = self._action_reply(action, routing.route, started)
        elif routing.route == "human":
            reply = self._reply(t("handoff", self.config.locale), "handoff", "human", started, reason="citizen_request")
        elif routing.route == "smalltalk":
            kind = routing.smalltalk or "greeting"
            answer = t(kind, self.config.locale, organization=self.config.organization)
            reply = self._reply(answer, "answered", "smalltalk", started)
        elif self.translate is not None and (language := identify_language(text)) in ("es", "en"):
            reply = self._answer_in(language, text, history, started)
            if reply.decision == "answered":
                yield Token(reply.answer)
        else:
            final: AssistantReply | None = None
            for item in self._answer(text, history, started):
                if isinstance(item, Token):
                    yield item
                else:
                    final = item
            assert final is not None
            reply = final
        if intent_ms is not None:
            reply = replace(reply, intent=routing.intent, timings_ms={**reply.timings_ms, "intent": intent_ms})
        yield self._draft(conversation_id, channel, text, localize(reply, text, self.config.organization), action)

    def _route(
        self, conversation_id: str, text: str, history: Sequence[tuple[str, str]]
    ) -> tuple[Routing, float | None]:
        """The rules' routing, with the intent reader's guess where the policy lets it apply; and the reading's ms.

        The reader sees only what the rules leave to the knowledge base, and only a message that stands alone: a
        follow-up ("e pra moto?") or an answer to the dialogue's open question ("o terceiro", "sim pode") means
        something only with what came before, which the examples do not have."""
        routing = route_message(text)
        if self.intents is None or not open_to_guess(routing, text):
            return routing, None
        if rewrite_query(text, [q for q, _ in history]) != text:
            return routing, None
        if self.actions is not None and self.actions.awaiting(conversation_id):
            return routing, None
        t0 = time.perf_counter()
        guess = self.intents.read(text)
        return overrule(routing, guess, text), _ms_since(t0)

    def _answer_in(
        self, language: str, text: str, history: Sequence[tuple[str, str]], started: float
    ) -> AssistantReply:
        """Answer a Spanish or English question from the Portuguese articles, in the citizen's language.

        The question is translated to find and select the parts; the selected Portuguese text is translated back.
        A translation that loses a number (a fee, a phone, a deadline) is not sent: the Portuguese answer is,
        with the notice that it is in Portuguese.
        """
        assert self.translate is not None
        asked = self.translate(text, language, DEFAULT_LOCALE) or text
        reply: AssistantReply | None = None
        for item in self._answer(asked, history, started):
            if isinstance(item, AssistantReply):
                reply = item
        assert reply is not None
        if reply.decision != "answered":
            return reply
        markers = "".join(f" [{n}]" for n in dict.fromkeys(_MARKER.findall(reply.answer)))
        source = _MARKER.sub("", reply.answer).strip()
        translated = self.translate(source, DEFAULT_LOCALE, language)
        if translated is None or not numbers_in(source) <= numbers_in(translated):
            return reply
        timings = {**reply.timings_ms, "total": _ms_since(started)}
        return replace(reply, answer=translated.strip() + markers, language=language, timings_ms=timings)

    def _action_reply(self, action: ActionOutcome, route: Route, started: float) -> AssistantReply:
        return self._reply(
            action.answer,
            action.decision,
            "human" if route == "human" else "action",
            started,
            tool_calls=action.tool_calls,
            handoff_team=action.handoff_team,
            usage=action.usage,
            error=action.error,
            reason=action.reason,
        )

    def _history(self, conversation_id: str) -> list[tuple[str, str]]:
        messages = self.store.list_messages(conversation_id)
        pairs: list[tuple[str, str]] = []
        pending: str | None = None
        for m in messages:
            if m.role == "user":
                pending = m.text
            elif m.role == "assistant" and pending is not None:
                # Only grounded answers are useful context; apologies and abstentions are noise.
                pairs.append((pending, m.text if m.decision == "answered" else ""))
                pending = None
        return pairs[-self.config.history_turns :] if self.config.history_turns else []

    def _reply(
        self,
        answer: str,
        decision: Decision,
        route: Route,
        started: float,
        **kw: Any,
    ) -> AssistantReply:
        timings = dict(kw.pop("timings", {}))
        timings["total"] = round((time.perf_counter() - started) * 1000, 1)
        return AssistantReply(
            answer=answer,
            decision=decision,
            route=route,
            citations=kw.pop("citations", []),
            timings_ms=timings,
            **kw,
        )

    def _answer(
        self, text: str, history: Sequence[tuple[str, str]], started: float
    ) -> Iterator[Token | AssistantReply]:
        previous = [q for q, _ in history]
        rewritten = rewrite_query(text, previous)
        # Personal data never helps retrieval and must not reach a remote vector store.
        query = mask(rewritten)
        # A follow-up ("e quanto custa?") is found with the earlier question but answered for its own words.
        context = mask(previous[-1]) if rewritten != text and previous else ""
        t0 = time.perf_counter()
        candidates = self.index.retrieve(query, max(self.config.top_k, _SELECT_CANDIDATES), self.config.audiences)
        hits = candidates[: self.config.top_k]
        timings = {"retrieve": round((time.perf_counter() - t0) * 1000, 1)}
        conf = confidence(hits[0] if hits else None, self.index.retriever.params)
        common: dict[str, Any] = {"retrieved": hits, "rewritten_query": query, "confidence": conf}
        if conf < self.config.abstain_threshold:
            yield self._abstain(started, timings, reason=f"low retrieval confidence {conf:.3f}", **common)
            return
        t1 = time.perf_counter()
        best_doc = hits[0].chunk.doc_id
        top = max(hits[0].score, 1e-9)
        selection = select(
            mask(text) if context else query,
            self.index.lexical.chunks_of(best_doc),
            self.index.lexical.idf,
            max_words=self.config.max_words,
            context=context,
            prior={h.chunk.id: max(0.0, h.score / top) for h in candidates if h.chunk.doc_id == best_doc},
        )
        timings["select"] = round((time.perf_counter() - t1) * 1000, 1)
        support = evidence_of(conf, selection)
        common["evidence"] = support
        if not selection.units or support < self.config.evidence_threshold:
            reason = f"evidence {support:.3f} below {self.config.evidence_threshold}"
            yield self._abstain(started, timings, reason=reason, **common)
            return
        first = selection.units[0].chunk
        source = Citation(1, first.doc_id, first.title, first.section, first.url, quotes=selection.quotes)
        extract = f"{selection.text} [1]"
        if self.config.answer_mode == "generative":
            yield from self._generate(text, history, hits, query, extract, source, started, timings, common)
            return
        lead = ""
        if self.config.answer_mode == "constrained":
            lead = self._lead_in(text, selection.text, timings)
            if lead:
                timings.setdefault("first_token", _ms_since(started))
                yield Token(lead + "\n")
        timings.setdefault("first_token", _ms_since(started))
        yield Token(extract)
        answer = f"{lead}\n{extract}" if lead else extract
        yield self._reply(answer, "answered", "knowledge", started, timings=timings, citations=[source], **common)

    def _lead_in(self, question: str, extract: str, timings: dict[str, float]) -> str:
        """One sentence in the model's words that passes the grounding check against the extract, or ""."""
        pseudo = Pseudonymizer()
        asked = question if self.config.llm_is_local else pseudo.pseudonymize(question)
        t0 = time.perf_counter()
        try:
            raw = "".join(
                c.text
                for c in self.model.stream(lead_in_messages(self.config.organization, asked, extract), max_tokens=48)
                if c.text
            )
        except LLMError as exc:
            log.warning("lead-in skipped: %s", exc)
            return ""
        finally:
            timings["generate"] = round((time.perf_counter() - t0) * 1000, 1)
        line = (raw if self.config.llm_is_local else pseudo.restore(raw)).strip().split("\n")[0]
        passage = ScoredChunk(Chunk("extract", "extract", "", "", extract), 1.0)
        checked = check_answer(line, [passage], question=question, min_support=0.8)
        return checked.answer if checked.supported else ""

    def _generate(
        self,
        text: str,
        history: Sequence[tuple[str, str]],
        hits: list[ScoredChunk],
        query: str,
        extract: str,
        source: Citation,
        started: float,
        timings: dict[str, float],
        common: dict[str, Any],
    ) -> Iterator[Token | AssistantReply]:
        """Free generation, streamed one checked sentence at a time: what the citizen saw is never withdrawn."""
        pseudo = Pseudonymizer()
        question = text if self.config.llm_is_local else pseudo.pseudonymize(text)
        past = history if self.config.llm_is_local else [(pseudo.pseudonymize(q), a) for q, a in history]
        messages = answer_messages(self.config.organization, question, hits, past)
        usage = Usage()
        accepted = ""
        pending = ""
        shown = ""  # the checked text already sent; every later text extends it
        checked: GroundingResult | None = None
        t1 = time.perf_counter()
        try:
            # None marks the end of the stream, where whatever is pending counts as the last sentence.
            for chunk in chain(_closing(self.model.stream(messages, max_tokens=self.config.max_tokens)), [None]):
                if chunk is not None:
                    usage = chunk.usage or usage
                    pending += chunk.text
                    cut = _last_sentence_end(pending)
                else:
                    cut = len(pending) if pending.strip() else 0
                if cut <= 0:
                    continue
                candidate = accepted + pending[:cut]
                result = check_answer(
                    candidate if self.config.llm_is_local else pseudo.restore(candidate), hits, question=query
                )
                if not result.supported or not result.answer.startswith(shown):
                    break
                timings.setdefault("first_token", _ms_since(started))
                yield Token(result.answer[len(shown) :])
                accepted, pending, checked, shown = candidate, pending[cut:], result, result.answer
        except LLMError as exc:
            log.error("LLM failed while answering: %s", exc)
            common = {**common, "error": str(exc), "reason": "llm_error"}
        timings["generate"] = round((time.perf_counter() - t1) * 1000, 1)
        if checked is None:
            # The evidence says the article answers; the model's wording failed, so the source text is sent.
            timings.setdefault("first_token", _ms_since(started))
            yield Token(extract)
            yield self._reply(
                extract, "answered", "knowledge", started, timings=timings, citations=[source], usage=usage, **common
            )
            return
        citations = self._citations(hits, checked.cited)
        answer = _renumber(checked.answer, {c_old: c.n for c_old, c in citations})
        if not _MARKER.search(answer) and citations:
            answer += " " + "".join(f"[{n}]" for n in sorted({c.n for _, c in citations}))
        yield self._reply(
            answer,
            "answered",
            "knowledge",
            started,
            timings=timings,
            citations=[c for _, c in citations],
            usage=usage,
            **common,
        )

    @staticmethod
    def _citations(hits: Sequence[ScoredChunk], cited: Sequence[int]) -> list[tuple[int, Citation]]:
        """Number citations 1..n in order of use, one per document."""
        out: list[tuple[int, Citation]] = []
        by_doc: dict[str, int] = {}
        for i in cited:
            chunk = hits[i - 1].chunk
            n = by_doc.setdefault(chunk.doc_id, len(by_doc) + 1)
            out.append((i, Citation(n, chunk.doc_id, chunk.title, chunk.section, chunk.url)))
        unique: dict[int, Citation] = {}
        for _, c in out:
            unique.setdefault(c.n, c)
        return [(i, unique[c.n]) for i, c in out]

    def _abstain(self, started: float, timings: dict[str, float], **kw: Any) -> AssistantReply:
        return self._reply(t("abstain", self.config.locale), "abstained", "knowledge", started, timings=timings, **kw)

    def _prompt_version(self, route: Route) -> str:
        if route == "action":
            return TOOL_PROMPT_VERSION
        if route == "knowledge" and self.config.answer_mode == "extractive":
            return COMPOSE_VERSION
        return PROMPT_VERSION if self.config.answer_mode == "generative" else f"{COMPOSE_VERSION}+{LEAD_IN_VERSION}"

    def _draft(
        self,
        conversation_id: str,
        channel: str,
        text: str,
        reply: AssistantReply,
        action: ActionOutcome | None = None,
    ) -> Drafted:
        events = []
        # A successful handoff_to_human call has queued the conversation (and recorded the request) itself.
        queued = any(c["name"] == "handoff_to_human" and c["ok"] for c in reply.tool_calls)
        if reply.decision in ("abstained", "handoff") and not queued:
            events.append(EventDraft("handoff_requested", {"reason": reply.reason or reply.decision}))
        state_event = action.state_event() if action is not None else None
        if state_event is not None:
            events.append(state_event)
        # A verification message's CPF and birth date are a credential: no copy keeps them, the stored message
        # (and what is derived from it: annotations, translations, exports) included.
        sensitive = action is not None and action.sensitive
        used_model = (reply.route == "knowledge" and self.config.answer_mode != "extractive") or (
            action is not None and action.used_model
        )
        citations = [c.as_dict() for c in reply.citations]
        turn = TurnRecord(
            conversation_id=conversation_id,
            channel=channel,
            # The verification dialogue carries birth dates, which only look like ordinary dates.
            user_text=redact(text) if sensitive else mask(text),
            rewritten_query=mask(reply.rewritten_query),
            prompt_version=self._prompt_version(reply.route),
            model_id=self.model.model_id if used_model else "rules",
            answer=mask(reply.answer),
            decision=reply.decision,
            retrieved=[
                {"chunk_id": h.chunk.id, "doc_id": h.chunk.doc_id, "score": round(h.score, 4)} for h in reply.retrieved
            ],
            citations=[{k: c[k] for k in ("doc_id", "title", "section", "url")} for c in citations],
            latency_retrieve_ms=reply.timings_ms.get("retrieve"),
            latency_first_token_ms=reply.timings_ms.get("first_token"),
            latency_total_ms=reply.timings_ms["total"],
            prompt_tokens=reply.usage.prompt_tokens,
            completion_tokens=reply.usage.completion_tokens,
            error=reply.error,
            tool_calls=action.logged_calls() if action is not None else (),
        )
        exchange = ExchangeDraft(
            turn=turn,
            user_message=redact(text) if sensitive else text,
            reply=MessageDraft(reply.answer, reply.decision, citations),
            events=events,
        )
        return Drafted(reply, exchange)


# Passages of the best document the retriever ranks, to tell the composer where the answer probably is.
_SELECT_CANDIDATES = 8
_MARKER = re.compile(r"\[(\d{1,2})\]")
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


def _last_sentence_end(text: str) -> int:
    """Index just after the last complete sentence of a partial answer; 0 when none is complete yet."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return ends[-1] if ends else 0


def _closing(stream: Iterator[StreamChunk]) -> Iterator[StreamChunk]:
    """Iterate a model stream and close it when the caller stops early, which frees the model at once."""
    try:
        yield from stream
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _renumber(answer: str, mapping: dict[int, int]) -> str:
    return _MARKER.sub(lambda m: f"[{mapping.get(int(m.group(1)), int(m.group(1)))}]", answer)
