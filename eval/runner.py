"""Run suites through the conversation service, the one path of every channel's messages, in isolated services.

Each turn goes through the handoff gate as a web chat message does: a conversation handed to a person gets
its later messages forwarded to the agent, and the turn's handoff (and team) is the queue it really joined.
"""

from __future__ import annotations

import importlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from assistant.service import AssistantReply, Token
from conversation.messages import InboundMessage, Outcome
from eval.expectations import Failure, Observation, check
from eval.faithfulness import FaithfulnessScorer, cited_contexts
from eval.isolation import EvalServices
from eval.report import summarise
from eval.suite import Case, Suite, Turn

if TYPE_CHECKING:
    from domain.wiring import Domain

log = logging.getLogger(__name__)

SEED_MODULE = "domain.seed"
Progress = Callable[[str], None]


class SeedUnavailable(RuntimeError):
    """The suite needs domain data (citizens, debts, protocols) but no seed module or domain is available."""


def seed_database(services: EvalServices, citizens: Sequence[Mapping[str, str]]) -> str:
    """Load the domain fixtures, then the suites' own citizens, into the domain the isolated services use;
    return the seed's name for the report.

    The seed module is looked up at run time so the harness works before (and without) the tools package.
    """
    try:
        module = importlib.import_module(SEED_MODULE)
    except ModuleNotFoundError as exc:
        raise SeedUnavailable(f"{SEED_MODULE} is not available ({exc})") from exc
    seed = getattr(module, "seed", None)
    if not callable(seed):
        raise SeedUnavailable(f"{SEED_MODULE} has no seed() function")
    if services.domain is None:
        raise SeedUnavailable("the services were built without the domain that the tools use")
    seed(services.domain)
    add_citizens(services.domain, citizens)
    return SEED_MODULE


def add_citizens(domain: Domain, citizens: Sequence[Mapping[str, str]]) -> int:
    """Register the identities suite cases declare (`citizen:`), so they can verify themselves; returns how many."""
    added = 0
    with domain.sessions.begin() as session:
        for person in citizens:
            cpf = re.sub(r"\D", "", person.get("cpf", ""))
            if not cpf:
                continue
            born = person.get("birth_date")
            domain.citizens.upsert(
                session,
                cpf=cpf,
                name=person.get("name") or "Cidadão da avaliação",
                birth_date=date.fromisoformat(born) if born else None,
                phone=person.get("phone"),
                email=person.get("email"),
            )
            added += 1
    return added


def observe(turn: Outcome | AssistantReply, latency_ms: float) -> Observation:
    """What the expectations see of one turn; a bare AssistantReply is a turn that met no handoff gate."""
    if isinstance(turn, AssistantReply):
        turn = Outcome(
            answer=turn.answer,
            decision=turn.decision,
            route=turn.route,
            citations=tuple(turn.citations),
            handoff_team=turn.handoff_team,
            reply=turn,
        )
    reply = turn.reply
    return Observation(
        answer=turn.answer,
        decision=turn.decision,
        assistant_decision=reply.decision if reply is not None else None,
        route=turn.route,
        cited=tuple(dict.fromkeys(c.doc_id for c in reply.citations)) if reply is not None else (),
        tool_calls=tuple(reply.tool_calls) if reply is not None else (),
        handoff_team=turn.handoff_team,
        language=reply.language if reply is not None else "pt-BR",
        latency_ms=latency_ms,
    )


def _fill(text: str, citizen: Mapping[str, str] | None) -> str:
    """Replace {citizen.cpf}-style placeholders with the case's identity."""
    for key, value in (citizen or {}).items():
        text = text.replace("{citizen." + key + "}", value)
    return text


