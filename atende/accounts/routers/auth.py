"""Sign-in, sign-out and the member's own account: password and two-factor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from atende.accounts.routers.common import session_body, with_session
from atende.accounts.schemas import CodeIn, LoginIn, PasswordChangeIn, TotpDisableIn
from atende.deps import AccountsDep, CurrentStaff
from core.accounts.access import origin_of
from core.accounts.csrf import HEADER, same
from core.accounts.types import AccountError
from core.audit_http import mark_audited

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.get("/csrf", summary="A CSRF token for the sign-in form (also set as a cookie)")
def csrf_token(request: Request, accounts: AccountsDep) -> JSONResponse:
    current = request.cookies.get(accounts.cookies.csrf)
    token = current if current and accounts.csrf.valid(current, current) else accounts.csrf.issue()
    response = JSONResponse({"csrf_token": token})
    accounts.cookies.set_csrf(response, token)
    return response


@router.post("/login", summary="Sign in with username, password and (when enrolled) a TOTP code")
def login(body: LoginIn, request: Request, accounts: AccountsDep) -> JSONResponse:
    header = request.headers.get(HEADER)
    previous = request.cookies.get(accounts.cookies.session)
    current = accounts.session(previous)
    # The form carries the pre-session token; a signed-in tab switching accounts carries its session's.
    if not (
        accounts.csrf.valid(request.cookies.get(accounts.cookies.csrf), header)
        or (current is not None and same(current.session.csrf_token, header))
    ):
        raise AccountError("csrf_invalid", 403)
    mark_audited(request)  # the sign-in writes its own records, success or failure
    signed = accounts.authn.login(
        body.username, body.password, body.totp_code, origin=origin_of(request), replaces=previous
    )
    return with_session(accounts, signed.user, signed.session)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out (ends this session)")
def logout(request: Request, staff: CurrentStaff, accounts: AccountsDep) -> Response:
    cookie = request.cookies.get(accounts.cookies.session) or ""
    accounts.authn.logout(cookie, staff.user, origin_of(request))
    mark_audited(request)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    accounts.cookies.clear_session(response)
    accounts.cookies.set_csrf(response, accounts.csrf.issue())
    return response


@router.get("/me", summary="The signed-in member, what they may do, and what they still owe")
def me(staff: CurrentStaff, accounts: AccountsDep) -> dict[str, Any]:
    return session_body(accounts, staff.user, staff.session)


@router.post("/password", summary="Change one's own password (every other session ends)")
def change_password(
    body: PasswordChangeIn, request: Request, staff: CurrentStaff, accounts: AccountsDep
) -> JSONResponse:
    new = accounts.authn.change_password(
        staff.user.id,
        body.current_password,
        body.new_password,
        origin=origin_of(request),
        session_cookie=request.cookies.get(accounts.cookies.session),
    )
    mark_audited(request)
    user = accounts.directory.require(staff.user.id)
    return with_session(accounts, user, new)


@router.post("/2fa/enroll", summary="Start two-factor enrolment: a secret and its otpauth:// address")
def enroll(request: Request, staff: CurrentStaff, accounts: AccountsDep) -> dict[str, str]:
    secret, uri = accounts.authn.begin_totp(staff.user.id, origin=origin_of(request))
    mark_audited(request)
    return {"secret": secret, "provisioning_uri": uri}


@router.post("/2fa/confirm", summary="Finish enrolment with the app's first code; returns the recovery codes once")
def confirm(body: CodeIn, request: Request, staff: CurrentStaff, accounts: AccountsDep) -> JSONResponse:
    codes, new = accounts.authn.confirm_totp(staff.user.id, body.code, origin=origin_of(request), session=staff.session)
    mark_audited(request)
    user = accounts.directory.require(staff.user.id)
    return with_session(accounts, user, new, extra={"recovery_codes": codes})


@router.post("/2fa/disable", status_code=status.HTTP_204_NO_CONTENT, summary="Turn two-factor off (if the role allows)")
def disable(body: TotpDisableIn, request: Request, staff: CurrentStaff, accounts: AccountsDep) -> Response:
    accounts.authn.disable_totp(staff.user.id, body.password, body.code, origin=origin_of(request))
    mark_audited(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/2fa/verify", summary="Give the second factor for a session opened by single sign-on")
def verify(body: CodeIn, request: Request, staff: CurrentStaff, accounts: AccountsDep) -> JSONResponse:
    new = accounts.authn.verify_second_factor(staff.session, body.code, origin=origin_of(request))
    mark_audited(request)
    return with_session(accounts, staff.user, new)
