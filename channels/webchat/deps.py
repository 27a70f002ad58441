"""The web chat's FastAPI dependencies: the app's services as the channel uses them, and the citizen's conversation.

The services are the ones the application shell puts in `app.state.services`; the channel names only what it reads.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from assistant.service import Assistant
from conversation.service import ConversationService
from core.accounts.service import Accounts
from core.conversation_keys import chat_key_digest, is_chat_key
from core.store import ConversationNotFound, ConversationStore, ConversationView
from handoff.service import HandoffService


class WebChatServices(Protocol):
    @property
    def assistant(self) -> Assistant: ...

    @property
    def conversations(self) -> ConversationService: ...

    @property
    def store(self) -> ConversationStore: ...

    @property
    def accounts(self) -> Accounts: ...

    @property
    def handoff(self) -> HandoffService | None: ...


def get_services(request: Request) -> WebChatServices:
    services: WebChatServices = request.app.state.services
    return services


def get_assistant(request: Request) -> Assistant:
    return get_services(request).assistant


def get_conversations(request: Request) -> ConversationService:
    return get_services(request).conversations


def get_store(request: Request) -> ConversationStore:
    return get_services(request).store


ServicesDep = Annotated[WebChatServices, Depends(get_services)]
AssistantDep = Annotated[Assistant, Depends(get_assistant)]
StoreDep = Annotated[ConversationStore, Depends(get_store)]
ConversationsDep = Annotated[ConversationService, Depends(get_conversations)]


# The citizen's side of a web conversation (docs/decisions/0035-conversation-binding.md)
# Fetch metadata the browser sets itself: the chat page's own calls are same-origin; anything a page of another
# site (or a sibling subdomain) makes the browser send, such as a form POST, never counts as the citizen.
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def citizen_conversation(conversation_id: str, request: Request) -> ConversationView:
    """The conversation, when this browser's chat key cookie is the one it was created with.

    Anything else (no cookie, another browser's key, another channel's conversation, a cross-site request) is
    the same 404 as an unknown id, so the answer never tells whether the conversation exists.
    """
    services = get_services(request)
    key = request.cookies.get(services.accounts.cookies.chat_key)
    found = None
    if is_chat_key(key) and request.headers.get("sec-fetch-site") not in FOREIGN_FETCH_SITES:
        found = services.store.get_web_conversation(conversation_id, chat_key_digest(key))
    if found is None:
        raise ConversationNotFound(conversation_id)
    return found


CitizenConversation = Annotated[ConversationView, Depends(citizen_conversation)]
