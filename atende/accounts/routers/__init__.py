"""HTTP routes of staff accounts: sign-in, the caller's own account, users, teams, tokens, SSO, pages."""

from __future__ import annotations

from fastapi import FastAPI

from atende.accounts.errors import install_account_errors


def install_accounts(app: FastAPI) -> None:
    from atende.accounts.routers import auth, oidc, pages, teams, tokens, users

    install_account_errors(app)
    for module in (auth, oidc, users, teams, tokens, pages):
        app.include_router(module.router)
