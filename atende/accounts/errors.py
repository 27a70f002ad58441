"""Account refusals as the API reports them: `{"code", "detail"}` with a pt-BR detail, like every other error."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from core.accounts.types import AccountError
from core.errors import error_body
from core.i18n import t


def account_error_response(exc: AccountError) -> JSONResponse:
    extra = dict(exc.extra)
    if "problems" in extra:
        extra["problems"] = [
            {"code": key.removeprefix("password."), "detail": t(key, **exc.params)} for key in extra["problems"]
        ]
    body = error_body(exc.code, t(exc.key, **exc.params), **extra)
    return JSONResponse(body, exc.status, headers=exc.headers or None)


def install_account_errors(app: FastAPI) -> None:
    @app.exception_handler(AccountError)
    async def account_error(_: Request, exc: AccountError) -> JSONResponse:
        return account_error_response(exc)
