"""The WhatsApp Cloud API registered as a Channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


class WhatsAppChannel:
    name = "whatsapp"

    def install(self, app: FastAPI) -> None:
        from starlette.routing import Route

        from channels.whatsapp import api, webhook

        # Deliveries are matched before any other route; the FastAPI routes document them and serve the handshake.
        app.router.routes.insert(0, Route(webhook.PATH, endpoint=webhook.WebhookEndpoint(), methods=["POST"]))
        app.include_router(webhook.router)
        app.include_router(api.router)
