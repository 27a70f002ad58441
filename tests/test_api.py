"""The HTTP API and the web chat as a browser sees them, over the real app with a scripted model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import first_sentence_of, sse_events

from assistant.llm import LLMError
from assistant.testing import ScriptedChatModel
from atende.app import MAX_BODY_BYTES, create_app
from atende.services import Services
from channels.webchat.router import browser_url
from channels.webchat.schemas import ReplyOut
from core.i18n import t

QUESTION = "Como emito a segunda via do boleto do IPTU?"
ERROR_KEYS = {"code", "detail"}


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    # https: the chat key cookie is Secure (ATENDE_SESSION_COOKIE_SECURE), and the client keeps it only there.
    with TestClient(create_app(services=services), base_url="https://testserver") as test_client:
        yield test_client


def new_conversation(client: TestClient) -> str:
    response = client.post("/api/conversations")
    assert response.status_code == 201
    conversation_id: str = response.json()["id"]
    return conversation_id


def messages_of(client: TestClient, conversation_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = client.get(f"/api/conversations/{conversation_id}").json()["messages"]
    return messages


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) >= ERROR_KEYS
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if code is not None:
        assert body["code"] == code
    return body


# Conversations and messages


def test_a_new_conversation_is_created_empty_in_the_bot_state_on_the_web_channel(client: TestClient) -> None:
    response = client.post("/api/conversations")

    assert response.status_code == 201
    conversation_id = response.json()["id"]
    conversation = client.get(f"/api/conversations/{conversation_id}")
    assert conversation.status_code == 200
    assert conversation.json() == {"id": conversation_id, "state": "bot", "channel": "web", "messages": []}


def test_a_knowledge_question_is_answered_with_citations_that_link_to_the_article_page(
    client: TestClient, scripted: ScriptedChatModel
) -> None:
    scripted.add(first_sentence_of(1))
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION})

    assert response.status_code == 200
    reply = response.json()
    assert reply["decision"] == "answered"
    assert "[1]" in reply["answer"]
    assert isinstance(reply["message_id"], int)
    [citation] = reply["citations"]
    assert citation["doc_id"] == "iptu-segunda-via"
    assert citation["title"] == "Segunda via do boleto do IPTU"
    assert citation["url"] == "/kb/iptu-segunda-via"
    scripted.assert_consumed()


def test_the_conversation_shows_the_question_and_the_answer_with_zoned_timestamps_and_page_links(
    client: TestClient, scripted: ScriptedChatModel
) -> None:
    scripted.add(first_sentence_of(1))
    cid = new_conversation(client)
    answer = client.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION}).json()["answer"]

    user, assistant = messages_of(client, cid)

    assert (user["role"], user["text"]) == ("user", QUESTION)
    assert (assistant["role"], assistant["text"], assistant["decision"]) == ("assistant", answer, "answered")
    assert assistant["citations"][0]["url"] == "/kb/iptu-segunda-via"
    for message in (user, assistant):
        assert datetime.fromisoformat(message["created_at"]).tzinfo is not None


def test_a_streamed_answer_sends_tokens_then_one_done_event_with_the_reply(
    client: TestClient, scripted: ScriptedChatModel
) -> None:
    scripted.add(first_sentence_of(1))
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages/stream", json={"text": QUESTION})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds.count("token") >= 2
    assert kinds[-1] == "done"
    assert kinds.count("done") == 1
    done = events[-1][1]
    assert set(done) == set(ReplyOut.model_fields)
    assert ReplyOut.model_validate(done).decision == "answered"
    assert done["citations"][0]["url"] == "/kb/iptu-segunda-via"
    streamed = "".join(data["text"] for kind, data in events if kind == "token")
    assert streamed
    assert done["answer"].startswith(streamed)


def test_a_streamed_answer_asks_proxies_not_to_buffer_it(client: TestClient, scripted: ScriptedChatModel) -> None:
    scripted.add(first_sentence_of(1))
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages/stream", json={"text": QUESTION})

    assert response.headers["x-accel-buffering"] == "no"


def test_a_model_failure_is_answered_from_the_article_and_the_turn_records_the_error(
    client: TestClient, scripted: ScriptedChatModel, services: Services
) -> None:
    scripted.add(LLMError("connection refused"))
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION})

    assert response.status_code == 200
    assert response.json()["decision"] == "answered"
    assert response.json()["answer"] != t("llm_error")
    assert response.json()["citations"]
    [turn] = list(services.store.iter_turns())
    assert turn["error"] == "connection refused"
    assert turn["conversation_id"] == cid


def test_asking_for_a_person_hands_the_conversation_off(client: TestClient) -> None:
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages", json={"text": "quero falar com um atendente"})

    assert response.status_code == 200
    assert response.json()["decision"] == "handoff"


# Errors


def test_malformed_json_is_a_400_with_a_portuguese_explanation(client: TestClient) -> None:
    cid = new_conversation(client)

    response = client.post(
        f"/api/conversations/{cid}/messages", content=b'{"text": ', headers={"content-type": "application/json"}
    )

    body = assert_error(response, 400, "malformed_json")
    assert body["detail"] == t("error.invalid_request")


def test_a_message_without_text_is_a_422(client: TestClient) -> None:
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages", json={"texto": QUESTION})

    body = assert_error(response, 422, "invalid_request")
    assert body["detail"] == t("error.invalid_request")


@pytest.mark.parametrize("text", ["", "  \n "])
def test_an_empty_message_is_a_422(client: TestClient, text: str) -> None:
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages", json={"text": text})

    body = assert_error(response, 422, "empty_message")
    assert body["detail"] == t("error.empty_message")


def test_a_message_longer_than_the_limit_is_a_413_that_names_the_limit(client: TestClient, services: Services) -> None:
    limit = services.settings.max_message_chars
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages", json={"text": "x" * (limit + 1)})

    body = assert_error(response, 413, "message_too_long")
    assert str(limit) in body["detail"]


def test_reading_an_unknown_conversation_is_a_404(client: TestClient) -> None:
    response = client.get("/api/conversations/no-such-conversation")

    body = assert_error(response, 404, "conversation_not_found")
    assert body["detail"] == t("error.conversation_not_found")


def test_posting_to_an_unknown_conversation_is_a_404(client: TestClient) -> None:
    response = client.post("/api/conversations/no-such-conversation/messages", json={"text": QUESTION})

    assert_error(response, 404, "conversation_not_found")


def test_streaming_to_an_unknown_conversation_fails_with_a_404_before_any_event(client: TestClient) -> None:
    response = client.post("/api/conversations/no-such-conversation/messages/stream", json={"text": QUESTION})

    assert_error(response, 404, "conversation_not_found")
    assert "event:" not in response.text


def test_streaming_an_empty_message_fails_with_a_422_before_any_event(client: TestClient) -> None:
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages/stream", json={"text": " "})

    assert_error(response, 422, "empty_message")


def test_a_body_over_256_kib_is_refused_with_a_413_before_it_is_processed(
    client: TestClient, scripted: ScriptedChatModel
) -> None:
    cid = new_conversation(client)

    response = client.post(f"/api/conversations/{cid}/messages", json={"text": "x" * (MAX_BODY_BYTES + 1)})

    body = assert_error(response, 413, "body_too_large")
    assert "256 KiB" in body["detail"]
    assert scripted.calls == []
    assert messages_of(client, cid) == []


def test_a_chunked_body_over_256_kib_is_refused_with_a_413_too(client: TestClient) -> None:
    cid = new_conversation(client)
    # A generator body is sent chunked, without a Content-Length to check up front.
    chunks = iter([b'{"text": "', b"x" * (MAX_BODY_BYTES + 1), b'"}'])

    response = client.post(
        f"/api/conversations/{cid}/messages", content=chunks, headers={"content-type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert_error(response, 413, "body_too_large")
    assert messages_of(client, cid) == []


def test_an_unknown_route_is_a_404_in_json(client: TestClient) -> None:
    response = client.get("/no/such/page")

    body = assert_error(response, 404, "not_found")
    assert body["detail"] == t("error.not_found")


def test_a_wrong_method_is_a_405_in_portuguese(client: TestClient) -> None:
    cid = new_conversation(client)

    response = client.put(f"/api/conversations/{cid}/messages", json={"text": QUESTION})

    body = assert_error(response, 405, "method_not_allowed")
    assert body["detail"] == t("error.method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_refused_messages_leave_the_conversation_empty(client: TestClient, services: Services) -> None:
    cid = new_conversation(client)
    url = f"/api/conversations/{cid}/messages"
    too_long = "x" * (services.settings.max_message_chars + 1)

    statuses = [
        client.post(url, content=b"{", headers={"content-type": "application/json"}).status_code,
        client.post(url, json={}).status_code,
        client.post(url, json={"text": ""}).status_code,
        client.post(url, json={"text": too_long}).status_code,
        client.post(f"{url}/stream", json={"text": too_long}).status_code,
    ]

    assert statuses == [400, 422, 422, 413, 413]
    assert messages_of(client, cid) == []
    assert list(services.store.iter_turns()) == []


# Pages and assets


def test_the_home_page_is_the_chat(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "data-atende-chat" in response.text


def test_the_chat_script_is_served_as_javascript(client: TestClient) -> None:
    response = client.get("/static/chat.js")

    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]


def test_the_widget_script_is_served_as_javascript(client: TestClient) -> None:
    response = client.get("/widget.js")

    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]


def test_the_portuguese_strings_are_served_as_json(client: TestClient) -> None:
    response = client.get("/static/locales/pt-BR.json")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["_meta"]["lang"] == "pt-BR"


@pytest.mark.parametrize("path", ["/widget.js", "/static/widget.js", "/static/locales/pt-BR.json"])
def test_other_sites_may_load_the_widget_and_its_strings(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"Origin": "https://portal.example"})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_the_widget_strings_allow_only_get_from_other_sites(client: TestClient) -> None:
    response = client.options(
        "/static/locales/pt-BR.json",
        headers={"Origin": "https://portal.example", "Access-Control-Request-Method": "GET"},
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-methods"] == "GET"


@pytest.mark.parametrize("path", ["/", "/static/chat.js", "/kb/iptu-segunda-via"])
def test_pages_are_not_shared_with_other_sites(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"Origin": "https://portal.example"})

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_the_api_is_not_shared_with_other_sites(client: TestClient) -> None:
    origin = {"Origin": "https://portal.example"}
    created = client.post("/api/conversations", headers=origin)
    preflight = client.options("/api/conversations", headers={**origin, "Access-Control-Request-Method": "POST"})

    assert created.status_code == 201
    assert "access-control-allow-origin" not in created.headers
    assert "access-control-allow-origin" not in preflight.headers


def test_a_public_article_is_an_html_page_with_its_title(client: TestClient) -> None:
    response = client.get("/kb/iptu-segunda-via")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Segunda via do boleto do IPTU" in response.text


def test_an_internal_article_has_no_page(client: TestClient, services: Services) -> None:
    chunk = services.index.lexical.chunks_of("interno-triagem-protocolos")[0]
    assert chunk.audience == "internal"

    response = client.get("/kb/interno-triagem-protocolos")

    assert_error(response, 404, "not_found")
    assert chunk.title not in response.text


def test_an_unknown_article_has_no_page(client: TestClient) -> None:
    assert_error(client.get("/kb/no-such-article"), 404, "not_found")


def test_index_urls_become_article_pages_and_external_urls_are_kept() -> None:
    assert browser_url("kb://articles/iptu-segunda-via") == "/kb/iptu-segunda-via"
    assert browser_url("kb://articles/guia%20do%20cidad%C3%A3o") == "/kb/guia%20do%20cidad%C3%A3o"
    assert browser_url("https://www.gov.br/servico") == "https://www.gov.br/servico"
    assert browser_url("http://intranet.example/doc") == "http://intranet.example/doc"


# Operations


def test_the_liveness_probe_answers(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_readiness_probe_is_ready_once_warmed_and_lists_its_checks(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["model"] == "ok"
    assert body["checks"]["index_chunks"] > 0


def test_the_openapi_document_describes_the_conversation_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]

    assert {
        "/api/conversations",
        "/api/conversations/{conversation_id}",
        "/api/conversations/{conversation_id}/messages",
        "/api/conversations/{conversation_id}/messages/stream",
    } <= set(paths)
    post_message = paths["/api/conversations/{conversation_id}/messages"]["post"]
    request_schema = post_message["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema["$ref"].endswith("/MessageIn")
    assert post_message["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReplyOut")
    assert post_message["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    get_conversation = paths["/api/conversations/{conversation_id}"]["get"]
    assert get_conversation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ConversationOut"
    )
    assert (
        "text/event-stream"
        in paths["/api/conversations/{conversation_id}/messages/stream"]["post"]["responses"]["200"]["content"]
    )
    assert {"MessageIn", "ReplyOut", "CitationOut", "ConversationOut", "ErrorOut"} <= set(spec["components"]["schemas"])


def test_api_responses_are_never_cached(client: TestClient, scripted: ScriptedChatModel) -> None:
    scripted.add(first_sentence_of(1))
    created = client.post("/api/conversations")
    cid = created.json()["id"]

    responses = [
        created,
        client.get(f"/api/conversations/{cid}"),
        client.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION}),
        client.post(f"/api/conversations/{cid}/messages", json={"text": ""}),
        client.get("/api/conversations/no-such-conversation"),
    ]

    assert [r.headers.get("cache-control") for r in responses] == ["no-store"] * len(responses)
