"""Test helpers for the web chat's browser binding (docs/decisions/0035-conversation-binding.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.accounts.cookies import CookiePolicy
from core.accounts.testing import set_cookie
from core.conversation_keys import chat_key_digest, is_chat_key, new_chat_key

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from channels.webchat.deps import WebChatServices

CHAT_KEY_COOKIES = frozenset({CookiePolicy(secure=True).chat_key, CookiePolicy(secure=False).chat_key})


def chat_key_of(client: TestClient) -> str | None:
    """The web chat key the test client's browser holds, if any."""
    return next((c.value for c in client.cookies.jar if c.name in CHAT_KEY_COOKIES and c.value), None)


def web_conversation(client: TestClient, services: WebChatServices, *, language: str = "pt-BR") -> str:
    """A web conversation made through the store and bound to the client's chat key (one is given when missing)."""
    key = chat_key_of(client)
    if not is_chat_key(key):
        key = new_chat_key()
        set_cookie(client, services.accounts.cookies.chat_key, key)
    return services.store.create_conversation("web", language, web_key_hash=chat_key_digest(key)).id


def keep_only_chat_key(client: TestClient) -> None:
    """Drop every cookie but the web chat key: the browser signs out of the console and keeps its chat."""
    jar = client.cookies.jar
    for cookie in list(jar):
        if cookie.name not in CHAT_KEY_COOKIES:
            jar.clear(cookie.domain, cookie.path, cookie.name)
