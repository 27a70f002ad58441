"""Signing in and keeping an account safe: passwords, lock-out, per-IP throttling, two-factor, sessions.

Failures say as little as possible: an unknown user, a wrong password, a missing or wrong second factor and a
locked account all answer `invalid_credentials` after the same argon2 work, so the answer reveals neither which
usernames exist, nor whether a password was right, nor whether the account uses two-factor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import totp
from core.accounts.directory import normalize_username, user_from_row
from core.accounts.models import PasswordHistory, RecoveryCode, User
from core.accounts.passwords import PasswordPolicy, Passwords
from core.accounts.roles import Role
from core.accounts.sessions import NewSession, SessionInfo, SessionStore
from core.accounts.types import AccountError, Origin, StaffUser
from core.audit import AuditEvent, AuditSink
from core.privacy import mask
from core.ratelimit import RateLimiter

# Restrictions a session can carry; each one confines it to the routes that clear it.
TOTP_REQUIRED = "totp_required"  # a second factor is enrolled but not yet given in this session
TOTP_ENROLLMENT_REQUIRED = "totp_enrollment_required"  # the role needs two-factor and none is enrolled
PASSWORD_CHANGE_REQUIRED = "password_change_required"  # expired, or a temporary one


@dataclass(frozen=True)
class AuthConfig:
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    ip_max_attempts: int = 20
    ip_window: timedelta = timedelta(minutes=5)
    totp_required_roles: frozenset[Role] = frozenset({"admin", "supervisor", "agent", "integrator"})
    issuer: str = "Atende"


@dataclass(frozen=True)
class SignedIn:
    session: NewSession
    user: StaffUser


class Authenticator:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        passwords: Passwords,
        policy: PasswordPolicy,
        session_store: SessionStore,
        limiter: RateLimiter,
        cipher: totp.Cipher,
        audit: AuditSink,
        clock: Callable[[], datetime],
        config: AuthConfig,
    ) -> None:
        self._sessions = sessions
        self._passwords = passwords
        self.policy = policy
        self.session_store = session_store
        self._limiter = limiter
        self._cipher = cipher
        self._audit = audit
        self._clock = clock
        self.config = config

    # --- sign-in -----------------------------------------------------------------------------------------

    def throttle(self, origin: Origin, *, what: str = "login") -> None:
        """Counts one attempt from this client IP; too many in the window answer 429 with Retry-After."""
        decision = self._limiter.hit(
            f"{what}:ip:{origin.ip or 'unknown'}",
            limit=self.config.ip_max_attempts,
            window_s=self.config.ip_window.total_seconds(),
        )
        if not decision.allowed:
            self._record("anonymous", "auth.throttled", "ip", origin.ip, origin, what=what)
            retry = max(1, round(decision.retry_after_s))
            raise AccountError("too_many_attempts", 429, headers={"Retry-After": str(retry)}, minutes=-(-retry // 60))

    def login(
        self,
        username: str,
        password: str,
        totp_code: str | None,
        *,
        origin: Origin,
        replaces: str | None = None,
    ) -> SignedIn:
        self.throttle(origin)
        now = self._clock()
        pending = _Pending()
        with self._sessions.begin() as db:
            row = db.scalar(select(User).where(User.username == normalize_username(username)))
            user = self._check_login(db, row, password, totp_code, now, origin, pending, username)
        self._flush(pending)
        if user is None:  # _flush raised the refusal; this only narrows the type
            raise AccountError("invalid_credentials", 401)
        session = self.session_store.create(
            user.id,
            auth_method="password",
            mfa_verified=user.totp_enabled,
            replaces=replaces,
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
        self._record(user.subject, "user.login", "user", str(user.id), origin, method="password", mfa=user.totp_enabled)
        return SignedIn(session, user)

    def _check_login(
        self,
        db: Session,
        row: User | None,
        password: str,
        totp_code: str | None,
        now: datetime,
        origin: Origin,
        pending: _Pending,
        username: str,
    ) -> StaffUser | None:
        """The signed-in user, or None with the refusal in `pending` (committed with the failure count)."""
        if row is None or not row.is_active or row.password_hash is None:
            self._passwords.burn(password)
            reason = "unknown_user" if row is None else ("disabled" if not row.is_active else "sso_only")
            self._failed(pending, row, reason, origin, username=username)
            pending.error = AccountError("invalid_credentials", 401)
            return None
        if row.locked_until is not None and now < row.locked_until:
            # No verification while locked: a right password must not be told apart from a wrong one.
            self._passwords.burn(password)
            self._failed(pending, row, "locked", origin)
            pending.error = AccountError("invalid_credentials", 401)
            return None
        if row.locked_until is not None:
            row.locked_until, row.failed_logins = None, 0
        if not self._passwords.verify(row.password_hash, password):
            self._count_failure(pending, row, now, "bad_password", origin)
            pending.error = AccountError("invalid_credentials", 401)
            return None
        if row.totp_enabled:
            # The code comes with the password, and a missing or wrong one answers exactly like a wrong
            # password: a distinct answer would confirm that the password was right.
            if not totp_code or not totp_code.strip():
                self._count_failure(pending, row, now, "missing_totp", origin)
                pending.error = AccountError("invalid_credentials", 401)
                return None
            if not self._check_second_factor(row, totp_code, now, origin, pending, db):
                self._count_failure(pending, row, now, "bad_totp", origin)
                pending.error = AccountError("invalid_credentials", 401)
                return None
        if self._passwords.needs_rehash(row.password_hash):
            row.password_hash = self._passwords.hash(password)
        row.failed_logins = 0
        row.last_login_at = now
        return user_from_row(db, row)

    def sign_in_external(
        self, user: StaffUser, *, method: str, mfa_verified: bool, origin: Origin, replaces: str | None
    ) -> SignedIn:
        """A session for someone an identity provider vouched for (single sign-on)."""
        with self._sessions.begin() as db:
            row = db.get(User, user.id)
            if row is None or not row.is_active:
                raise AccountError("invalid_credentials", 401)
            row.last_login_at = self._clock()
            fresh = user_from_row(db, row)
        session = self.session_store.create(
            fresh.id,
            auth_method=method,
            mfa_verified=mfa_verified,
            replaces=replaces,
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
        self._record(fresh.subject, "user.login", "user", str(fresh.id), origin, method=method, mfa=mfa_verified)
        return SignedIn(session, fresh)

    def logout(self, cookie: str, user: StaffUser, origin: Origin) -> None:
        self.session_store.delete(cookie)
        self._record(user.subject, "user.logout", "user", str(user.id), origin)

    def restrictions(self, user: StaffUser, session: SessionInfo) -> frozenset[str]:
        found = set()
        if user.totp_enabled and not session.mfa_verified:
            found.add(TOTP_REQUIRED)
        # A trusted single sign-on provider did the second factor itself.
        trusted_sso = session.mfa_verified and session.auth_method != "password"
        if not user.totp_enabled and user.role in self.config.totp_required_roles and not trusted_sso:
            found.add(TOTP_ENROLLMENT_REQUIRED)
        if (
            user.has_password
            and session.auth_method == "password"
            and (user.must_change_password or self.policy.expired(user.password_changed_at, self._clock()))
        ):
            found.add(PASSWORD_CHANGE_REQUIRED)
        return frozenset(found)

    # --- passwords ---------------------------------------------------------------------------------------

    def change_password(
        self, user_id: int, current: str, new: str, *, origin: Origin, session_cookie: str | None
    ) -> NewSession:
        """Checks the current password (a wrong one counts towards lock-out), applies the policy and the
        history, then ends every session of the account and opens a new one for this browser."""
        self.throttle(origin, what="password")
        now = self._clock()
        mfa_done = self._session_mfa(session_cookie)
        pending = _Pending()
        with self._sessions.begin() as db:
            row = _require_active(db, user_id)
            if row.locked_until is not None and now < row.locked_until:
                raise AccountError("account_locked", 423)
            if not self._passwords.verify(row.password_hash, current):
                self._count_failure(pending, row, now, "bad_current_password", origin)
                pending.error = AccountError("wrong_password", 403)
            else:
                self._set_password(db, row, new, now)
        self._flush(pending)
        self.session_store.delete_for_user(user_id)
        session = self.session_store.create(
            user_id, auth_method="password", mfa_verified=mfa_done, ip=origin.ip, user_agent=origin.user_agent
        )
        self._record(f"user:{user_id}", "user.password_changed", "user", str(user_id), origin)
        return session

    def _set_password(self, db: Session, row: User, new: str, now: datetime) -> None:
        problems = self.policy.problems(new, username=row.username)
        if problems:
            raise AccountError("password_rejected", 422, extra={"problems": problems}, min=self.policy.min_length)
        history = list(
            db.scalars(
                select(PasswordHistory.password_hash)
                .where(PasswordHistory.user_id == row.id)
                .order_by(PasswordHistory.id.desc())
                .limit(max(self.policy.history, 1))
            )
        )
        if self.policy.reused(self._passwords, new, [row.password_hash or "", *history]):
            raise AccountError(
                "password_rejected", 422, extra={"problems": ["password.reused"]}, min=self.policy.min_length
            )
        hashed = self._passwords.hash(new)
        row.password_hash = hashed
        row.password_changed_at = now
        row.must_change_password = False
        row.failed_logins = 0
        db.add(PasswordHistory(user_id=row.id, password_hash=hashed, created_at=now))
        db.flush()
        keep = db.scalars(
            select(PasswordHistory.id)
            .where(PasswordHistory.user_id == row.id)
            .order_by(PasswordHistory.id.desc())
            .limit(max(self.policy.history, 1))
        ).all()
        db.execute(delete(PasswordHistory).where(PasswordHistory.user_id == row.id, PasswordHistory.id.not_in(keep)))

    # --- two-factor --------------------------------------------------------------------------------------

    def begin_totp(self, user_id: int, *, origin: Origin) -> tuple[str, str]:
        """A new secret (pending until confirmed) and its otpauth:// address for the authenticator app."""
        secret = totp.new_secret()
        with self._sessions.begin() as db:
            row = _require_active(db, user_id)
            if row.totp_enabled:
                raise AccountError("totp_already_enabled", 409)
            row.totp_secret = self._cipher.encrypt(secret)
            username = row.username
        self._record(f"user:{user_id}", "user.2fa_enrolment_started", "user", str(user_id), origin)
        return secret, totp.provisioning_uri(secret, username=username, issuer=self.config.issuer)

    def confirm_totp(
        self, user_id: int, code: str, *, origin: Origin, session: SessionInfo
    ) -> tuple[list[str], NewSession]:
        """Turns two-factor on once the app's first code matches; returns the recovery codes (shown once)."""
        self.throttle(origin, what="totp")
        now = self._clock()
        codes = totp.new_recovery_codes()
        with self._sessions.begin() as db:
            row = _require_active(db, user_id)
            if row.totp_enabled:
                raise AccountError("totp_already_enabled", 409)
            if row.totp_secret is None:
                raise AccountError("totp_not_started", 409)
            step = totp.matching_step(self._cipher.decrypt(row.totp_secret), code, now)
            if step is None:
                raise AccountError("totp_invalid", 422)
            row.totp_enabled = True
            row.totp_last_step = step
            db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
            db.add_all(RecoveryCode(user_id=user_id, code_hash=totp.recovery_hash(c)) for c in codes)
        # A privilege change: the session that proved the second factor replaces every earlier one.
        self.session_store.delete_for_user(user_id)
        new = self.session_store.create(
            user_id, auth_method=session.auth_method, mfa_verified=True, ip=origin.ip, user_agent=origin.user_agent
        )
        self._record(f"user:{user_id}", "user.2fa_enabled", "user", str(user_id), origin)
        return codes, new

    def disable_totp(self, user_id: int, password: str, code: str, *, origin: Origin) -> None:
        self.throttle(origin, what="totp")
        now = self._clock()
        pending = _Pending()
        with self._sessions.begin() as db:
            row = _require_active(db, user_id)
            if row.role in self.config.totp_required_roles:
                raise AccountError("totp_required_by_role", 403)
            if not row.totp_enabled:
                raise AccountError("totp_not_enabled", 409)
            if not self._passwords.verify(row.password_hash, password):
                self._count_failure(pending, row, now, "bad_current_password", origin)
                pending.error = AccountError("wrong_password", 403)
            elif not self._check_second_factor(row, code, now, origin, pending, db):
                self._count_failure(pending, row, now, "bad_totp", origin)
                pending.error = AccountError("totp_invalid", 422)
            else:
                row.totp_enabled = False
                row.totp_secret = None
                row.totp_last_step = None
                db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        self._flush(pending)
        self._record(f"user:{user_id}", "user.2fa_disabled", "user", str(user_id), origin)

    def verify_second_factor(self, session: SessionInfo, code: str, *, origin: Origin) -> NewSession:
        """Completes a session opened without the second factor (single sign-on from an untrusted provider)."""
        self.throttle(origin, what="totp")
        now = self._clock()
        pending = _Pending()
        with self._sessions.begin() as db:
            row = _require_active(db, session.user_id)
            if not row.totp_enabled:
                raise AccountError("totp_not_enabled", 409)
            if row.locked_until is not None and now < row.locked_until:
                raise AccountError("account_locked", 423)
            if not self._check_second_factor(row, code, now, origin, pending, db):
                self._count_failure(pending, row, now, "bad_totp", origin)
                pending.error = AccountError("totp_invalid", 401)
        self._flush(pending)
        new = self.session_store.create(
            session.user_id,
            auth_method=session.auth_method,
            mfa_verified=True,
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
        self.session_store.delete_for_user(session.user_id, keep=new.cookie)
        self._record(f"user:{session.user_id}", "user.2fa_verified", "user", str(session.user_id), origin)
        return new

    # --- helpers -----------------------------------------------------------------------------------------

    def _check_second_factor(
        self, row: User, code: str, now: datetime, origin: Origin, pending: _Pending, db: Session
    ) -> bool:
        if row.totp_secret is None:
            return False
        if totp.looks_like_recovery_code(code):
            used = db.scalar(
                select(RecoveryCode).where(
                    RecoveryCode.user_id == row.id,
                    RecoveryCode.code_hash == totp.recovery_hash(code),
                    RecoveryCode.used_at.is_(None),
                )
            )
            if used is None:
                return False
            used.used_at = now
            pending.events.append(_event(f"user:{row.id}", "user.recovery_code_used", "user", str(row.id), origin))
            return True
        step = totp.matching_step(self._cipher.decrypt(row.totp_secret), code, now, after=row.totp_last_step)
        if step is None:
            return False
        row.totp_last_step = step
        return True

    def _session_mfa(self, cookie: str | None) -> bool:
        if not cookie:
            return False
        info = self.session_store.get(cookie)
        return info is not None and info.mfa_verified

    def _count_failure(self, pending: _Pending, row: User, now: datetime, reason: str, origin: Origin) -> None:
        row.failed_logins += 1
        self._failed(pending, row, reason, origin)
        if row.failed_logins >= self.config.max_failures:
            row.locked_until = now + self.config.lockout
            row.failed_logins = 0
            pending.events.append(
                _event(f"user:{row.id}", "user.locked", "user", str(row.id), origin, until=row.locked_until.isoformat())
            )

    def _failed(
        self, pending: _Pending, row: User | None, reason: str, origin: Origin, *, username: str | None = None
    ) -> None:
        details: dict[str, Any] = {"reason": reason}
        if row is None and username is not None:
            details["username"] = mask(username[:64])
        object_id = str(row.id) if row else None
        pending.events.append(_event("anonymous", "user.login_failed", "user", object_id, origin, **details))

    def _flush(self, pending: _Pending) -> None:
        """Audits what happened inside a transaction once it is committed, then raises its refusal if any.

        Recording inside the transaction would open a second writer on SQLite while the first holds the lock.
        """
        for event in pending.events:
            self._audit.record(event)
        if pending.error is not None:
            raise pending.error

    def _record(
        self, actor: str, action: str, object_type: str, object_id: str | None, origin: Origin, **details: Any
    ) -> None:
        self._audit.record(_event(actor, action, object_type, object_id, origin, **details))


@dataclass
class _Pending:
    events: list[AuditEvent] = field(default_factory=list)
    error: AccountError | None = None


def _event(
    actor: str, action: str, object_type: str, object_id: str | None, origin: Origin, **details: Any
) -> AuditEvent:
    return AuditEvent(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        ip=origin.ip,
        user_agent=origin.user_agent,
        details=details,
    )


def _require_active(db: Session, user_id: int) -> User:
    row = db.get(User, user_id)
    if row is None or not row.is_active:
        raise AccountError("user_not_found", 404)
    return row