class SuiteRunner:
    def __init__(
        self,
        services: EvalServices,
        *,
        scorer: FaithfulnessScorer | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.services = services
        self.scorer = scorer
        self.progress = progress or (lambda _label: None)
        self.seed_error: str | None = None
        self.seeded = False

    def prepare(self, suites: Sequence[Suite]) -> None:
        if not any(s.seed for s in suites):
            return
        citizens = [c.citizen for s in suites for c in s.cases if c.citizen]
        try:
            seed_database(self.services, citizens)
            self.seeded = True
        except SeedUnavailable as exc:
            self.seed_error = str(exc)
            log.warning("cases that need seeded data will fail: %s", exc)

    def run_case(self, suite: Suite, case: Case) -> dict[str, Any]:
        """One run of a case: a fresh conversation, its turns in order; stops at an error."""
        turns: list[dict[str, Any]] = []
        if suite.seed and not self.seeded:
            reason = f"needs seeded domain data: {self.seed_error or 'seeding failed'}"
            for _ in case.turns:
                self.progress(case.id)
            return {"passed": False, "turns": [], "error": reason}
        channel = case.turns[0].channel
        conversation = self.services.store.create_conversation(channel, case.turns[0].language or "pt-BR")
        for i, turn in enumerate(case.turns):
            try:
                turns.append(self._run_turn(conversation.id, turn, case.citizen))
            except Exception as exc:  # one broken case must not stop the run; the report says what broke
                log.exception("case %s/%s turn %d failed", suite.name, case.id, i + 1)
                for _ in case.turns[i:]:
                    self.progress(case.id)
                error = f"turn {i + 1} raised {type(exc).__name__}: {exc}"
                return {"passed": False, "turns": turns, "error": error}
            self.progress(case.id)
        return {"passed": all(t["passed"] for t in turns), "turns": turns, "error": None}

    def _run_turn(self, conversation_id: str, turn: Turn, citizen: Mapping[str, str] | None) -> dict[str, Any]:
        text = _fill(turn.user, citizen)
        started = time.perf_counter()
        first_words: float | None = None
        outcome: Outcome | None = None
        # The web chat's streaming path, handoff gate included (the turn's channel is recorded in the turn log).
        message = InboundMessage(channel=turn.channel, conversation_id=conversation_id, text=text)
        for item in self.services.conversations.handle_stream(message):
            if isinstance(item, Token):
                if first_words is None and item.text.strip():
                    first_words = (time.perf_counter() - started) * 1000
            else:
                outcome = item
        latency = (time.perf_counter() - started) * 1000
        if outcome is None:
            raise RuntimeError("the entry point ended without a reply")
        seen = observe(outcome, latency)
        failures: list[Failure] = check(turn.expect, seen)
        reply = outcome.reply
        return {
            "user": text,
            "channel": turn.channel,
            "line": turn.line,
            "expect": expect_summary(turn),
            "answer": outcome.answer,
            "decision": outcome.decision,
            "assistant_decision": seen.assistant_decision,
            "route": seen.route,
            "reason": reply.reason if reply is not None else "forwarded to the agent",
            # The learned intent that changed the routing (decision 0047), if any.
            "intent": reply.intent if reply is not None else None,
            "confidence": reply.confidence if reply is not None else None,
            "language": seen.language,
            "handoff_team": outcome.handoff_team,
            "citations": [
                {"doc_id": c.doc_id, "title": c.title, "section": c.section}
                for c in (reply.citations if reply is not None else [])
            ],
            "retrieved": [
                {
                    "doc_id": h.chunk.doc_id,
                    "chunk_id": h.chunk.id,
                    "title": h.chunk.title,
                    "section": h.chunk.section,
                    "score": round(h.score, 4),
                    "text": h.chunk.text,
                }
                for h in (reply.retrieved if reply is not None else [])
            ],
            "tool_calls": [dict(c) for c in seen.tool_calls],
            "latency_ms": round(latency, 1),
            # The first text the citizen sees: a streamed token, or the whole reply when nothing streamed.
            "first_words_ms": round(latency if first_words is None else first_words, 1),
            "timings_ms": dict(outcome.timings_ms),
            "tokens": {
                "prompt": reply.usage.prompt_tokens if reply is not None else None,
                "completion": reply.usage.completion_tokens if reply is not None else None,
            },
            "faithfulness": self._faithfulness(reply),
            "failures": [f.as_dict() for f in failures],
            "passed": not failures,
        }

    def _faithfulness(self, reply: AssistantReply | None) -> float | None:
        if reply is None or self.scorer is None or reply.decision != "answered" or not reply.citations:
            return None
        share = self.scorer.score(reply.answer, cited_contexts(reply, self.services.index)).share
        return None if share is None else round(share, 3)


def expect_summary(turn: Turn) -> dict[str, Any]:
    """The expectations that were set, for the report (defaults left out)."""
    e = turn.expect
    out: dict[str, Any] = {}
    for name in ("cites_any", "cites_all", "cites_none", "contains", "contains_any", "not_contains"):
        if getattr(e, name):
            out[name] = list(getattr(e, name))
    for name in ("abstains", "route", "handoff", "handoff_team", "language", "max_latency_ms"):
        if getattr(e, name) is not None:
            out[name] = getattr(e, name)
    if e.tool_calls is not None:
        out["tool_calls"] = {
            "calls": [{"name": c.name, "arguments": dict(c.arguments)} for c in e.tool_calls.calls],
            "ordered": e.tool_calls.ordered,
            "exclusive": e.tool_calls.exclusive,
        }
    return out


def run_suites(
    suites: Sequence[Suite],
    services: EvalServices,
    *,
    repeat: int = 1,
    scorer: FaithfulnessScorer | None = None,
    progress: Progress | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run every case `repeat` times and return the report (see eval/report.py for its shape)."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    runner = SuiteRunner(services, scorer=scorer, progress=progress)
    runner.prepare(suites)
    started = time.perf_counter()
    cases: list[dict[str, Any]] = []
    for suite in suites:
        for case in suite.cases:
            runs = [runner.run_case(suite, case) for _ in range(repeat)]
            passes = sum(r["passed"] for r in runs)
            cases.append(
                {
                    "key": f"{suite.name}/{case.id}",
                    "suite": suite.name,
                    "id": case.id,
                    "tags": list(case.tags),
                    "description": case.description,
                    "line": case.line,
                    "passes": passes,
                    "repeat": repeat,
                    "passed": passes == repeat,
                    "reason": _first_reason(runs),
                    "runs": runs,
                }
            )
    report: dict[str, Any] = {
        "kind": "run",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "suites": [{"name": s.name, "path": s.path, "cases": len(s.cases)} for s in suites],
        "model": services.model.model_id,
        "embedder": services.index.embedder.model_id,
        "faithfulness_scorer": scorer.name if scorer else None,
        "seeded": runner.seeded,
        "seed_error": runner.seed_error,
        "repeat": repeat,
        "duration_s": round(time.perf_counter() - started, 1),
        **dict(meta or {}),
        "cases": cases,
    }
    report["summary"], report["by_tag"] = summarise(cases, repeat)
    return report


def _first_reason(runs: Sequence[Mapping[str, Any]]) -> str:
    for r in runs:
        if r["error"]:
            return str(r["error"])
        for i, turn in enumerate(r["turns"], start=1):
            if turn["failures"]:
                f = turn["failures"][0]
                return f"turn {i}: {f['expectation']}: {f['reason']}"
    return ""
