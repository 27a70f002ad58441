"""Conversation states bot → waiting → with_agent → closed, behind one facade for the app, the channels and the
conversation service.

`HandoffService` composes the parts and only delegates to them: `records` (views and reads), `queue` (requests,
place and wait, leaving, overflow), `dispatch` (claims, reassignment, presence, routing), `actions` (reply,
transfer, close, survey), `annotations` (notes, sentiment, translation) and `timeouts` (the inactivity steps);
`context` holds what they share. The live state (queue order, locks, pub/sub) is kept in step after each commit
and can always be rebuilt from the database (`rebuild()`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from assistant.agent_aids.sentiment import Sentiment, SentimentClassifier
from assistant.agent_aids.translation import Translator
from core.models import utcnow
from core.store import ConversationStore, MessageView
from handoff.actions import AgentActions, ServiceProtocols
from handoff.annotations import Annotations, MessageTranslation
from handoff.assignment import Profile, Profiles
from handoff.context import HandoffConfig, HandoffContext
from handoff.delivery import Delivery
from handoff.dispatch import Dispatcher
from handoff.live import LiveState
from handoff.queue import Queues
from handoff.records import HandoffView, Records, Requested, Ticket
from handoff.teams import TeamDirectory
from handoff.timeouts import InactivitySteps


class HandoffService:
    """The handoff's one entry point; each method hands the call to the part that owns it."""

    # Settings change as a whole (`config`); slots make a stray `handoff.hours = …` an error, not a silent no-op.
    __slots__ = ("_actions", "_annotations", "_context", "_dispatcher", "_queues", "_records", "_steps")

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: ConversationStore,
        live: LiveState,
        config: HandoffConfig | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        profiles: Profiles | None = None,
        teams: TeamDirectory | None = None,
        sentiment: SentimentClassifier | None = None,
        translator: Translator | None = None,
        protocols: ServiceProtocols | None = None,
    ) -> None:
        context = HandoffContext(
            sessions, store, live, config or HandoffConfig(), clock, profiles=profiles, teams=teams
        )
        self._context = context
        self._records = Records(sessions)
        self._dispatcher = Dispatcher(context)
        self._queues = Queues(context, self._records, self._dispatcher)
        self._annotations = Annotations(context, sentiment=sentiment, translator=translator)
        self._actions = AgentActions(context, self._annotations, self._queues, self._dispatcher, protocols=protocols)
        self._steps = InactivitySteps(context, self._queues, self._actions)

    # --- wiring -------------------------------------------------------------------------------------------

    @property
    def config(self) -> HandoffConfig:
        return self._context.config

    @config.setter
    def config(self, config: HandoffConfig) -> None:
        self._context.config = config

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, for callers that join a handoff step to their own transaction."""
        return self._context.sessions

    @property
    def store(self) -> ConversationStore:
        return self._context.store

    @property
    def live(self) -> LiveState:
        return self._context.live

    @property
    def profiles(self) -> Profiles:
        return self._context.profiles

    @property
    def protocols(self) -> ServiceProtocols | None:
        return self._actions.protocols

    @protocols.setter
    def protocols(self, protocols: ServiceProtocols | None) -> None:
        """Wired after construction: the protocol book's domain is built with the handoff as its MCP queue."""
        self._actions.protocols = protocols

    def now(self) -> datetime:
        return self._context.clock()

    def session(self) -> Session:
        """A read-only session for the inactivity sweep's snapshot."""
        return self._context.sessions()

    def register_delivery(self, channel: str, delivery: Delivery) -> None:
        """How the channel named `channel` (a conversation's `channel`) carries agents' messages to its citizens."""
        self._context.register_delivery(channel, delivery)

    def delivery(self, channel: str) -> Delivery:
        return self._context.delivery(channel)

    # --- citizen side -------------------------------------------------------------------------------------

    def request(
        self, conversation_id: str, *, reason: str, source: str, team: str | None = None, skill: str | None = None
    ) -> Ticket:
        return self._queues.request(conversation_id, reason=reason, source=source, team=team, skill=skill)

    def request_in(
        self,
        session: Session,
        conversation_id: str,
        *,
        reason: str,
        source: str,
        team: str | None = None,
        skill: str | None = None,
    ) -> Requested:
        return self._queues.request_in(session, conversation_id, reason=reason, source=source, team=team, skill=skill)

    def announce(self, requested: Requested | None) -> None:
        self._queues.announce(requested)

    def require_team(self, team: str) -> None:
        self._queues.require_team(team)

    def enqueue(self, conversation_id: str, *, team: str, reason: str) -> int | None:
        return self._queues.enqueue(conversation_id, team=team, reason=reason)

    def ticket(self, conversation_id: str) -> Ticket:
        return self._queues.ticket(conversation_id)

    def leave(self, conversation_id: str) -> None:
        self._queues.leave(conversation_id)

    def citizen_message(self, conversation_id: str, text: str) -> MessageView:
        return self._context.citizen_message(conversation_id, text)

    def citizen_message_in(self, session: Session, conversation_id: str, text: str) -> MessageView:
        return self._context.citizen_message_in(session, conversation_id, text)

    def push(self, message: MessageView) -> None:
        self._context.push(message)

    def survey(self, conversation_id: str, score: int, comment: str | None, *, handoff_id: int | None = None) -> None:
        self._actions.survey(conversation_id, score, comment, handoff_id=handoff_id)

    # --- annotations --------------------------------------------------------------------------------------

    def annotate_in(self, session: Session, message_id: int, text: str) -> Sentiment | None:
        return self._annotations.annotate_in(session, message_id, text)

    def sentiments(self, conversation_id: str) -> dict[int, Sentiment]:
        return self._annotations.sentiments(conversation_id)

    def translate_incoming(self, message: MessageView, *, agent_language: str | None = None) -> MessageTranslation:
        return self._annotations.translate_incoming(message, agent_language=agent_language)

    def translations(self, conversation_id: str) -> dict[int, MessageTranslation]:
        return self._annotations.translations(conversation_id)

    def note(self, conversation_id: str, agent: str, text: str) -> None:
        self._annotations.note(conversation_id, agent, text)

    # --- agent side ---------------------------------------------------------------------------------------

    def claim(self, conversation_id: str, agent: str) -> HandoffView:
        return self._dispatcher.claim(conversation_id, agent)

    def reply(
        self, conversation_id: str, agent: str, text: str, *, override: bool = False, agent_language: str | None = None
    ) -> MessageView:
        return self._actions.reply(conversation_id, agent, text, override=override, agent_language=agent_language)

    def transfer(self, conversation_id: str, agent: str, team: str) -> Ticket:
        return self._actions.transfer(conversation_id, agent, team)

    def close(self, conversation_id: str, agent: str, reason_code: str, *, override: bool = False) -> HandoffView:
        return self._actions.close(conversation_id, agent, reason_code, override=override)

    def reassign(self, conversation_id: str, supervisor: str, to_agent: str) -> HandoffView:
        return self._dispatcher.reassign(conversation_id, supervisor, to_agent)

    # --- presence and routing -----------------------------------------------------------------------------

    def set_presence(self, agent: str, status: str) -> list[tuple[str, str]]:
        return self._dispatcher.set_presence(agent, status)

    def profile(self, agent: str) -> Profile:
        return self._dispatcher.profile(agent)

    def save_profile(self, profile: Profile) -> Profile:
        return self._dispatcher.save_profile(profile)

    def route(self, teams: Iterable[str] | None = None) -> list[tuple[str, str]]:
        return self._dispatcher.route(teams)

    def overflow(self) -> list[tuple[str, str]]:
        return self._queues.overflow()

    def rebuild(self) -> int:
        return self._queues.rebuild()

    # --- inactivity (handoff.timeouts) -------------------------------------------------------------

    def waiting_since(self, before: datetime) -> list[str]:
        return self._steps.waiting_since(before)

    def expire_wait(self, conversation_id: str) -> bool:
        return self._steps.expire_wait(conversation_id)

    def requeue_idle(self, conversation_id: str, handoff_id: int, agent: str, latest_id: int | None) -> bool:
        return self._steps.requeue_idle(conversation_id, handoff_id, agent, latest_id)

    def warn_idle_citizen(self, conversation_id: str, handoff_id: int, latest_id: int | None, grace_s: float) -> bool:
        return self._steps.warn_idle_citizen(conversation_id, handoff_id, latest_id, grace_s)

    def close_idle(self, conversation_id: str, handoff_id: int, latest_id: int | None) -> bool:
        return self._steps.close_idle(conversation_id, handoff_id, latest_id)

    # --- reading ------------------------------------------------------------------------------------------

    def get(self, handoff_id: int) -> HandoffView | None:
        return self._records.get(handoff_id)

    def current(self, conversation_id: str) -> HandoffView | None:
        return self._records.current(conversation_id)

    def history(self, conversation_id: str) -> list[HandoffView]:
        return self._records.history(conversation_id)

    def waiting(self, team: str | None = None) -> list[tuple[HandoffView, int]]:
        return self._queues.waiting(team)

    def served(self) -> list[HandoffView]:
        return self._records.served()

    def assigned_to(self, agent: str) -> list[HandoffView]:
        return self._records.assigned_to(agent)

    def since(self, start: datetime) -> list[HandoffView]:
        return self._records.since(start)

    def recent_messages(self, session: Session, conversation_id: str, limit: int = 6) -> list[MessageView]:
        return self._records.recent_messages(session, conversation_id, limit)
