"""Web chat HTTP API: conversations, messages (JSON or streamed over SSE) and the chat page itself."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from itertools import chain
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import FileResponse, StreamingResponse

from assistant.service import Token
from channels.kb_links import article_link, quotes_of
from channels.webchat.deps import AssistantDep, CitizenConversation, ConversationsDep, ServicesDep, StoreDep
from channels.webchat.schemas import (
    CitationOut,
    ConversationCreated,
    ConversationOut,
    ErrorOut,
    MessageIn,
    MessageOut,
    NewConversation,
    ReplyOut,
)
from conversation.messages import InboundMessage, Outcome
from core.conversation_keys import chat_key_digest, is_chat_key, new_chat_key
from core.errors import error_body
from core.i18n import t
from handoff.annotations import MessageTranslation, citizen_text

log = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("channels.webchat").joinpath("static")))
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed JSON"},
    404: {"model": ErrorOut, "description": "Unknown conversation"},
    413: {"model": ErrorOut, "description": "Message too long"},
    409: {"model": ErrorOut, "description": "The same message (client_message_id) is still being answered"},
    422: {"model": ErrorOut, "description": "Empty message or invalid body"},
}

api = APIRouter(prefix="/api/conversations", tags=["conversations"])
pages = APIRouter(include_in_schema=False)


def browser_url(url: str, quotes: Iterable[str] = ()) -> str:
    """Where a citizen's browser can open a cited source.

    The index names its own articles `kb://articles/<id>` (a stable, host-free id that other consumers keep);
    in the web chat they are the /kb/<id> pages, pointing at the passages the answer quoted. External sources
    keep their own address.
    """
    return article_link(url, quotes)


def _for_browser(citations: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # The quotes travel in the link; the browser gets the citation as the API documents it.
    return [
        {**{k: v for k, v in c.items() if k != "quotes"}, "url": browser_url(str(c.get("url", "")), quotes_of(c))}
        for c in citations
    ]


def _as_delivered(text: str, translated: MessageTranslation | None) -> str:
    if translated is None or translated.translation is None or translated.translation_language is None:
        return text
    return citizen_text(text, translated.translation, translated.translation_language)


def _reply_body(outcome: Outcome) -> dict[str, Any]:
    return ReplyOut(
        answer=outcome.answer,
        decision=outcome.decision,
        route=outcome.route,
        citations=[CitationOut(**c) for c in _for_browser(c.as_dict() for c in outcome.citations)],
        message_id=outcome.message_id,
        timings_ms=dict(outcome.timings_ms),
    ).model_dump()


def _inbound(conversation_id: str, body: MessageIn) -> InboundMessage:
    return InboundMessage(
        channel="web", conversation_id=conversation_id, text=body.text, client_message_id=body.client_message_id
    )


@api.post("", status_code=status.HTTP_201_CREATED, response_model=ConversationCreated, responses=ERRORS)
def create_conversation(
    request: Request, response: Response, services: ServicesDep, body: NewConversation | None = None
) -> ConversationCreated:
    """Start a conversation bound to this browser's chat key (an HttpOnly cookie, set here when missing).

    Every /api/conversations/{id}… call needs that cookie: the id alone reaches nothing (404).
    """
    body = body or NewConversation()
    cookies = services.accounts.cookies
    key = request.cookies.get(cookies.chat_key)
    if not is_chat_key(key):
        key = new_chat_key()
    conversation = services.store.create_conversation(body.channel, body.language, web_key_hash=chat_key_digest(key))
    cookies.set_chat_key(response, key)
    return ConversationCreated(id=conversation.id)


@api.get("/{conversation_id}", response_model=ConversationOut, responses=ERRORS)
def get_conversation(conv: CitizenConversation, store: StoreDep, services: ServicesDep) -> ConversationOut:
    conversation_id = conv.id
    # An agent's reply to a citizen of another language reads as it was delivered: translated, then the original.
    translated = services.handoff.translations(conversation_id) if services.handoff is not None else {}
    messages = [
        MessageOut(
            role=m.role,
            text=_as_delivered(m.text, translated.get(m.id)) if m.role == "agent" else m.text,
            decision=m.decision,
            citations=_for_browser(m.citations),
            created_at=m.created_at,
        )
        for m in store.list_messages(conversation_id)
    ]
    return ConversationOut(id=conv.id, state=conv.state, channel=conv.channel, messages=messages)


@api.post("/{conversation_id}/messages", response_model=ReplyOut, responses=ERRORS)
def post_message(conv: CitizenConversation, body: MessageIn, conversations: ConversationsDep) -> dict[str, Any]:
    """Send the citizen's message and get the assistant's checked answer with its citations.

    While the conversation waits for or is with a person, the message goes to the agent instead. A message sent
    again with the same `client_message_id` gets the first reply (409 while that one is still being written).
    """
    return _reply_body(conversations.handle(_inbound(conv.id, body)))


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@api.post(
    "/{conversation_id}/messages/stream",
    responses={
        **ERRORS,
        200: {"content": {"text/event-stream": {}}, "description": "SSE: token…, then done"},
    },
)
def stream_message(
    conv: CitizenConversation, body: MessageIn, assistant: AssistantDep, conversations: ConversationsDep
) -> StreamingResponse:
    """The same as posting a message, streamed as server-sent events.

    `token` events carry text as it is generated; one `done` event carries the final reply (the same body as
    the JSON endpoint), which replaces the streamed text because the grounding check may change it.
    """
    assistant.validate(body.text)  # fail with a proper 4xx before the stream starts
    stream = conversations.handle_stream(_inbound(conv.id, body))
    first = next(stream)  # a repeat still being answered fails with 409 here, before the stream starts

    def events() -> Iterator[str]:
        try:
            for item in chain([first], stream):
                if isinstance(item, Token):
                    yield _sse("token", {"text": item.text})
                else:
                    yield _sse("done", _reply_body(item))
        except Exception as exc:  # the stream has started: report in-band, never drop the connection silently
            log.exception("stream failed: %s", exc)
            yield _sse("error", error_body("internal_error", t("error.internal")))

    # A buffering proxy (nginx) would hold the tokens back until the answer is complete.
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@pages.get("/")
def chat_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")


@pages.get("/widget.js")
def widget() -> FileResponse:
    return FileResponse(STATIC_DIR / "widget.js", media_type="text/javascript; charset=utf-8")
