"""Real Cloud API webhook bodies, captured elsewhere, read by our parser exactly as Meta would send them.

They live beside the repository in ../shared/fixtures/whatsapp, not in it: they are someone else's payloads.
Every other WhatsApp test uses the project's own fixtures (tests/fixtures/whatsapp), so a clone without the
shared folder loses only this check, and says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from channels.whatsapp.payloads import MEDIA_TYPES, fan_out, parse_message, parse_status

REAL_PAYLOADS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "whatsapp"

if not REAL_PAYLOADS.is_dir():
    pytest.skip(
        f"the real WhatsApp payloads are not here ({REAL_PAYLOADS} is missing): they are kept in the shared folder "
        "beside the repository, not in it; every other WhatsApp test runs on tests/fixtures/whatsapp",
        allow_module_level=True,
    )

PAYLOADS = sorted(REAL_PAYLOADS.glob("*.json"))
STATUSES = {"sent", "delivered", "read", "failed"}


def test_the_shared_folder_holds_payloads_to_read() -> None:
    assert PAYLOADS, f"{REAL_PAYLOADS} exists but holds no *.json webhook body"


def expected_type(message: dict[str, Any]) -> str:
    """The type our parser should report for a raw message: interactive replies by their kind."""
    kind = str(message.get("type"))
    if kind == "interactive":
        return str(message["interactive"]["type"])
    return kind


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda path: path.stem)
def test_a_real_payload_is_read_as_what_it_carries(path: Path) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))
    items = fan_out(body)
    assert items, "nothing read from the body"
    assert [item.kind for item in items if item.kind == "other"] == [], "a change was not understood"
    for item in items:
        if item.kind == "message":
            message = item.payload["message"]
            inbound = parse_message(item.payload)
            assert inbound.type == expected_type(message)
            assert inbound.wamid == message["id"]
            assert inbound.sender.bsuid or inbound.sender.wa_id, "no way to tell who wrote"
            assert inbound.phone_number_id
            if inbound.type == "text":
                assert inbound.text == message["text"]["body"]
            if inbound.type in ("button_reply", "list_reply"):
                assert inbound.reply_id
                assert inbound.text
            if inbound.type in MEDIA_TYPES:
                assert inbound.media is not None
                assert inbound.media.media_id == message[inbound.type]["id"]
            if inbound.type == "location":
                assert inbound.location == message["location"]
        else:
            update = parse_status(item.payload)
            assert update.status in STATUSES
            assert update.wamid
            assert bool(update.errors) == (update.status == "failed")
