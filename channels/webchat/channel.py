"""The web chat registered as a Channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.staticfiles import StaticFiles

if TYPE_CHECKING:
    from fastapi import FastAPI


class WebChatChannel:
    name = "web"

    def install(self, app: FastAPI) -> None:
        from channels.webchat.router import STATIC_DIR, api, pages

        app.include_router(api)
        app.include_router(pages)
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="webchat-static")
