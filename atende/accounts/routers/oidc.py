"""Single sign-on: send the member to their identity provider, and open a session when they come back."""

from __future__ import annotations

import logging
from typing import Any

from authlib.integrations.starlette_client import OAuthError
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from httpx import HTTPError
from joserfc.errors import JoseError
from starlette.concurrency import run_in_threadpool

from atende.accounts.pages import LOGIN_PATH, safe_next
from atende.deps import AccountsDep, ServicesDep
from core.accounts.access import origin_of
from core.accounts.oidc import STATE_TTL_S, claims_identity
from core.accounts.types import AccountError
from core.audit import AuditEvent

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/auth/oidc", tags=["auth"])

# What can go wrong between us and a provider: a refused or forged answer, a network error, a bad ID token.
FLOW_ERRORS = (OAuthError, HTTPError, JoseError, ValueError, KeyError, RuntimeError)


@router.get("/providers", summary="Configured single sign-on providers, for the login page's buttons")
def providers(request: Request, accounts: AccountsDep) -> dict[str, Any]:
    return {
        "providers": [
            {"name": p.name, "label": p.label, "login_url": str(request.url_for("oidc_login", provider=p.name))}
            for p in accounts.oidc.listed()
        ]
    }


@router.get("/{provider}/login", name="oidc_login", summary="Go to the provider's sign-in page")
async def oidc_login(provider: str, request: Request, accounts: AccountsDep, next: str = "") -> RedirectResponse:
    client = accounts.oidc.client(provider)
    if client is None:
        raise AccountError("sso_unknown_provider", 404)
    request.scope["session"] = {}  # Authlib keeps state, nonce and the PKCE verifier here
    callback = str(request.url_for("oidc_callback", provider=provider))
    try:
        response: RedirectResponse = await client.authorize_redirect(request, callback)
    except FLOW_ERRORS as exc:
        log.warning("single sign-on with %s could not start: %s", provider, type(exc).__name__)
        raise AccountError("sso_failed", 502) from exc
    state = {**request.scope["session"], "next": safe_next(next)}
    accounts.cookies.set_oidc(response, accounts.oidc.seal(state), STATE_TTL_S)
    return response


@router.get("/{provider}/callback", name="oidc_callback", summary="Where the provider sends the member back")
async def oidc_callback(
    provider: str, request: Request, accounts: AccountsDep, services: ServicesDep
) -> RedirectResponse:
    client = accounts.oidc.client(provider)
    if client is None:
        raise AccountError("sso_unknown_provider", 404)
    config = accounts.oidc.providers[provider]
    state = accounts.oidc.unseal(request.cookies.get(accounts.cookies.oidc))
    request.scope["session"] = state
    origin = origin_of(request)

    def refuse(reason: str, code: str) -> RedirectResponse:
        services.audit.record(
            AuditEvent(
                actor="anonymous",
                action="user.login_failed",
                object_type="user",
                ip=origin.ip,
                user_agent=origin.user_agent,
                details={"reason": reason, "method": f"oidc:{provider}"},
            )
        )
        response = RedirectResponse(f"{LOGIN_PATH}?erro={code}", 303)
        accounts.cookies.clear_oidc(response)
        return response

    try:
        token = await client.authorize_access_token(request)
    except FLOW_ERRORS as exc:
        log.warning("single sign-on with %s failed: %s", provider, type(exc).__name__)
        return refuse(f"flow:{type(exc).__name__}", "sso_failed")
    subject, email = claims_identity(dict(token.get("userinfo") or {}))
    if subject is None:
        return refuse("no_subject", "sso_failed")
    user = await run_in_threadpool(accounts.directory.find_for_sso, provider, subject, email)
    if user is None and config.provision_role is not None:
        from core.accounts.roles import parse_role

        local = (email or "").split("@")[0] or f"{provider}-{subject[:12]}"
        user = await run_in_threadpool(
            lambda: accounts.directory.provision(
                local,
                parse_role(config.provision_role or ""),
                team=config.provision_team,
                email=email,
                oidc_subject=f"{provider}:{subject}",
            )
        )
    if user is None or not user.is_active:
        return refuse("no_account" if user is None else "disabled", "sso_no_account")
    signed = await run_in_threadpool(
        lambda: accounts.authn.sign_in_external(
            user,
            method=f"oidc:{provider}",
            mfa_verified=config.mfa_trusted,
            origin=origin,
            replaces=request.cookies.get(accounts.cookies.session),
        )
    )
    response = RedirectResponse(safe_next(str(state.get("next") or "")), 303)
    accounts.cookies.set_session(response, signed.session.cookie, signed.session.info.csrf_token)
    accounts.cookies.clear_oidc(response)
    return response
