"""Console and handoff HTTP routes: the agents' API under /api/console, the citizen's handoff and survey, pages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse

from assistant.agent_aids.copilot import Copilot
from assistant.agent_aids.summary import summarize
from atende.console import actions, saved_replies, supervisor
from atende.console.access import require_access, scope_of
from atende.console.pages import render_console, render_supervisor
from atende.console.schemas import CloseIn, HandoffRequestIn, PresenceIn, SurveyIn, TextIn, TransferIn
from atende.deps import CurrentAuth, ServicesDep, SettingsDep, require_handoff
from atende.lgpd.reveal import AuditObject, audit_pii_read
from atende.services import Services
from channels.webchat.deps import CitizenConversation
from core.errors import error_body
from core.i18n import t
from core.models import isoformat
from core.privacy import find_pii, mask
from core.store import ConversationNotFound
from handoff.actions import CLOSE_REASONS
from handoff.annotations import MessageTranslation, trend
from handoff.records import QUEUE_TOPIC, HandoffError, HandoffView, Ticket, conversation_topic

ASSETS_DIR = Path(str(resources.files("atende.console").joinpath("static")))
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "supervisor.js": "text/javascript; charset=utf-8",
    "staff.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
MAX_STREAM_S = 60
POLL_S = 0.5
KEEP_ALIVE_S = 15.0

console = APIRouter(prefix="/api/console", tags=["console"])
# Every citizen route takes the conversation as CitizenConversation: the browser's chat key, not the id, opens it.
citizen = APIRouter(prefix="/api/conversations", tags=["conversations"])
pages = APIRouter(include_in_schema=False)


def _copilot(services: Services) -> Copilot:
    if services.copilot is None:
        raise RuntimeError("the console needs services.copilot (build_services wires it)")
    return services.copilot


def _handoff_out(view: HandoffView, *, content: bool = True) -> dict[str, Any]:
    """`content`: with the summary (masked); without it for those who see the queue but no conversation."""
    return {
        "id": view.id,
        "conversation_id": view.conversation_id,
        "team": view.team,
        "reason": view.reason,
        "source": view.source,
        "status": view.status,
        "agent": view.agent,
        "requested_at": isoformat(view.requested_at),
        "assigned_at": isoformat(view.assigned_at),
        "closed_at": isoformat(view.closed_at),
        "close_reason": view.close_reason,
        "protocol_number": view.protocol_number,
        "summary": view.summary if content else None,
        "survey": None if view.survey_score is None else {"score": view.survey_score, "comment": view.survey_comment},
        "timings_s": view.timings_s(),
    }


def _ticket_out(ticket: Ticket) -> dict[str, Any]:
    return {
        "state": ticket.state,
        "team": ticket.team,
        "position": ticket.position,
        "estimated_wait_s": ticket.estimated_wait_s,
    }


def _translation_out(found: MessageTranslation | None) -> dict[str, Any]:
    """A message's language and its translation for the other side (masked like the message's text)."""
    if found is None:
        return {"language": None, "translation": None, "translation_language": None}
    return {
        "language": found.language,
        "translation": None if found.translation is None else mask(found.translation),
        "translation_language": found.translation_language,
    }


def _require_conversation(services: Services, conversation_id: str) -> None:
    if services.store.get_conversation(conversation_id) is None:
        raise ConversationNotFound(conversation_id)


# --- the agents' API --------------------------------------------------------------------------------------


@console.get("/queue", summary="Waiting conversations by team, and the caller's own")
def queue(services: ServicesDep, auth: CurrentAuth, team: str | None = None) -> dict[str, Any]:
    handoff = require_handoff(services)
    scope = scope_of(handoff, auth.principal)
    now = handoff.now()
    waiting = [
        {
            **_handoff_out(view, content=scope.reads_content),
            "position": position,
            "waited_s": round((now - view.requested_at).total_seconds(), 1),
        }
        for view, position in handoff.waiting(team)
        if scope.sees_queue(view.team)
    ]
    mine = [_handoff_out(view) for view in handoff.assigned_to(auth.principal.subject)]
    return {"waiting": waiting, "mine": mine, "close_reasons": list(CLOSE_REASONS)}


@console.get("/conversations/{conversation_id}", summary="A conversation for the console: history, summary, card")
def conversation(conversation_id: str, services: ServicesDep, auth: CurrentAuth) -> dict[str, Any]:
    handoff = require_handoff(services)
    require_access(handoff, auth.principal, conversation_id, "read")
    conv = services.store.get_conversation(conversation_id)
    if conv is None:
        raise ConversationNotFound(conversation_id)
    messages = services.store.list_messages(conversation_id)
    feelings = handoff.sentiments(conversation_id)
    languages = handoff.translations(conversation_id)
    scores = [feelings[m.id].score for m in messages if m.id in feelings]
    kinds: dict[str, int] = {}
    for m in messages:
        if m.role == "user":
            for found in find_pii(m.text):
                kinds[found.kind] = kinds.get(found.kind, 0) + 1
    notes = [
        {"agent": e.payload.get("agent"), "text": e.payload.get("text"), "created_at": isoformat(e.created_at)}
        for e in services.store.list_events(conversation_id)
        if e.kind == "internal_note"
    ]
    return {
        "id": conv.id,
        "state": conv.state,
        "channel": conv.channel,
        "language": conv.language,
        # Personal data is masked here; POST …/reveal shows it to roles allowed to see it, audited.
        "messages": [
            {
                "id": m.id,
                "role": m.role,
                "text": mask(m.text),
                "decision": m.decision,
                "citations": list(m.citations),
                "created_at": isoformat(m.created_at),
                "sentiment": None if m.id not in feelings else feelings[m.id].label,
                **_translation_out(languages.get(m.id)),
            }
            for m in messages
        ],
        "summary": summarize(messages),
        "sentiment": {
            "latest": next((feelings[m.id].label for m in reversed(messages) if m.id in feelings), None),
            "trend": trend(scores),
            "scores": [round(score, 3) for score in scores],
        },
        "citizen": {
            "ref": conv.citizen_ref,
            "data": [{"kind": kind, "count": count, "value": f"[{kind}]"} for kind, count in sorted(kinds.items())],
        },
        "handoffs": [_handoff_out(view) for view in handoff.history(conversation_id)],
        "notes": notes,
    }


@console.post("/conversations/{conversation_id}/reveal", summary="The citizen's personal data in clear (audited)")
def reveal(conversation_id: str, request: Request, services: ServicesDep, auth: CurrentAuth) -> dict[str, Any]:
    # The serving agent or a supervisor of the conversation's setor, whoever the caller is (tokens included).
    require_access(require_handoff(services), auth.principal, conversation_id, "reveal")
    conv = services.store.get_conversation(conversation_id)
    if conv is None:
        raise ConversationNotFound(conversation_id)
    found = [f for m in services.store.list_messages(conversation_id) if m.role == "user" for f in find_pii(m.text)]
    audit_pii_read(
        services.audit,
        auth.principal,
        AuditObject("conversation", conversation_id, conv.citizen_ref or f"citizen:{conversation_id}"),
        sorted({f.kind for f in found}),
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
    return {"data": [{"kind": f.kind, "value": f.text} for f in found]}


@console.post("/conversations/{conversation_id}/claim", summary="Take a waiting conversation (one agent wins)")
def claim(conversation_id: str, services: ServicesDep, auth: CurrentAuth) -> dict[str, Any]:
    handoff = require_handoff(services)
    require_access(handoff, auth.principal, conversation_id, "claim")
    return _handoff_out(handoff.claim(conversation_id, auth.principal.subject))


@console.post("/conversations/{conversation_id}/messages", summary="Send the agent's (edited) reply to the citizen")
def send(conversation_id: str, body: TextIn, services: ServicesDep, auth: CurrentAuth) -> dict[str, Any]:
    handoff = require_handoff(services)
    require_access(handoff, auth.principal, conversation_id, "act")
    message = handoff.reply(conversation_id, auth.principal.subject, body.text)
    return {"id": message.id, "role": message.role, "text": message.text, "created_at": isoformat(message.created_at)}


@console.post("/conversations/{conversation_id}/notes", summary="An internal note, never shown to the citizen")
def note(conversation_id: str, body: TextIn, services: ServicesDep, auth: CurrentAuth) -> dict[str, str]:
    handoff = require_handoff(services)
    require_access(handoff, auth.principal, conversation_id, "act")
    handoff.note(conversation_id, auth.principal.subject, body.text)
    return {"status": "ok"}


@console.post("/conversations/{conversation_id}/suggestion", summary="The copilot's suggested reply (never sent)")
def suggestion(conversation_id: str, services: ServicesDep, auth: CurrentAuth) -> dict[str, Any]:
    require_access(require_handoff(services), auth.principal, conversation_id, "act")
    suggested = _copilot(services).suggest(services.store.list_messages(conversation_id))
    return {
        "text": suggested.text,
        "citations": suggested.citations,
        "actions": suggested.actions,
        "question": mask(suggested.question),
        "reason": suggested.reason,
    }


@console.post("/conversations/{conversation_id}/transfer", summary="Back to the queue of another team")
def transfer(conversation_id: str, body: TransferIn, services: ServicesDep, auth: CurrentAuth) -> dict[str, Any]:
    handoff = require_handoff(services)
    require_access(handoff, auth.principal, conversation_id, "act")
    return _ticket_out(handoff.transfer(conversation_id, auth.principal.subject, body.team))


@console.post("/conversations/{conversation_id}/close", summary="Close with a reason; the citizen gets the survey")
def close(conversation_id: str, body: CloseIn, services: ServicesDep, auth: CurrentAuth) -> dict[str, Any]:
    handoff = require_handoff(services)
    require_access(handoff, auth.principal, conversation_id, "act")
    return _handoff_out(handoff.close(conversation_id, auth.principal.subject, body.reason))


@console.post("/presence", summary="The caller's availability: online, paused or offline")
def presence(body: PresenceIn, services: ServicesDep, auth: CurrentAuth) -> dict[str, Any]:
    """Also the console's heartbeat: sent again while it is open, or the agent reads as offline after the TTL."""
    handoff = require_handoff(services)
    assigned = handoff.set_presence(auth.principal.subject, body.status)
    return {
        "status": body.status,
        "ttl_s": handoff.config.presence_ttl_s,
        "assigned": [conversation_id for conversation_id, _ in assigned],
    }


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@console.get(
    "/events",
    summary="Server-sent events: queue changes and, with conversation_id, that conversation's messages",
    responses={200: {"content": {"text/event-stream": {}}}},
)
def events(
    services: ServicesDep,
    auth: CurrentAuth,
    conversation_id: str | None = None,
    wait: float = Query(default=0, ge=0, le=MAX_STREAM_S, description="Seconds to keep the stream open"),
) -> StreamingResponse:
    """Starts with `ready`, then pushes updates for `wait` seconds and ends; EventSource reconnects by itself.

    Events carry ids, never text: the console fetches what changed through the checked, masked endpoints. Queue
    events reach only the staff of the conversation's queue; a conversation's events only those who may read it.
    """
    handoff = require_handoff(services)
    scope = scope_of(handoff, auth.principal)
    if conversation_id is not None:
        require_access(handoff, auth.principal, conversation_id, "read")
    topics = [QUEUE_TOPIC] + ([conversation_topic(conversation_id)] if conversation_id else [])
    subscription = handoff.live.subscribe(*topics)

    def stream() -> Iterator[str]:
        try:
            yield "retry: 1000\n\n" + _sse("ready", {"topics": topics})
            deadline = time.monotonic() + wait
            quiet_since = time.monotonic()
            # Short polls: a sync stream only notices a closed connection when it yields or its poll returns.
            while (left := deadline - time.monotonic()) > 0:
                message = subscription.next(min(left, POLL_S))
                if message is not None and not scope.sees_event(message):
                    continue
                if message is not None:
                    quiet_since = time.monotonic()
                    yield _sse(str(message.get("event", "update")), message)
                elif time.monotonic() - quiet_since >= KEEP_ALIVE_S:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
        finally:
            subscription.close()

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


