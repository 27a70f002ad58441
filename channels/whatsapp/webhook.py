"""`/webhooks/whatsapp`: Meta's verification handshake (GET) and signed deliveries (POST).

A POST does the least it can before answering 200: check the signature over the raw body, split the body into
inbox items and commit them. Processing happens later, in the workers; Meta redelivers anything not answered
with 200, and the inbox ignores what it already has.
"""

from __future__ import annotations

import hmac
import json
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.types import Receive, Scope, Send

from channels.whatsapp.payloads import fan_out
from channels.whatsapp.service import WhatsAppService
from channels.whatsapp.signature import is_valid
from core.errors import error_body
from core.i18n import t

log = logging.getLogger(__name__)

PATH = "/webhooks/whatsapp"
SIGNATURE_HEADER = "x-hub-signature-256"
router = APIRouter(tags=["whatsapp"])


def _service(request: Request) -> WhatsAppService:
    wa: WhatsAppService | None = request.app.state.services.whatsapp
    if wa is None:
        raise RuntimeError("the WhatsApp channel is not wired into Services")
    return wa


@router.get(PATH, response_class=PlainTextResponse, summary="Meta's webhook verification handshake")
def verify(request: Request) -> Response:
    """Answers `hub.challenge` when `hub.verify_token` is ATENDE_WHATSAPP_VERIFY_TOKEN; 403 otherwise."""
    params = request.query_params
    expected = _service(request).settings.whatsapp_verify_token.get_secret_value()
    token, challenge = params.get("hub.verify_token") or "", params.get("hub.challenge")
    if (
        params.get("hub.mode") == "subscribe"
        and expected
        and challenge is not None
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        return PlainTextResponse(challenge)
    log.warning("whatsapp webhook verification refused")
    return JSONResponse(error_body("verification_failed", t("whatsapp.verify_failed")), 403)


async def acknowledge(wa: WhatsAppService, body: bytes, signature: str | None) -> tuple[int, dict[str, object] | None]:
    """Check, store and acknowledge one delivery: (HTTP status, error body or None)."""
    secret = wa.settings.whatsapp_app_secret.get_secret_value()
    if not is_valid(secret, body, signature):
        if not secret:
            log.error("whatsapp webhook refused: ATENDE_WHATSAPP_APP_SECRET is not set")
        return 401, error_body("invalid_signature", t("whatsapp.invalid_signature"))
    try:
        payload = json.loads(body)
    except ValueError:
        # Signed by Meta but unreadable: keep it for inspection rather than have Meta retry it for days.
        payload = {"unparsed": body.decode("utf-8", "replace")}
    try:
        await wa.writer.write_async(fan_out(payload))
    except Exception as exc:
        log.exception("whatsapp inbox write failed: %s", exc)
        # Not 200, so Meta delivers it again later: nothing is lost while the database is away.
        return 503, error_body("unavailable", t("error.internal"))
    return 200, None


@router.post(PATH, summary="A delivery from the WhatsApp Cloud API (signed with X-Hub-Signature-256)")
async def receive(request: Request) -> Response:
    """Documents the endpoint; `WebhookEndpoint`, routed ahead of the app's routes, serves it the same way."""
    status, error = await acknowledge(_service(request), await request.body(), request.headers.get(SIGNATURE_HEADER))
    return Response(status_code=200) if error is None else JSONResponse(error, status)


class WebhookEndpoint:
    """POST /webhooks/whatsapp as a bare ASGI endpoint, first in the routing table.

    Meta needs the 200 fast and sends a lot: this skips FastAPI's route matching over every route and its
    dependency resolution (the route is public and authenticated by its signature). docs/decisions/0024.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        wa: WhatsAppService | None = request.app.state.services.whatsapp
        if wa is None:
            await JSONResponse(error_body("unavailable", t("error.internal")), 503)(scope, receive, send)
            return
        status, error = await acknowledge(wa, await request.body(), request.headers.get(SIGNATURE_HEADER))
        response = Response(status_code=200) if error is None else JSONResponse(error, status)
        await response(scope, receive, send)
