"""A new channel is an adapter, a Delivery and a registration: the echo channel below is all it takes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.orm import Session

from atende.app import create_app
from atende.services import Services
from channels.registry import ChannelRegistry
from conversation.messages import InboundMessage, Outcome
from core.accounts import permissions
from handoff.delivery import Outgoing


class EchoIn(BaseModel):
    message_id: str
    text: str


class EchoChannel:
    """Takes a message over HTTP and "sends" replies into a list: what a real channel's API call would carry."""

    name = "echo"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.outbox: list[str] = []  # replies of the bot, queued in the turn's transaction
        self.delivered: list[str] = []  # what people (agents) sent through the Delivery port

    # The adapter: the channel's own format in, an InboundMessage to the conversation service.
    def install(self, app: FastAPI) -> None:
        @app.post("/echo/{conversation_id}")
        def receive(conversation_id: str, body: EchoIn) -> dict[str, str]:
            message = InboundMessage(
                channel=self.name, conversation_id=conversation_id, text=body.text, client_message_id=body.message_id
            )
            outcome = self.services.conversations.handle(message, within=self._queue)
            return {"decision": outcome.decision}

    def _queue(self, _session: Session, outcome: Outcome) -> None:
        self.outbox.append(outcome.answer)

    # The Delivery port: how a person's words reach this channel's citizens.
    def deliver(self, _session: Session, _conversation_id: str, message: Outgoing) -> None:
        self.delivered.append(message.text)

    def team(self, _session: Session, _conversation_id: str) -> str | None:
        return None


@pytest.fixture
def echo(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EchoChannel, TestClient]]:
    channel = EchoChannel(services)
    registry = ChannelRegistry()
    registry.register(channel)  # the registration
    # Every route declares who may call it; a channel's webhook authenticates by its own means.
    monkeypatch.setitem(permissions.ROUTES, ("POST", "/echo/{conversation_id}"), permissions.PUBLIC)
    assert services.handoff is not None
    services.handoff.register_delivery(channel.name, channel)
    app = create_app(services=services)
    channel.install(app)
    with TestClient(app, base_url="https://testserver") as client:
        yield channel, client


def test_the_echo_channel_is_answered_hands_off_and_carries_the_agents_reply(
    echo: tuple[EchoChannel, TestClient], services: Services
) -> None:
    channel, client = echo
    handoff = services.handoff
    assert handoff is not None
    cid = services.store.create_conversation("echo").id

    greeting = client.post(f"/echo/{cid}", json={"message_id": "e1", "text": "Bom dia"})
    person = client.post(f"/echo/{cid}", json={"message_id": "e2", "text": "Quero falar com um atendente"})
    repeated = client.post(f"/echo/{cid}", json={"message_id": "e2", "text": "Quero falar com um atendente"})
    handoff.claim(cid, "user:1")
    handoff.reply(cid, "user:1", "Olá, sou a Ana. Como posso ajudar?")

    assert greeting.json() == {"decision": "answered"}
    assert person.json() == repeated.json() == {"decision": "handoff"}
    assert len(channel.outbox) == 2  # the repeat was answered from the inbox, not queued again
    assert channel.delivered == ["Olá, sou a Ana. Como posso ajudar?"]
    assert [t["channel"] for t in services.store.iter_turns()] == ["echo", "echo"]
