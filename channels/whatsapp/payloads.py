"""Cloud API webhook bodies: fanned out into inbox items, and inbox items read back as typed values.

The webhook stores items as Meta sent them (only split per message or status), so a parsing rule can be
fixed later and the stored items processed again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from conversation.inbox import InboxItem

InboxKind = Literal["message", "status", "other"]

# Message types that carry a media object under the key of the same name.
MEDIA_TYPES = ("audio", "image", "document")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _contact_for(message: Mapping[str, Any], contacts: list[Mapping[str, Any]]) -> dict[str, Any]:
    sender, sender_user = message.get("from"), message.get("from_user_id")
    for contact in contacts:
        if (sender and contact.get("wa_id") == sender) or (sender_user and contact.get("user_id") == sender_user):
            return dict(contact)
    return dict(contacts[0]) if len(contacts) == 1 else {}


def fan_out(body: Any) -> list[InboxItem]:
    """One inbox item per message and per status in a webhook body; anything else is kept whole.

    Keys make redeliveries idempotent: a message by its id, a status by message id and status value, and
    an unknown change by its content.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("entry"), list):
        return [InboxItem("whatsapp", "raw:" + _digest(body), "other", None, {"body": body})]
    items: list[InboxItem] = []
    for entry in body["entry"]:
        changes = entry.get("changes") if isinstance(entry, Mapping) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, Mapping) else None
            if not isinstance(value, Mapping) or change.get("field") != "messages":
                items.append(InboxItem("whatsapp", "other:" + _digest(change), "other", None, {"change": change}))
                continue
            metadata = dict(value.get("metadata") or {})
            number = metadata.get("phone_number_id")
            contacts = [c for c in value.get("contacts") or [] if isinstance(c, Mapping)]
            for message in value.get("messages") or []:
                if not isinstance(message, Mapping) or not message.get("id"):
                    continue
                payload = {"message": dict(message), "contact": _contact_for(message, contacts), "metadata": metadata}
                items.append(InboxItem("whatsapp", f"m:{message['id']}", "message", number, payload))
            for status in value.get("statuses") or []:
                if not isinstance(status, Mapping) or not status.get("id"):
                    continue
                payload = {"status": dict(status), "metadata": metadata}
                items.append(
                    InboxItem("whatsapp", f"s:{status['id']}:{status.get('status')}", "status", number, payload)
                )
            if value.get("errors"):
                items.append(InboxItem("whatsapp", "other:" + _digest(change), "other", number, {"change": change}))
    return items


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Sender:
    """Who wrote: the business-scoped user id (BSUID) keys the citizen; the phone number comes when shared.

    Their `citizen_ref` is made by `channels.whatsapp.contacts.Contacts`, which holds the key that turns a phone
    number into a pseudonym."""

    bsuid: str | None
    wa_id: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class MediaRef:
    media_id: str
    kind: str
    mime_type: str | None
    sha256: str | None
    filename: str | None
    caption: str | None
    voice: bool


@dataclass(frozen=True, slots=True)
class Inbound:
    """A citizen's message, whatever its type, with the text the assistant should read (if any)."""

    wamid: str
    phone_number_id: str
    sender: Sender
    sent_at: datetime
    type: str
    text: str | None = None
    reply_id: str | None = None  # a button, list row or template quick-reply payload
    media: MediaRef | None = None
    location: dict[str, Any] | None = None
    reaction: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def parse_message(payload: Mapping[str, Any]) -> Inbound:
    message: Mapping[str, Any] = payload["message"]
    contact: Mapping[str, Any] = payload.get("contact") or {}
    metadata: Mapping[str, Any] = payload.get("metadata") or {}
    sender = Sender(
        bsuid=contact.get("user_id") or message.get("from_user_id"),
        wa_id=message.get("from") or contact.get("wa_id"),
        name=(contact.get("profile") or {}).get("name"),
    )
    kind = str(message.get("type") or "unsupported")
    common: dict[str, Any] = {
        "wamid": str(message["id"]),
        "phone_number_id": str(metadata.get("phone_number_id") or ""),
        "sender": sender,
        "sent_at": _timestamp(message.get("timestamp")),
        "raw": dict(message),
    }
    if kind == "text":
        return Inbound(type="text", text=str((message.get("text") or {}).get("body") or ""), **common)
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        sub = interactive.get("type")
        reply = interactive.get(sub) if sub in ("button_reply", "list_reply") else None
        if not isinstance(reply, Mapping):
            return Inbound(type="unsupported", **common)
        text = " — ".join(str(reply[k]) for k in ("title", "description") if reply.get(k))
        return Inbound(type=str(sub), text=text, reply_id=reply.get("id"), **common)
    if kind == "button":  # a template's quick-reply button
        button = message.get("button") or {}
        return Inbound(type="button", text=button.get("text"), reply_id=button.get("payload"), **common)
    if kind in MEDIA_TYPES:
        media = message.get(kind) or {}
        if not media.get("id"):
            return Inbound(type="unsupported", **common)
        ref = MediaRef(
            media_id=str(media["id"]),
            kind=kind,
            mime_type=media.get("mime_type"),
            sha256=media.get("sha256"),
            filename=media.get("filename"),
            caption=media.get("caption"),
            voice=bool(media.get("voice")),
        )
        return Inbound(type=kind, text=ref.caption, media=ref, **common)
    if kind == "location":
        return Inbound(type="location", location=dict(message.get("location") or {}), **common)
    if kind == "reaction":
        return Inbound(type="reaction", reaction=dict(message.get("reaction") or {}), **common)
    return Inbound(type="unsupported", **common)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    wamid: str
    status: str
    at: datetime
    recipient_id: str | None
    errors: tuple[dict[str, Any], ...]
    opaque: str | None  # biz_opaque_callback_data: our outbox id, echoed back by Meta


def parse_status(payload: Mapping[str, Any]) -> StatusUpdate:
    status: Mapping[str, Any] = payload["status"]
    return StatusUpdate(
        wamid=str(status["id"]),
        status=str(status.get("status") or ""),
        at=_timestamp(status.get("timestamp")),
        recipient_id=status.get("recipient_id"),
        errors=tuple(dict(e) for e in status.get("errors") or [] if isinstance(e, Mapping)),
        opaque=status.get("biz_opaque_callback_data"),
    )
