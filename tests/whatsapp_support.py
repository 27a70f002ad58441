"""Webhook bodies for the WhatsApp tests, built from the project's own Cloud API fixtures in tests/fixtures/whatsapp.

The fixtures share one citizen and fixed ids and timestamps; each test gives its messages their own ids, citizens
and a current timestamp.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fake_graph_api import TOKEN
from helpers import first_sentence_of
from pydantic import SecretStr

from assistant.llm import ChatMessage
from assistant.testing import ScriptedChatModel
from atende.services import Services
from channels.whatsapp.signature import sign
from core.principals import Principal, StaticTokenVerifier
from core.settings import Settings, WhatsAppNumber

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "whatsapp"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
NUMBER = "207345918866301"  # the fixtures' business phone_number_id
STAFF_SCOPES = frozenset({"whatsapp:read", "whatsapp:write"})


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def media_id(name: str) -> str:
    """The media id a media fixture (`image`, `audio_voice`, `document`) carries: what a test serves it under."""
    message = _value(fixture(name))["messages"][0]
    return str(message[message["type"]]["id"])


def _value(body: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = body["entry"][0]["changes"][0]["value"]
    return value


def _identity(citizen: int) -> tuple[str, str]:
    """Citizen number `citizen`'s phone number and business-scoped user id (BSUID)."""
    return f"55619{citizen:08d}", f"BR.{citizen:020d}"


def message_body(
    name: str = "text_message",
    *,
    wamid: str,
    citizen: int = 1,
    text: str | None = None,
    at: float | None = None,
    number: str = NUMBER,
    with_phone: bool = True,
    replace: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A fixture as citizen number `citizen` would send it now (or at `at`, epoch seconds)."""
    body = copy.deepcopy(fixture(name))
    value = _value(body)
    value["metadata"]["phone_number_id"] = number
    phone, bsuid = _identity(citizen)
    contact = value["contacts"][0]
    contact["user_id"] = bsuid
    message = value["messages"][0]
    message["id"] = wamid
    message["timestamp"] = str(int(at if at is not None else time.time()))
    if with_phone:
        contact["wa_id"] = message["from"] = phone
    else:
        contact.pop("wa_id", None)
        message.pop("from", None)
        message["from_user_id"] = bsuid
    if text is not None:
        message["text"] = {"body": text}
    if replace:
        for key in [k for k in message if k not in ("from", "from_user_id", "id", "timestamp", "context")]:
            del message[key]
        message.update(replace)
    return body


def status_body(
    wamid: str,
    status: str,
    *,
    citizen: int = 1,
    at: float | None = None,
    opaque: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A status update of our message `wamid` as Meta would send it now (sent, delivered, read or failed)."""
    body = copy.deepcopy(fixture(f"status_{status}"))
    value = _value(body)
    value["metadata"]["phone_number_id"] = NUMBER
    entry = value["statuses"][0]
    entry["id"] = wamid
    entry["status"] = status
    entry["recipient_id"], entry["recipient_user_id"] = _identity(citizen)
    entry["timestamp"] = str(int(at if at is not None else time.time()))
    if opaque is not None:
        entry["biz_opaque_callback_data"] = opaque
    if errors is not None:
        entry["errors"] = errors
    return body


def combine(*bodies: dict[str, Any]) -> dict[str, Any]:
    """One delivery carrying the changes of several bodies (Meta batches them)."""
    first = copy.deepcopy(bodies[0])
    for body in bodies[1:]:
        first["entry"].extend(copy.deepcopy(body["entry"]))
    return first


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def signed_headers(raw: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, raw)}


def answer_or_decline(messages: Sequence[ChatMessage]) -> str:
    """A model step for any prompt: the first sentence of passage [1], cited, when the prompt has passages."""
    try:
        return first_sentence_of(1)(messages)
    except AssertionError:
        return '{"tool": "none"}'


