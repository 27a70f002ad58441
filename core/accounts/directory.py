"""Staff accounts and teams: create, list, change, disable, unlock, reset. Every change is audited."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.models import PasswordHistory, RecoveryCode, Team, User
from core.accounts.passwords import PasswordPolicy, Passwords, temporary_password
from core.accounts.roles import Role, parse_role
from core.accounts.sessions import SessionStore
from core.accounts.teams import descendants, team_edges, visible_team_ids
from core.accounts.types import AccountError, Origin, StaffUser, TeamInfo
from core.audit import AuditEvent, AuditSink

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Unset(Enum):
    UNSET = 0


UNSET = _Unset.UNSET


@dataclass(frozen=True)
class UserChanges:
    """What an administrator changes on an account; fields left UNSET stay as they are."""

    role: Role | _Unset = UNSET
    team_id: int | _Unset | None = UNSET
    display_name: str | _Unset = UNSET
    email: str | _Unset | None = UNSET
    is_active: bool | _Unset = UNSET

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not UNSET}


def normalize_username(username: str) -> str:
    return username.strip().lower()


class Directory:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        passwords: Passwords,
        policy: PasswordPolicy,
        session_store: SessionStore,
        audit: AuditSink,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._passwords = passwords
        self._policy = policy
        self._session_store = session_store
        self._audit = audit
        self._clock = clock

    # --- teams -----------------------------------------------------------------------------------------

    def teams(self, *, only: frozenset[int] | None = None) -> list[TeamInfo]:
        stmt = select(Team).order_by(Team.name)
        if only is not None:
            stmt = stmt.where(Team.id.in_(only))
        with self._sessions() as db:
            return [_team(row) for row in db.scalars(stmt)]

    def team(self, ref: int | str) -> TeamInfo | None:
        with self._sessions() as db:
            row = _find_team(db, ref)
            return _team(row) if row else None

    def create_team(self, name: str, *, parent: int | str | None = None, actor: str, origin: Origin) -> TeamInfo:
        name = name.strip()
        if not 0 < len(name) <= 120:
            raise AccountError("team_name", 422)
        with self._sessions.begin() as db:
            parent_row = _require_team(db, parent) if parent is not None else None
            if db.scalar(select(Team.id).where(func.lower(Team.name) == name.lower())) is not None:
                raise AccountError("team_exists", 409)
            row = Team(name=name, parent_id=parent_row.id if parent_row else None, created_at=self._clock())
            db.add(row)
            try:
                # The check above misses some (SQLite's lower() folds only ASCII; a concurrent insert): the
                # unique index has the last word.
                db.flush()
            except IntegrityError as exc:
                raise AccountError("team_exists", 409) from exc
            info = _team(row)
        self._record(actor, "team.created", "team", str(info.id), origin, name=name, parent_id=info.parent_id)
        return info

    def update_team(
        self,
        team_id: int,
        *,
        name: str | None = None,
        parent_id: int | _Unset | None = UNSET,
        actor: str,
        origin: Origin,
    ) -> TeamInfo:
        with self._sessions.begin() as db:
            row = db.get(Team, team_id)
            if row is None:
                raise AccountError("team_not_found", 404)
            changes: dict[str, Any] = {}
            if name is not None and name.strip() != row.name:
                clean = name.strip()
                if not 0 < len(clean) <= 120:
                    raise AccountError("team_name", 422)
                row.name = changes["name"] = clean
            if parent_id is not UNSET and parent_id != row.parent_id:
                if parent_id is not None:
                    _require_team(db, parent_id)
                    # A team cannot move under itself or one of its own descendants.
                    if parent_id in descendants(team_edges(db), team_id):
                        raise AccountError("team_cycle", 422)
                row.parent_id = changes["parent_id"] = parent_id
            try:
                db.flush()
            except IntegrityError as exc:
                raise AccountError("team_exists", 409) from exc
            info = _team(row)
        if changes:
            self._record(actor, "team.updated", "team", str(team_id), origin, **changes)
        return info

    # --- users -----------------------------------------------------------------------------------------

    def get(self, user_id: int) -> StaffUser | None:
        with self._sessions() as db:
            row = db.get(User, user_id)
            return _user(db, row) if row else None

    def by_username(self, username: str) -> StaffUser | None:
        with self._sessions() as db:
            row = db.scalar(select(User).where(User.username == normalize_username(username)))
            return _user(db, row) if row else None

    def require(self, ref: int | str) -> StaffUser:
        user = self.get(ref) if isinstance(ref, int) else self.by_username(ref)
        if user is None:
            raise AccountError("user_not_found", 404)
        return user

    def users(self, *, team_ids: frozenset[int] | None = None) -> list[StaffUser]:
        """Every account, or those in `team_ids` (a supervisor's view)."""
        stmt = select(User).order_by(User.username)
        if team_ids is not None:
            stmt = stmt.where(User.team_id.in_(team_ids))
        with self._sessions() as db:
            return [_user(db, row, with_teams=False) for row in db.scalars(stmt)]

    def create_user(
        self,
        username: str,
        role: Role,
        *,
        team: int | str | None = None,
        password: str | None = None,
        display_name: str = "",
        email: str | None = None,
        oidc_subject: str | None = None,
        actor: str,
        origin: Origin,
    ) -> tuple[StaffUser, str | None]:
        """A new account; without `password` it gets a temporary one (returned) that must be changed."""
        username = normalize_username(username)
        if not USERNAME.match(username):
            raise AccountError("username_invalid", 422)
        if email is not None:
            email = email.strip().lower() or None
        if email is not None and not EMAIL.match(email):
            raise AccountError("email_invalid", 422)
        temporary = None
        if password is None:
            temporary = password = temporary_password()
        else:
            self._check_policy(password, username)
        now = self._clock()
        hashed = self._passwords.hash(password)
        with self._sessions.begin() as db:
            team_row = _require_team(db, team) if team is not None else None
            row = User(
                username=username,
                display_name=display_name.strip()[:200],
                email=email,
                role=role,
                team_id=team_row.id if team_row else None,
                is_active=True,
                password_hash=hashed,
                password_changed_at=now,
                must_change_password=temporary is not None,
                failed_logins=0,
                totp_enabled=False,
                oidc_subject=oidc_subject,
                created_at=now,
                updated_at=now,
            )
            db.add(row)
            try:
                db.flush()
            except IntegrityError as exc:
                raise AccountError("user_exists", 409) from exc
            db.add(PasswordHistory(user_id=row.id, password_hash=hashed, created_at=now))
            user = _user(db, row)
        self._record(
            actor, "user.created", "user", str(user.id), origin, username=username, role=role, team_id=user.team_id
        )
        return user, temporary

    def provision(
        self, username: str, role: Role, *, team: str | None, email: str | None, oidc_subject: str
    ) -> StaffUser:
        """An account for someone a trusted single sign-on provider vouches for (no local password)."""
        now = self._clock()
        with self._sessions.begin() as db:
            team_row = _require_team(db, team) if team is not None else None
            base, n = normalize_username(username)[:60] or "sso", 1
            candidate = base
            while db.scalar(select(User.id).where(User.username == candidate)) is not None:
                n += 1
                candidate = f"{base}-{n}"
            row = User(
                username=candidate,
                display_name="",
                email=email,
                role=role,
                team_id=team_row.id if team_row else None,
                is_active=True,
                password_hash=None,
                must_change_password=False,
                failed_logins=0,
                totp_enabled=False,
                oidc_subject=oidc_subject,
                created_at=now,
                updated_at=now,
            )
            db.add(row)
            db.flush()
            user = _user(db, row)
        self._record("system", "user.provisioned", "user", str(user.id), Origin(), role=role, team_id=user.team_id)
        return user

    def update_user(self, user_id: int, changes: UserChanges, *, actor: str, origin: Origin) -> StaffUser:
        given = changes.given()
        with self._sessions.begin() as db:
            row = db.get(User, user_id)
            if row is None:
                raise AccountError("user_not_found", 404)
            if "team_id" in given and given["team_id"] is not None:
                _require_team(db, given["team_id"])
            if "email" in given and given["email"] is not None:
                given["email"] = given["email"].strip().lower() or None
                if given["email"] is not None and not EMAIL.match(given["email"]):
                    raise AccountError("email_invalid", 422)
            if "display_name" in given:
                given["display_name"] = str(given["display_name"]).strip()[:200]
            before = {name: getattr(row, name) for name in given}
            for name, value in given.items():
                setattr(row, name, value)
            row.updated_at = self._clock()
            try:
                db.flush()
            except IntegrityError as exc:
                raise AccountError("user_exists", 409) from exc
            user = _user(db, row)
        changed = {name: value for name, value in given.items() if before[name] != value}
        if not changed:
            return user
        # New privileges (or none at all) must not ride on sessions opened under the old ones.
        if changed.keys() & {"role", "team_id", "is_active"}:
            self._session_store.delete_for_user(user_id)
        details = {k: v for k, v in changed.items() if k != "email"} | (
            {"email": "changed"} if "email" in changed else {}
        )
        action = "user.disabled" if changed.get("is_active") is False else "user.updated"
        self._record(actor, action, "user", str(user_id), origin, **details)
        return user

    def disable(self, user_id: int, *, actor: str, origin: Origin) -> StaffUser:
        return self.update_user(user_id, UserChanges(is_active=False), actor=actor, origin=origin)

    def unlock(self, user_id: int, *, actor: str, origin: Origin) -> StaffUser:
        with self._sessions.begin() as db:
            row = _require_user(db, user_id)
            row.failed_logins = 0
            row.locked_until = None
            user = _user(db, row)
        self._record(actor, "user.unlocked", "user", str(user_id), origin)
        return user

    def reset_two_factor(self, user_id: int, *, actor: str, origin: Origin) -> StaffUser:
        """For a member who lost their phone: they enrol again at the next sign-in (if their role needs it)."""
        with self._sessions.begin() as db:
            row = _require_user(db, user_id)
            row.totp_secret = None
            row.totp_enabled = False
            row.totp_last_step = None
            db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
            user = _user(db, row)
        self._session_store.delete_for_user(user_id)
        self._record(actor, "user.2fa_reset", "user", str(user_id), origin)
        return user

    def reset_password(self, user_id: int, *, actor: str, origin: Origin) -> tuple[StaffUser, str]:
        """A temporary password to hand over; every session of the account ends."""
        temporary = temporary_password()
        hashed = self._passwords.hash(temporary)
        now = self._clock()
        with self._sessions.begin() as db:
            row = _require_user(db, user_id)
            row.password_hash = hashed
            row.password_changed_at = now
            row.must_change_password = True
            row.failed_logins = 0
            row.locked_until = None
            user = _user(db, row)
        self._session_store.delete_for_user(user_id)
        self._record(actor, "user.password_reset", "user", str(user_id), origin)
        return user, temporary

    def find_for_sso(self, provider: str, subject: str, email: str | None) -> StaffUser | None:
        """The account linked to this provider's subject, else the one with this (verified) e-mail, which then
        gets linked."""
        link = f"{provider}:{subject}"
        with self._sessions.begin() as db:
            row = db.scalar(select(User).where(User.oidc_subject == link))
            if row is None and email:
                row = db.scalar(select(User).where(User.email == email.strip().lower()))
                if row is not None and row.oidc_subject is None:
                    row.oidc_subject = link
                elif row is not None:
                    # Linked to another identity of this or another provider: an e-mail match is not enough.
                    return None
            return _user(db, row) if row else None

    def _check_policy(self, password: str, username: str) -> None:
        problems = self._policy.problems(password, username=username)
        if problems:
            raise AccountError("password_rejected", 422, extra={"problems": problems}, min=self._policy.min_length)

    def _record(
        self, actor: str, action: str, object_type: str, object_id: str | None, origin: Origin, **details: Any
    ) -> None:
        self._audit.record(
            AuditEvent(
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                ip=origin.ip,
                user_agent=origin.user_agent,
                details=details,
            )
        )


def _find_team(db: Session, ref: int | str | None) -> Team | None:
    if ref is None:
        return None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return db.get(Team, int(ref))
    return db.scalar(select(Team).where(func.lower(Team.name) == ref.strip().lower()))


def _require_team(db: Session, ref: int | str | None) -> Team:
    row = _find_team(db, ref)
    if row is None:
        raise AccountError("team_not_found", 404)
    return row


def _require_user(db: Session, user_id: int) -> User:
    row = db.get(User, user_id)
    if row is None:
        raise AccountError("user_not_found", 404)
    return row


def _team(row: Team) -> TeamInfo:
    return TeamInfo(id=row.id, name=row.name, parent_id=row.parent_id)


def user_from_row(db: Session, row: User, *, with_teams: bool = True) -> StaffUser:
    role = parse_role(row.role)
    return StaffUser(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        email=row.email,
        role=role,
        team_id=row.team_id,
        is_active=row.is_active,
        has_password=row.password_hash is not None,
        password_changed_at=row.password_changed_at,
        must_change_password=row.must_change_password,
        totp_enabled=row.totp_enabled,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
        oidc_subject=row.oidc_subject,
        last_login_at=row.last_login_at,
        created_at=row.created_at,
        team_ids=visible_team_ids(db, role, row.team_id) if with_teams else frozenset(),
    )


_user = user_from_row
