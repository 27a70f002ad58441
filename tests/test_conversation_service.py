"""The conversation service: one path in and out for every channel, each message answered once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from helpers import sse_events
from sqlalchemy import select
from sqlalchemy.orm import Session

from atende.app import create_app
from atende.services import Services
from conversation.inbox import Received
from conversation.messages import InboundMessage, Outcome
from conversation.models import InboxRow
from conversation.service import MessageInProgress, inbox_item

QUESTION = "Como emito a segunda via do boleto do IPTU?"


@pytest.fixture
def extractive(services: Services) -> Services:
    services.assistant.config = replace(services.assistant.config, answer_mode="extractive", evidence_threshold=0.0)
    return services


@pytest.fixture
def client(extractive: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=extractive), base_url="https://testserver") as test_client:
        yield test_client


def new_conversation(client: TestClient) -> str:
    conversation_id: str = client.post("/api/conversations").json()["id"]
    return conversation_id


def turns(services: Services) -> list[dict[str, object]]:
    return list(services.store.iter_turns())


def hold(services: Services, cid: str, client_id: str, *, owner: str, lease_s: float) -> Received:
    """Another process took this message: its inbox row is leased to `owner`."""
    message = InboundMessage(channel="web", conversation_id=cid, text=QUESTION, client_message_id=client_id)
    return services.conversations.inbox.receive(inbox_item(message), conversation_id=cid, owner=owner, lease_s=lease_s)


def inbox_rows(services: Services) -> list[InboxRow]:
    with Session(services.engine) as session:
        return list(session.scalars(select(InboxRow).order_by(InboxRow.id)))


def test_a_retried_web_chat_send_is_answered_once_with_the_first_reply(
    client: TestClient, extractive: Services
) -> None:
    cid = new_conversation(client)
    send = {"text": QUESTION, "client_message_id": "9b2f6c1e-0d4a-4c59-a1b7-3f5e8d2c7a10"}

    first = client.post(f"/api/conversations/{cid}/messages", json=send)
    again = client.post(f"/api/conversations/{cid}/messages", json=send)

    assert first.status_code == again.status_code == 200
    assert again.json()["answer"] == first.json()["answer"]
    assert again.json()["message_id"] == first.json()["message_id"]
    assert len(turns(extractive)) == 1
    assert [m["role"] for m in client.get(f"/api/conversations/{cid}").json()["messages"]] == ["user", "assistant"]


def test_a_retried_streamed_send_gets_the_first_reply_as_its_done_event(
    client: TestClient, extractive: Services
) -> None:
    cid = new_conversation(client)
    send = {"text": QUESTION, "client_message_id": "stream-retry-0001"}

    first = sse_events(client.post(f"/api/conversations/{cid}/messages/stream", json=send).text)
    again = sse_events(client.post(f"/api/conversations/{cid}/messages/stream", json=send).text)

    assert [e for e, _ in again] == ["done"]  # nothing is generated again
    assert again[-1][1]["answer"] == first[-1][1]["answer"]
    assert len(turns(extractive)) == 1


def test_messages_without_an_id_or_with_different_ids_are_each_answered(
    client: TestClient, extractive: Services
) -> None:
    cid = new_conversation(client)

    client.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION})
    client.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION})
    client.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION, "client_message_id": "id-number-one"})
    client.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION, "client_message_id": "id-number-two"})

    assert len(turns(extractive)) == 4


def test_a_repeat_while_the_first_send_is_still_being_answered_gets_409_in_portuguese(
    client: TestClient, extractive: Services
) -> None:
    cid = new_conversation(client)
    busy = hold(extractive, cid, "in-flight-0001", owner="other", lease_s=60)
    assert busy.id is not None

    response = client.post(
        f"/api/conversations/{cid}/messages", json={"text": QUESTION, "client_message_id": "in-flight-0001"}
    )

    assert response.status_code == 409
    assert response.headers["retry-after"] == "2"
    assert response.json()["code"] == "message_in_progress"
    assert "sendo respondida" in response.json()["detail"]
    assert turns(extractive) == []


def test_a_send_whose_answering_died_is_taken_over_once_its_lease_is_over(extractive: Services) -> None:
    cid = extractive.store.create_conversation("web").id
    died = hold(extractive, cid, "died-0001", owner="dead", lease_s=-1)
    assert died.id is not None

    outcome = extractive.conversations.handle(
        InboundMessage(channel="web", conversation_id=cid, text=QUESTION, client_message_id="died-0001")
    )

    assert outcome.decision == "answered"
    [row] = inbox_rows(extractive)
    assert (row.state, row.attempts, row.reply is not None) == ("done", 2, True)


def test_a_stream_the_citizen_left_mid_answer_leaves_nothing_and_the_retry_is_answered(extractive: Services) -> None:
    cid = extractive.store.create_conversation("web").id
    message = InboundMessage(channel="web", conversation_id=cid, text=QUESTION, client_message_id="left-0001")

    stream = extractive.conversations.handle_stream(message)
    next(stream)  # the first words were shown
    stream.close()  # the tab was closed

    assert turns(extractive) == []
    assert extractive.conversations.handle(message).decision == "answered"
    assert len(turns(extractive)) == 1


def test_the_reply_the_handoff_and_the_channels_rows_are_one_transaction(extractive: Services) -> None:
    cid = extractive.store.create_conversation("web").id
    message = InboundMessage(channel="web", conversation_id=cid, text=QUESTION, client_message_id="atomic-0001")

    def channel_fails(_session: Session, _outcome: Outcome) -> None:
        raise RuntimeError("outbox unavailable")

    with pytest.raises(RuntimeError, match="outbox unavailable"):
        extractive.conversations.handle(message, within=channel_fails)

    assert turns(extractive) == []
    assert extractive.store.list_messages(cid) == []
    [row] = inbox_rows(extractive)
    assert row.state == "pending"  # answered again on the retry
    assert extractive.conversations.handle(message).decision == "answered"


def test_a_message_for_the_agent_is_stored_once_and_a_repeat_gets_the_same_notice(extractive: Services) -> None:
    handoff = extractive.handoff
    assert handoff is not None
    cid = extractive.store.create_conversation("web").id
    handoff.request(cid, reason="citizen_request", source="citizen_request")
    message = InboundMessage(
        channel="web", conversation_id=cid, text="Ainda estou aguardando", client_message_id="agent-0001"
    )

    first = extractive.conversations.handle(message)
    again = extractive.conversations.handle(message)

    assert first.forwarded
    assert again.replayed
    assert again.answer == first.answer
    assert [m.text for m in extractive.store.list_messages(cid) if m.role == "user"] == ["Ainda estou aguardando"]
    assert turns(extractive) == []  # the bot never saw it


def test_a_client_message_id_that_is_not_a_plain_token_is_refused(client: TestClient) -> None:
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION, "client_message_id": "../x"})

    assert response.status_code == 422


def test_the_service_raises_in_progress_for_a_leased_repeat(extractive: Services) -> None:
    cid = extractive.store.create_conversation("web").id
    hold(extractive, cid, "leased-0001", owner="other", lease_s=60)

    with pytest.raises(MessageInProgress):
        extractive.conversations.handle(
            InboundMessage(channel="web", conversation_id=cid, text=QUESTION, client_message_id="leased-0001")
        )


def test_the_first_message_to_an_account_served_only_by_people_queues_it_and_the_bot_stays_silent(
    extractive: Services,
) -> None:
    handoff = extractive.handoff
    assert handoff is not None
    cid = extractive.store.create_conversation("echo").id
    message = InboundMessage(
        channel="echo",
        conversation_id=cid,
        text=QUESTION,
        client_message_id="people-0001",
        team="ouvidoria",
        people_only=True,
    )

    first = extractive.conversations.handle(message)
    second = extractive.conversations.handle(replace(message, text="Alguém aí?", client_message_id="people-0002"))

    assert first.forwarded
    assert first.announces
    assert first.handoff_team == "ouvidoria"
    current = handoff.current(cid)
    assert current is not None
    assert (current.team, current.source) == ("ouvidoria", "echo_number")
    assert second.forwarded
    assert not second.announces  # already queued: nothing new to tell
    assert turns(extractive) == []
    roles = [(m.role, m.text) for m in extractive.store.list_messages(cid)]
    assert roles[0] == ("user", QUESTION)
    assert roles[1][0] == "assistant"  # the notice, stored as the reply
    assert roles[2] == ("user", "Alguém aí?")
