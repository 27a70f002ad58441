"""A refusal any router can raise: an HTTP status, a stable `code` and a pt-BR catalogue key for `detail`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from core.errors import error_body
from core.i18n import t


class ApiError(Exception):
    def __init__(self, code: str, key: str, status: int = 400, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.key = key
        self.status = status
        self.params = params


def install_api_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, t(exc.key, **exc.params)), exc.status)
