"""Anonymous floods against the running app (an app of its own: the limits it trips would refuse the other
modules' citizens). The review created 300 conversations in 10 s and nothing stopped it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from .conftest import Citizen, LiveApp, live_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from live_app(tmp_path_factory, "flood")


FLOOD = 300


def until_refused(send: Callable[[], httpx.Response], limit: int) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    for _ in range(limit):
        answer = send()
        answers.append(answer)
        if answer.status_code == 429:
            break
    return answers


def assert_told_to_retry_later(answers: list[httpx.Response], what: str) -> None:
    refused = answers[-1]
    assert refused.status_code == 429, f"{len(answers)} {what} and no limit"
    assert int(refused.headers["retry-after"]) > 0
    body = refused.json()
    assert body["code"]
    assert body["detail"]
    assert all(a.status_code < 500 for a in answers)


def test_a_flood_of_messages_to_one_conversation_is_told_to_retry_later(live: LiveApp) -> None:
    citizen = Citizen(live)
    conversation_id = citizen.start()

    answers = until_refused(lambda: citizen.say(conversation_id, "Qual o horário da prefeitura?"), 120)

    assert_told_to_retry_later(answers, "messages")


def test_an_anonymous_flood_of_new_conversations_is_told_to_retry_later(live: LiveApp) -> None:
    answers = until_refused(lambda: live.request("POST", "/api/conversations", json={}), FLOOD)

    assert_told_to_retry_later(answers, "conversations")
