"""Where the answers mode gets its answers, and how they are timed.

Two responders share one shape (a Question in, an `Answer` out):

- the assistant, through the conversation service's stream (`ConversationService.handle_stream`), as the web chat
  serves a citizen: first words = the first streamed text (or the final reply when nothing streams, as on an
  abstention), whole answer = the final reply;
- the crude extractive baseline, the floor any answer mode must beat: BM25's top document, then its two
  sentences sharing the most stems with the question, in document order.

`run_answers` puts either behind the same knowledge base, unanswerable split and scoring; the suite helpers
turn an `atende eval run` report (or the baseline on a suite's cases) into the same rows (scored by
`eval.datasets.answer_metrics`), so the bench table compares like with like.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from assistant.llm import ChatModel
from assistant.service import Token
from conversation.messages import InboundMessage
from core.settings import Settings
from eval.datasets import (
    Answer,
    KbRecord,
    Progress,
    Question,
    Respond,
    UnanswerableSplit,
    evaluate_answers,
    ingest_kb,
    known_questions,
    unanswerable_split,
)
from eval.expectations import normalise
from eval.faithfulness import FaithfulnessScorer, cited_contexts
from eval.isolation import BuildServices, EvalServices, isolated_services
from eval.metrics import token_f1, word_count
from rag.chunking import chunk_document, split_sentences
from rag.lexical import LexicalIndex
from rag.text import content_terms
from rag.types import Chunk, Document

if TYPE_CHECKING:
    from eval.suite import Suite

GENERATIVE = "generative"
BASELINE = "baseline"
_CITATION = re.compile(r"\s*\[\d{1,3}\]")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")


def available_answer_modes() -> tuple[str, ...] | None:
    """The answer modes this build knows; None when the setting exists but does not list its values.

    Before the `answer_mode` setting existed, free generation was the only way to answer.
    """
    field = Settings.model_fields.get("answer_mode")
    if field is None:
        return (GENERATIVE,)
    # "auto" only picks one of the others by backend.
    values = tuple(str(v) for v in get_args(field.annotation) if isinstance(v, str) and v != "auto")
    return values or None


def with_answer_mode(settings: Settings, mode: str | None) -> Settings:
    """The settings with `answer_mode` set; None keeps the configured one (ATENDE_ANSWER_MODE)."""
    if mode is None:
        return settings
    modes = available_answer_modes()
    if modes is not None and mode not in modes:
        raise ValueError(f"answer mode {mode!r} is not available here (available: {', '.join(modes)})")
    if "answer_mode" not in Settings.model_fields:
        return settings
    return settings.model_copy(update={"answer_mode": mode})


def answer_mode_of(settings: Settings) -> str:
    return str(getattr(settings, "answer_mode", GENERATIVE))


def build_scorer(services: EvalServices, judge: str | None) -> FaithfulnessScorer:
    """The faithfulness scorer `--judge` names: `support` (no model) or `llm` (the services' chat model)."""
    from eval.faithfulness import JudgeScorer, SupportScorer

    choice = judge or services.settings.eval_judge
    if choice not in ("support", "llm"):
        raise ValueError(f"{choice!r}: use support or llm")
    return JudgeScorer(services.model) if choice == "llm" else SupportScorer(services.index.embedder)


def stream_responder(services: EvalServices, *, channel: str = "web") -> Respond:
    """Answer each question in a fresh conversation through the conversation service, as a channel would."""

    def respond(q: Question) -> Answer:
        conversation = services.store.create_conversation(channel)
        started = time.perf_counter()
        first: float | None = None
        outcome = None
        message = InboundMessage(channel=channel, conversation_id=conversation.id, text=q.question)
        for item in services.conversations.handle_stream(message):
            if isinstance(item, Token):
                if first is None and item.text.strip():
                    first = (time.perf_counter() - started) * 1000
            else:
                outcome = item
        latency = (time.perf_counter() - started) * 1000
        if outcome is None:
            raise RuntimeError("the entry point ended without a reply")
        reply = outcome.reply
        if reply is None:  # a fresh conversation is never a person's; kept for type-checking
            return Answer(outcome.answer, outcome.decision, [], latency, first or latency)
        contexts = cited_contexts(reply, services.index)
        # Abstention is the assistant's decision; the text is what the citizen was sent.
        return Answer(
            outcome.answer, reply.decision, contexts, latency, first or latency, reply.timings_ms, reply.reason
        )

    return respond


# Not a question of any data set: a scored question asked twice would find its own prompt in the model's cache.
WARM_UP_TEXT = "Qual é o horário de atendimento?"


def warm_up_turn(services: EvalServices, text: str = WARM_UP_TEXT, *, channel: str = "web") -> None:
    """Send one untimed message first: lazy loads on the first message (the language detector's models take
    over a second) are a cold start, not the per-answer latency a running server shows."""
    conversation = services.store.create_conversation(channel)
    services.conversations.handle(InboundMessage(channel=channel, conversation_id=conversation.id, text=text))


def plain_text(doc: Document) -> str:
    """The document as the index reads it: Markdown rendered to text by the project's chunker, one section
    per piece (no size cut, so no overlap repeats a sentence), headings left out."""
    return "\n".join(c.text for c in chunk_document(doc, max_chars=10**9, overlap_sentences=0))


def sentence_units(text: str) -> list[str]:
    """The sentences and list items of a plain text."""
    units: list[str] = []
    for line in text.splitlines():
        units += split_sentences(_LIST_MARK.sub("", line.strip()))
    return units


class ExtractiveBaseline:
    """The floor: BM25's top public document, then its `sentences` sentences sharing the most stems with the
    question, in document order. It abstains only when no document or no sentence shares a stem."""

    name = "baseline: BM25 top document, 2 best sentences"

    def __init__(self, documents: Sequence[Document], sentences: int = 2) -> None:
        self.sentences = sentences
        self._documents = [d for d in documents if d.audience == "public"]
        self._units: dict[str, Chunk] = {}
        self._lexical: LexicalIndex | None = None

    def warm_up(self) -> None:
        if self._lexical is None:
            self._units = {d.id: Chunk(d.id, d.id, d.title, "", plain_text(d)) for d in self._documents}
            lexical = LexicalIndex()
            # One unit per document, scored by the project's own BM25 (same terms, k1 and b as retrieval).
            lexical.build(list(self._units.values()))
            self._lexical = lexical

    def answer(self, question: str) -> tuple[str, Chunk | None]:
        """The answer text ("" when abstaining) and the document it was taken from."""
        self.warm_up()
        assert self._lexical is not None
        hits = self._lexical.search(question, 1)
        if not hits:
            return "", None
        doc = self._units[hits[0].chunk.doc_id]
        wanted = set(content_terms(question))
        scored = [(len(wanted & set(content_terms(s))), i, s) for i, s in enumerate(sentence_units(doc.text))]
        best = sorted((x for x in scored if x[0] > 0), key=lambda x: (-x[0], x[1]))[: self.sentences]
        if not best:
            return "", doc
        return " ".join(s for _, _, s in sorted(best, key=lambda x: x[1])), doc

    def __call__(self, q: Question) -> Answer:
        started = time.perf_counter()
        text, doc = self.answer(q.question)
        latency = (time.perf_counter() - started) * 1000
        contexts = [doc.embedding_text()] if doc is not None else []
        # All at once: the first words arrive with the whole answer.
        return Answer(text, "answered" if text else "abstained", contexts, latency, latency)


@dataclass(frozen=True)
class AnswerPlan:
    """Which questions a run scores: those whose gold passage is in the KB, less the ones excluded by the
    unanswerable split; `unknown` expect a passage the KB never had (a data error, reported)."""

    scored: list[Question]
    split: UnanswerableSplit
    unknown: list[Question]


def plan_answers(records: Sequence[KbRecord], questions: Sequence[Question], unanswerable_share: float) -> AnswerPlan:
    known, unknown = known_questions(questions, {r.id for r in records})
    split = unanswerable_split(known, unanswerable_share)
    excluded = {q.id for q in split.excluded}
    scored = [q for q in known if q.id not in excluded]
    if not scored:
        raise ValueError("no question is left to score")
    return AnswerPlan(scored, split, unknown)


def run_answers(
    records: Sequence[KbRecord],
    questions: Sequence[Question],
    settings: Settings,
    build: BuildServices,
    *,
    responder: str = "assistant",
    mode: str | None = None,
    model: ChatModel | None = None,
    load_model: bool = True,
    judge: str | None = None,
    unanswerable_share: float = 0.0,
    progress: Progress | None = None,
    phase: Progress | None = None,
) -> dict[str, Any]:
    """Answer `questions` over `records` with the assistant (in answer mode `mode`) or the baseline, and score.

    With `unanswerable_share`, about that share of the questions (picked by a hash of their id) become
    unanswerable: all their gold passages are left out of the indexed knowledge base for the whole run, they
    expect an abstention, and the other questions that lost a gold passage that way are not scored.
    """
    say = phase or (lambda _label: None)
    if responder not in ("assistant", BASELINE):
        raise ValueError(f"responder must be assistant or {BASELINE}, got {responder!r}")
    plan = plan_answers(records, questions, unanswerable_share)
    split, scored = plan.split, plan.scored
    kept = [r for r in records if r.id not in split.dropped_docs]
    settings = with_answer_mode(settings, mode) if responder == "assistant" else settings
    with tempfile.TemporaryDirectory(prefix="atende-eval-kb-") as tmp:
        documents = ingest_kb(kept, Path(tmp))
    baseline = responder == BASELINE
    say(f"indexing {len(documents)} documents…" if not baseline else f"{len(documents)} documents for the baseline")
    if baseline:
        from eval.chat_models import scripted_model

        # The baseline never asks a model; a scripted one with no answers fails loudly if anything does.
        model = model if judge == "llm" else scripted_model(0)
        load_model = judge == "llm"
    with isolated_services(
        settings, build, model=model, documents=[] if baseline else documents, load_model=load_model
    ) as services:
        respond: Respond
        if baseline:
            extractive = ExtractiveBaseline(documents)
            extractive.warm_up()
            respond = extractive
        else:
            warm_up_turn(services)
            respond = stream_responder(services)
        report = evaluate_answers(
            scored,
            respond,
            unanswerable={q.id for q in split.unanswerable},
            scorer=build_scorer(services, judge),
            progress=progress,
        )
        report["model"] = ExtractiveBaseline.name if baseline else services.model.model_id
    report["responder"] = responder
    report["answer_mode"] = None if baseline else answer_mode_of(settings)
    report["n_documents"] = len(documents)
    report["unanswerable"] = {
        "share": unanswerable_share,
        "questions": len(split.unanswerable),
        "dropped_documents": len(split.dropped_docs),
        "excluded_questions": len(split.excluded),
    }
    report["skipped"] = {"unknown_doc": len(plan.unknown), "ids": [q.id for q in plan.unknown[:50]]}
    return report


# --- suites (atende eval run) ---------------------------------------------------------------------------------


def suite_row(
    expect: Mapping[str, Any],
    answer: str,
    decision: str,
    *,
    faithfulness: float | None,
    latency_ms: float,
    first_words_ms: float,
) -> dict[str, Any] | None:
    """One checked suite turn as an answer-table row; None for a turn that is not about answering (small talk,
    or a turn with no expectation, such as the opening turns of a follow-up case)."""
    if not expect or expect.get("route") not in (None, "knowledge"):
        return None
    facts = list(expect.get("contains_any") or [])
    answered = decision == "answered"
    text = _CITATION.sub("", answer) if answered else ""
    folded = normalise(text)
    return {
        "expects_abstention": expect.get("abstains"),
        # The suite's own matching (eval/expectations.py): folded substring.
        "contains": any(normalise(f) in folded for f in facts) if facts else None,
        "f1": round(token_f1(text, facts), 4) if facts else None,
        "decision": decision,
        "words": word_count(text) if answered else None,
        "faithfulness": faithfulness,
        "latency_ms": latency_ms,
        "first_words_ms": first_words_ms,
    }


def suite_report_rows(report: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The answer-table rows of an `atende eval run` report, and how many runs broke before being checked."""
    rows: list[dict[str, Any]] = []
    errors = 0
    for case in report["cases"]:
        for run in case["runs"]:
            if run["error"]:
                errors += 1
                continue
            for turn in run["turns"]:
                row = suite_row(
                    turn["expect"],
                    turn["answer"],
                    turn.get("assistant_decision") or turn["decision"],
                    faithfulness=turn.get("faithfulness"),
                    latency_ms=turn["latency_ms"],
                    first_words_ms=turn.get("first_words_ms", turn["latency_ms"]),
                )
                if row is not None:
                    rows.append(row)
    return rows, errors


def suite_baseline_rows(
    suites: Sequence[Suite],
    baseline: ExtractiveBaseline,
    scorer: FaithfulnessScorer | None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """The baseline on each case's checked turns; it has no memory, so a turn's query is every user message of
    the case up to it (the crude stand-in for the assistant's history-aware rewrite)."""
    from eval.runner import expect_summary

    tick = progress or (lambda _label: None)
    rows: list[dict[str, Any]] = []
    for suite in suites:
        for case in suite.cases:
            said: list[str] = []
            for turn in case.turns:
                said.append(turn.user)
                expect = expect_summary(turn)
                if not expect:
                    continue
                got = baseline(Question(case.id, " ".join(said), (), ()))
                text = _CITATION.sub("", got.text)
                faithful = scorer.score(text, got.contexts).share if scorer and text and got.contexts else None
                row = suite_row(
                    expect,
                    got.text,
                    got.decision,
                    faithfulness=None if faithful is None else round(faithful, 3),
                    latency_ms=round(got.latency_ms, 1),
                    first_words_ms=round(got.first_words_ms, 1),
                )
                if row is not None:
                    rows.append(row)
            tick(case.id)
    return rows
