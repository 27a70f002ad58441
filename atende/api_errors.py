"""How the app answers errors: the handlers that turn every layer's exceptions into `core.errors` bodies, and
`ApiError`, a refusal any router can raise (an HTTP status, a stable `code`, a pt-BR catalogue key for `detail`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.service import InvalidMessage
from conversation.service import MessageInProgress
from core.errors import BodyTooLarge, body_too_large_response, error_body
from core.i18n import t
from core.store import ConversationNotFound

log = logging.getLogger(__name__)

# Framework errors carry English reasons ("Method Not Allowed"); people get these instead.
_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "error.invalid_request"),
    404: ("not_found", "error.not_found"),
    405: ("method_not_allowed", "error.method_not_allowed"),
    413: ("body_too_large", "error.body_too_large"),
}


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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidMessage)
    async def invalid_message(_: Request, exc: InvalidMessage) -> JSONResponse:
        status = 413 if exc.key == "error.message_too_long" else 422
        return JSONResponse(error_body(exc.key.removeprefix("error."), t(exc.key, **exc.params)), status)

    @app.exception_handler(MessageInProgress)
    async def in_progress(_: Request, exc: MessageInProgress) -> JSONResponse:
        body = error_body("message_in_progress", t("error.message_in_progress"))
        return JSONResponse(body, 409, headers={"Retry-After": "2"})

    @app.exception_handler(ConversationNotFound)
    async def not_found(_: Request, exc: ConversationNotFound) -> JSONResponse:
        return JSONResponse(error_body("conversation_not_found", t("error.conversation_not_found")), 404)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in exc.errors()]
        malformed = any(e["type"] == "json_invalid" for e in errors)
        log.info("rejected request: %s", errors)
        return JSONResponse(
            error_body(
                "malformed_json" if malformed else "invalid_request",
                t("error.invalid_request"),
                errors=errors,
            ),
            400 if malformed else 422,
        )

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return body_too_large_response(exc.limit)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, key = _HTTP_ERRORS.get(exc.status_code, ("http_error", "error.http"))
        return JSONResponse(error_body(code, t(key)), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", exc)
        return JSONResponse(error_body("internal_error", t("error.internal")), 500)
