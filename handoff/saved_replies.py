"""Saved replies ("respostas prontas"): texts a team's agents reuse, found by words of their title or text.

The search is accent- and case-insensitive on every backend because it never asks the database to fold: each
row stores `search_text`, its title and text folded once in Python (`fold`), and a query is folded the same way
and matched with plain LIKE (docs/decisions/0033-saved-replies-and-service-protocols.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker
from unidecode import unidecode

from core.models import Base, UTCDateTime, utcnow

MAX_TEAM: Final = 64
MAX_TITLE: Final = 120
MAX_TEXT: Final = 4000
MAX_QUERY: Final = 200
LIKE_ESCAPE: Final = "\\"


class SavedReply(Base):
    __tablename__ = "saved_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(MAX_TEAM), index=True)  # a handoff team, as in Handoff.team
    title: Mapped[str] = mapped_column(String(MAX_TITLE))
    text: Mapped[str] = mapped_column(Text)
    # fold(title) + "\n" + fold(text), written with them: what searches match.
    search_text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))  # the principal's subject, e.g. "user:7"
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def fold(text: str) -> str:
    """Lower-case ASCII with single spaces: "Certidão  de ÓBITO" → "certidao de obito"."""
    return " ".join(unidecode(text).casefold().split())


def _search_text(title: str, text: str) -> str:
    return f"{fold(title)}\n{fold(text)}"


def _like_word(word: str) -> str:
    escaped = word.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")
    return f"%{escaped}%"


class SavedReplyError(Exception):
    """A refused change; `code` for programs, the pt-BR catalogue `key` (with `params`) for people."""

    def __init__(self, code: str, key: str, status: int = 422, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.key = key
        self.status = status
        self.params = params


@dataclass(frozen=True, slots=True)
class SavedReplyView:
    id: int
    team: str
    title: str
    text: str
    created_by: str
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team": self.team,
            "title": self.title,
            "text": self.text,
            "created_by": self.created_by,
            "updated_at": self.updated_at.isoformat(),
        }


def _view(row: SavedReply) -> SavedReplyView:
    return SavedReplyView(row.id, row.team, row.title, row.text, row.created_by, row.updated_at)


def _checked(team: str, title: str, text: str) -> tuple[str, str, str]:
    team, title, text = team.strip(), " ".join(title.split()), text.strip()
    if not team:
        raise SavedReplyError("empty_team", "saved_replies.error.empty_team")
    if len(team) > MAX_TEAM:
        raise SavedReplyError("team_too_long", "saved_replies.error.team_too_long", max=MAX_TEAM)
    if not title:
        raise SavedReplyError("empty_title", "saved_replies.error.empty_title")
    if len(title) > MAX_TITLE:
        raise SavedReplyError("title_too_long", "saved_replies.error.title_too_long", max=MAX_TITLE)
    if not text:
        raise SavedReplyError("empty_text", "saved_replies.error.empty_text")
    if len(text) > MAX_TEXT:
        raise SavedReplyError("text_too_long", "saved_replies.error.text_too_long", max=MAX_TEXT)
    return team, title, text


class SavedReplies:
    """A team's saved replies: searched by agents, kept by supervisors (the routes check who may do which)."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    def search(self, team: str | None, query: str = "", *, limit: int = 50) -> list[SavedReplyView]:
        """The team's replies (every team's without one) holding every word of `query`, by title.

        Sorted in Python by the folded title: the database's collation would order accented titles differently
        on SQLite and PostgreSQL. A team holds tens of replies, so fetching its matches whole is cheap.
        """
        stmt = select(SavedReply)
        if team is not None:
            stmt = stmt.where(SavedReply.team == team.strip())
        for word in fold(query[:MAX_QUERY]).split():
            stmt = stmt.where(SavedReply.search_text.like(_like_word(word), escape=LIKE_ESCAPE))
        with self._sessions() as session:
            rows = session.scalars(stmt).all()
            views = [_view(row) for row in rows]
        views.sort(key=lambda view: (fold(view.title), view.id))
        return views[: max(0, limit)]

    def titles(self, team: str) -> set[str]:
        """The titles the team's replies already use."""
        with self._sessions() as session:
            return set(session.scalars(select(SavedReply.title).where(SavedReply.team == team.strip())))

    def get(self, reply_id: int) -> SavedReplyView | None:
        with self._sessions() as session:
            row = session.get(SavedReply, reply_id)
            return None if row is None else _view(row)

    def create(self, *, team: str, title: str, text: str, author: str) -> SavedReplyView:
        team, title, text = _checked(team, title, text)
        with self._sessions.begin() as session:
            row = SavedReply(
                team=team,
                title=title,
                text=text,
                search_text=_search_text(title, text),
                created_by=author,
                updated_at=self._clock(),
            )
            session.add(row)
            session.flush()
            return _view(row)

    def update(self, reply_id: int, *, team: str, title: str, text: str) -> SavedReplyView:
        """Replace the reply's team, title and text."""
        team, title, text = _checked(team, title, text)
        with self._sessions.begin() as session:
            row = self._require(session, reply_id)
            row.team, row.title, row.text = team, title, text
            row.search_text = _search_text(title, text)
            row.updated_at = self._clock()
            session.flush()
            return _view(row)

    def delete(self, reply_id: int) -> None:
        with self._sessions.begin() as session:
            session.delete(self._require(session, reply_id))

    @staticmethod
    def _require(session: Session, reply_id: int) -> SavedReply:
        row = session.get(SavedReply, reply_id)
        if row is None:
            raise SavedReplyError("saved_reply_not_found", "saved_replies.error.not_found", status=404)
        return row