def whatsapp_settings(base: Settings, graph_url: str, **overrides: Any) -> Settings:
    """Test settings wired to the fake Graph API; workers off, so each test drives processing itself."""
    values: dict[str, Any] = {
        "whatsapp_app_secret": SecretStr(APP_SECRET),
        "whatsapp_verify_token": SecretStr(VERIFY_TOKEN),
        "whatsapp_access_token": SecretStr(TOKEN),
        "whatsapp_graph_url": graph_url,
        "whatsapp_worker": "off",
        "whatsapp_retry_base_s": 0.0,
        "whatsapp_recipient_per_min": 1000,
        "whatsapp_rate_per_s": 1000,
        "public_base_url": "https://atende.example.gov.br",
        "whatsapp_numbers": [WhatsAppNumber(phone_number_id=NUMBER, team="geral")],
        # Tool choice by rules only: the scripted model answers questions, not tool prompts.
        "tool_routing": "rules",
    }
    values.update(overrides)
    return base.model_copy(update=values)


def staff_token(services: Services, *, scopes: frozenset[str] = STAFF_SCOPES, role: str = "supervisor") -> str:
    """A bearer token for a staff member with the WhatsApp scopes (the accounts module checks it)."""
    token = f"staff-{role}"
    services.token_verifier = StaticTokenVerifier(
        {token: Principal(kind="staff", subject="user:7", scopes=scopes, role=role)}
    )
    return token


def worker_environment(settings: Settings) -> dict[str, str]:
    """ATENDE_* variables that rebuild `settings` in another process (for `worker_main`)."""
    env = {
        "ATENDE_ENVIRONMENT": "test",
        "ATENDE_DATA_DIR": str(settings.data_dir),
        "ATENDE_DATABASE_URL": settings.resolved_database_url,
        "ATENDE_KNOWLEDGE_DIR": str(settings.knowledge_dir),
        "ATENDE_VECTOR_STORE": "memory",
        "ATENDE_EMBEDDING_BACKEND": "hashing",
        "ATENDE_ABSTAIN_THRESHOLD": str(settings.abstain_threshold),
        "ATENDE_WHATSAPP_WORKER": "off",
        "ATENDE_WHATSAPP_APP_SECRET": APP_SECRET,
        "ATENDE_WHATSAPP_ACCESS_TOKEN": TOKEN,
        "ATENDE_WHATSAPP_GRAPH_URL": settings.whatsapp_graph_url,
        "ATENDE_WHATSAPP_LEASE_S": str(settings.whatsapp_lease_s),
        "ATENDE_WHATSAPP_RETRY_BASE_S": "0",
        "ATENDE_PUBLIC_BASE_URL": settings.public_base_url,
        "ATENDE_WHATSAPP_NUMBERS": json.dumps([n.model_dump() for n in settings.whatsapp_numbers]),
        "ATENDE_TOOL_ROUTING": "rules",
        "ATENDE_LOG_LEVEL": "WARNING",
    }
    return env


def worker_main() -> None:
    """A WhatsApp inbox worker in its own process, with a deterministic model, printing a line per batch.

    The replay test starts it, kills it with SIGKILL in the middle, and starts another one.
    """
    import sys

    from atende.services import build_services
    from atende.whatsapp_cli import run_worker
    from rag.loaders import load_directory

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    # A budget, not a script: how often this load test's random mix of messages reaches the model varies.
    services = build_services(settings, model=ScriptedChatModel([answer_or_decline] * 1_000_000, exact=False))
    services.warm_up()
    services.index.sync(load_directory(settings.knowledge_dir))
    assert services.whatsapp is not None
    print("ready", flush=True)
    run_worker(services.whatsapp, inbox=True, outbox=sys.argv[1:] == ["--outbox"], until_idle=True, progress=True)
    print("idle", flush=True)
    services.close()


if __name__ == "__main__":
    worker_main()


def deliver(client: TestClient, body: dict[str, Any]) -> None:
    """One signed webhook delivery, acknowledged with 200 as Meta expects."""
    raw = encode(body)
    assert client.post("/webhooks/whatsapp", content=raw, headers=signed_headers(raw)).status_code == 200
