"""What the handoff keeps about a conversation besides its messages: staff's internal notes, and for each message
the citizen's sentiment (with its trend), the message's language and its translation for whoever reads it, stored
once in `MessageAnnotation` and read back by the console and the handoff trigger (docs/decisions/0030-sentiment.md,
0032-handoff-translation.md).

The classifier and the translator are the assistant's (assistant.agent_aids); this module only calls them through
their Protocols and stores what they said.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from assistant.agent_aids.sentiment import Sentiment, SentimentClassifier
from assistant.agent_aids.translation import Translator, normalize_language, translate_or_none
from assistant.language import identify_language
from core.i18n import t
from core.models import Conversation, Message
from core.store import MessageView
from handoff.context import HandoffContext, open_row
from handoff.models import MessageAnnotation
from handoff.records import HandoffError, conversation_topic


@dataclass(frozen=True, slots=True)
class MessageTranslation:
    """A message's language and, when its reader speaks another, its translation (as stored with the message)."""

    language: str | None  # the language it was written in; None: not known
    translation: str | None = None
    translation_language: str | None = None


def citizen_text(original: str, translation: str, language: str) -> str:
    """What a citizen reads of an agent's translated message: the translation, then the agent's own words."""
    return f"{translation}\n\n{t('handoff.translation_original', language, original=original)}"


def trend(scores: list[float], window: int = 3) -> str:
    """ "worsening", "improving" or "stable": the mean of the last `window` scores against the ones before."""
    if len(scores) < 2:
        return "stable"
    recent = scores[-window:]
    earlier = scores[:-window] or scores[:1]
    delta = sum(recent) / len(recent) - sum(earlier) / len(earlier)
    if delta <= -0.2:
        return "worsening"
    if delta >= 0.2:
        return "improving"
    return "stable"


class Annotations:
    def __init__(
        self,
        context: HandoffContext,
        *,
        sentiment: SentimentClassifier | None = None,
        translator: Translator | None = None,
    ) -> None:
        self._context = context
        self.sentiment = sentiment  # None: no sentiment trigger and no trend
        self.translator = translator  # None: languages are still detected, nothing is translated

    def note(self, conversation_id: str, agent: str, text: str) -> None:
        """An internal note: seen by staff only, never by the citizen."""
        text = text.strip()
        if not text:
            raise HandoffError("empty_message", "error.empty_message", status=422)
        self._context.store.add_event(conversation_id, "internal_note", {"agent": agent, "text": text[:4000]})
        self._context.live.publish(conversation_topic(conversation_id), {"event": "note", "agent": agent})

    # --- sentiment ----------------------------------------------------------------------------------------

    def annotate_in(self, session: Session, message_id: int, text: str) -> Sentiment | None:
        """Classify a stored citizen message once, in the caller's transaction, and keep the result (the trigger and
        the console read it); an already annotated message keeps its first result."""
        if self.sentiment is None:
            return None
        existing = session.get(MessageAnnotation, message_id)
        if existing is not None and existing.sentiment is not None:
            return Sentiment.stored(existing.sentiment, existing.sentiment_score, existing.sentiment_strong)
        found = self.sentiment.classify(text)
        row = self.row(session, message_id)  # may already hold the message's language and translation
        row.sentiment = found.label
        row.sentiment_score = found.score
        row.sentiment_strong = found.strong
        session.flush()
        return found

    def sentiments(self, conversation_id: str) -> dict[int, Sentiment]:
        """The classified citizen messages of a conversation, by message id."""
        with self._context.sessions() as session:
            rows = session.execute(
                select(
                    MessageAnnotation.message_id,
                    MessageAnnotation.sentiment,
                    MessageAnnotation.sentiment_score,
                    MessageAnnotation.sentiment_strong,
                )
                .join(Message, Message.id == MessageAnnotation.message_id)
                .where(Message.conversation_id == conversation_id, MessageAnnotation.sentiment.is_not(None))
            ).all()
        return {mid: Sentiment.stored(label or "neutral", score, strong) for mid, label, score, strong in rows}

    # --- translation --------------------------------------------------------------------------------------

    def _reader_language(self, session: Session, conversation_id: str) -> str:
        """Whoever serves the conversation reads it; while it waits, the agents' default language."""
        row = open_row(session, conversation_id)
        if row is not None and row.status == "with_agent" and row.agent:
            return self._context.language_of(session, row.agent)
        return self._context.config.agent_language

    def translate_incoming(self, message: MessageView, *, agent_language: str | None = None) -> MessageTranslation:
        """Read a committed citizen message in the agent's language: its language is detected (a message too short
        to tell is taken to be in the conversation's) and, when it is not the agent's, its translation is stored.

        Call it after the message's transaction has committed: the model may take seconds, and no transaction is
        held open meanwhile. A failed translation leaves the message as written. `agent_language`: the reader's
        (the setting's `agent_language` when not given).
        """
        ctx = self._context
        cid = message.conversation_id
        detected = identify_language(message.text)
        with ctx.sessions() as session:
            known = session.scalar(select(Conversation.language).where(Conversation.id == cid))
            reader = agent_language or self._reader_language(session, cid)
        language = detected or normalize_language(known)
        target = normalize_language(reader)
        translation = self.translate(message.text, language, target)
        with ctx.sessions.begin() as session:
            if detected is not None and detected != known:  # the citizen's language, which replies are sent in
                session.execute(
                    update(Conversation)
                    .where(Conversation.id == cid)
                    .values(language=detected, updated_at=Conversation.updated_at)
                    .execution_options(synchronize_session=False)
                )
            row = self.row(session, message.id)
            row.language = language
            if translation is not None:
                row.translation, row.translation_language = translation, target
        if translation is None:
            return MessageTranslation(language)
        ctx.live.publish(conversation_topic(cid), {"event": "translated", "message_id": message.id})
        return MessageTranslation(language, translation, target)

    def translations(self, conversation_id: str) -> dict[int, MessageTranslation]:
        """The messages of a conversation whose language is known, with their translations, by message id."""
        with self._context.sessions() as session:
            rows = session.execute(
                select(
                    MessageAnnotation.message_id,
                    MessageAnnotation.language,
                    MessageAnnotation.translation,
                    MessageAnnotation.translation_language,
                )
                .join(Message, Message.id == MessageAnnotation.message_id)
                .where(Message.conversation_id == conversation_id, MessageAnnotation.language.is_not(None))
            ).all()
        return {mid: MessageTranslation(language, text, target) for mid, language, text, target in rows}

    def translate(self, text: str, source: str | None, target: str | None) -> str | None:
        """The translator's text, or None: no translator, a language unknown or the same, or a failed translation."""
        if self.translator is None or source is None or target is None or source == target:
            return None
        return translate_or_none(self.translator, text, source, target)

    def row(self, session: Session, message_id: int) -> MessageAnnotation:
        """The message's annotation, added when it has none yet."""
        row = session.get(MessageAnnotation, message_id)
        if row is None:
            row = MessageAnnotation(message_id=message_id, sentiment_strong=False, created_at=self._context.clock())
            session.add(row)
        return row
