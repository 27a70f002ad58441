"""Errors as the API reports them: a pt-BR `detail` for people, a stable `code` for programs.

The app's handlers, which turn every layer's exceptions into these bodies, are `atende.api_errors`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from core.i18n import t


class ErrorOut(BaseModel):
    """Every refusal and error of the API: a stable code for programs and a pt-BR explanation for people."""

    code: str = Field(description="Stable, machine-readable reason, e.g. `forbidden` or `conversation_not_found`.")
    detail: str = Field(description="What went wrong, in Portuguese, for people.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Invalid request only: each invalid field's location, type and message."
    )


# Answers any operation may give, whatever its route declares: the access check runs before every route, the body
# limit and the JSON parser before every body, and the rate limits before the work.
COMMON_ERRORS: dict[int, str] = {
    400: "Malformed request (a body that is not JSON)",
    401: "Not signed in, or a token that is missing, unknown, expired or revoked",
    403: "Signed in, but not allowed here (role, scope, team, CSRF token or network)",
    404: "Nothing with that id that this caller may see",
    409: "In conflict with the current state",
    413: "Body too large",
    422: "Invalid body or parameters",
    423: "Account locked after too many failed attempts (sign-in, password change)",
    429: "Too many requests; retry after the seconds in Retry-After",
}


def document_errors(app: FastAPI) -> None:
    """Add the common error answers, as ErrorOut, to every operation of the app's OpenAPI document.

    One place instead of a `responses=` on each route; it also replaces FastAPI's default 422 schema, which
    does not describe what `invalid_request` below sends.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorOut"] = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for status, description in COMMON_ERRORS.items():
                    documented = responses.setdefault(str(status), {"description": description})
                    documented["content"] = error
                    if status == 429:
                        documented["headers"] = {
                            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
                        }
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class BodyTooLarge(HTTPException):
    """The request body passed the size limit while it was being read.

    It is FastAPI's HTTPException because FastAPI re-raises that from its body reader, while any other error
    there is reported as an unparseable body.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413)
        self.limit = limit


def error_body(code: str, detail: str, **extra: object) -> dict[str, object]:
    return {"code": code, "detail": detail, **extra}


def body_too_large_response(limit: int) -> JSONResponse:
    return JSONResponse(error_body("body_too_large", t("error.body_too_large", max=limit // 1024)), 413)