# --- the citizen's side -----------------------------------------------------------------------------------


@citizen.post("/{conversation_id}/handoff", summary="Ask for a person; answers with the place in the queue")
def request_handoff(
    conv: CitizenConversation, services: ServicesDep, body: HandoffRequestIn | None = None
) -> dict[str, Any]:
    ticket = require_handoff(services).request(
        conv.id, reason="citizen_request", source="citizen_request", team=body.team if body else None
    )
    return _ticket_out(ticket)


@citizen.delete("/{conversation_id}/handoff", summary="Leave the queue: recorded as an abandonment, back to the bot")
def leave_queue(conv: CitizenConversation, services: ServicesDep) -> dict[str, Any]:
    handoff = require_handoff(services)
    handoff.leave(conv.id)
    return _ticket_out(handoff.ticket(conv.id))


@citizen.get("/{conversation_id}/handoff", summary="Where the conversation stands: state and place in the queue")
def handoff_status(conv: CitizenConversation, services: ServicesDep) -> dict[str, Any]:
    return _ticket_out(require_handoff(services).ticket(conv.id))


@citizen.post("/{conversation_id}/survey", summary="The citizen's rating (1–5) of a closed service, and a comment")
def survey(conv: CitizenConversation, body: SurveyIn, services: ServicesDep) -> dict[str, str]:
    require_handoff(services).survey(conv.id, body.score, body.comment)
    return {"detail": t("handoff.survey_thanks")}


# --- pages ------------------------------------------------------------------------------------------------


@pages.get("/console")
def console_page(settings: SettingsDep) -> HTMLResponse:
    return render_console(settings.organization_name)


@pages.get("/console/supervisor")
def supervisor_page(settings: SettingsDep) -> HTMLResponse:
    return render_supervisor(settings.organization_name)


@pages.get("/console/assets/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404)
    return FileResponse(ASSETS_DIR / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


def install_console(app: FastAPI) -> None:
    @app.exception_handler(HandoffError)
    async def handoff_error(_: Request, exc: HandoffError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, t(exc.key)), exc.status)

    for router in (console, citizen, pages, supervisor.router, saved_replies.router, actions.router):
        app.include_router(router)
