"""The staff pages and their assets."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from atende.accounts.pages import (
    ACCOUNT_PATH,
    ASSETS,
    ASSETS_DIR,
    LOGIN_NOTICES,
    LOGIN_PATH,
    PAGE_HEADERS,
    render,
    safe_next,
)
from atende.deps import AccountsDep, SettingsDep

router = APIRouter(include_in_schema=False)


@router.get(LOGIN_PATH)
def login_page(
    request: Request, accounts: AccountsDep, settings: SettingsDep, next: str = "", erro: str = ""
) -> HTMLResponse:
    current = request.cookies.get(accounts.cookies.csrf)
    token = current if current and accounts.csrf.valid(current, current) else accounts.csrf.issue()
    html = render(
        "login.html",
        organization=settings.organization_name,
        csrf_token=token,
        next=safe_next(next),
        notice=f"auth.error.{erro}" if erro in LOGIN_NOTICES else None,
        providers=[
            {"label": p.label, "url": str(request.url_for("oidc_login", provider=p.name))}
            for p in accounts.oidc.listed()
        ],
    )
    response = HTMLResponse(html, headers=PAGE_HEADERS)
    accounts.cookies.set_csrf(response, token)
    return response


@router.get(ACCOUNT_PATH)
def account_page(settings: SettingsDep) -> HTMLResponse:
    return HTMLResponse(render("account.html", organization=settings.organization_name), headers=PAGE_HEADERS)


@router.get("/staff/assets/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404)
    return FileResponse(ASSETS_DIR / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})
