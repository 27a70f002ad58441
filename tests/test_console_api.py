"""The agents' console and the citizen's side of a handoff, over the real app with a scripted model."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from helpers import first_sentence_of

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services
from channels.webchat.testing import keep_only_chat_key
from core.accounts.service import Accounts
from core.accounts.testing import ManualClock, create_user, rewire, sign_in_directly, with_settings
from core.accounts.types import StaffUser
from core.audit import AuditLog
from core.i18n import t
from handoff.hours import DAYS, BusinessHours

CPF = "529.982.247-25"
QUESTION = f"Como emito a segunda via do boleto do IPTU? Meu CPF é {CPF}"


@pytest.fixture
def app(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def accounts(services: Services, app: TestClient) -> Accounts:
    return rewire(services, clock=ManualClock())


@pytest.fixture
def agent(accounts: Accounts) -> StaffUser:
    return create_user(accounts, "ana.agente", "agent")


def citizen_waiting(app: TestClient) -> str:
    """A web chat conversation whose citizen asked for a person, then wrote their question while waiting."""
    cid: str = app.post("/api/conversations").json()["id"]
    asked = app.post(f"/api/conversations/{cid}/messages", json={"text": "quero falar com um atendente"})
    assert asked.json()["decision"] == "handoff"
    return cid


def as_staff(app: TestClient, accounts: Accounts, user: StaffUser) -> dict[str, str]:
    keep_only_chat_key(app)
    return {"X-CSRF-Token": sign_in_directly(app, accounts, user)}


def as_citizen(app: TestClient) -> None:
    keep_only_chat_key(app)


def messages_of(app: TestClient, cid: str) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = app.get(f"/api/conversations/{cid}").json()["messages"]
    return body


def test_a_citizen_who_asks_for_a_person_is_told_their_place_in_the_queue(app: TestClient) -> None:
    cid = app.post("/api/conversations").json()["id"]

    reply = app.post(f"/api/conversations/{cid}/messages", json={"text": "quero falar com um atendente"}).json()
    status = app.get(f"/api/conversations/{cid}/handoff").json()

    assert reply["decision"] == "handoff"
    # The assistant's handoff_to_human tool queued it and says where (tools_mcp → HandoffService.enqueue).
    assert reply["answer"] == t("action.handoff.queued", team="Atendimento geral", position=1)
    assert status == {"state": "waiting", "team": "atendimento", "position": 1, "estimated_wait_s": None}
    assert app.get(f"/api/conversations/{cid}").json()["state"] == "waiting"


def test_messages_written_while_waiting_go_to_the_agent_and_not_to_the_bot(
    app: TestClient, scripted: ScriptedChatModel
) -> None:
    cid = citizen_waiting(app)

    reply = app.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION}).json()

    assert scripted.calls == []  # the model was never asked
    assert (reply["decision"], reply["route"], reply["answer"]) == ("handoff", "human", t("handoff.queued", position=1))
    assert messages_of(app, cid)[-1]["text"] == QUESTION


def test_the_streamed_endpoint_forwards_to_the_agent_too(app: TestClient, scripted: ScriptedChatModel) -> None:
    cid = citizen_waiting(app)

    response = app.post(f"/api/conversations/{cid}/messages/stream", json={"text": QUESTION})

    [block] = response.text.strip().split("\n\n")
    assert block.startswith("event: done")
    assert json.loads(block.split("data: ", 1)[1])["decision"] == "handoff"
    assert scripted.calls == []


def test_an_agent_takes_the_conversation_answers_with_an_edited_suggestion_and_closes_it(
    app: TestClient, accounts: Accounts, agent: StaffUser, scripted: ScriptedChatModel, services: Services
) -> None:
    cid = citizen_waiting(app)
    app.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION})
    headers = as_staff(app, accounts, agent)

    queue = app.get("/api/console/queue").json()
    claimed = app.post(f"/api/console/conversations/{cid}/claim", headers=headers)
    view = app.get(f"/api/console/conversations/{cid}").json()
    scripted.add(first_sentence_of(1))
    suggestion = app.post(f"/api/console/conversations/{cid}/suggestion", headers=headers).json()
    count_after_suggestion = len(messages_of(app, cid))
    edited = suggestion["text"] + " Qualquer dúvida, estou à disposição."
    sent = app.post(f"/api/console/conversations/{cid}/messages", json={"text": edited}, headers=headers)
    closed = app.post(f"/api/console/conversations/{cid}/close", json={"reason": "information_given"}, headers=headers)

    assert [(w["conversation_id"], w["position"]) for w in queue["waiting"]] == [(cid, 1)]
    assert claimed.status_code == 200
    assert claimed.json()["agent"] == f"user:{agent.id}"
    assert view["summary"]["pending"] == QUESTION.replace(CPF, "[CPF]")
    assert CPF not in json.dumps(view)
    assert suggestion["text"]
    assert suggestion["citations"]
    assert count_after_suggestion == len(view["messages"])  # a suggestion is never sent by itself
    assert sent.status_code == 200
    assert closed.status_code == 200
    assert closed.json()["summary"]["pending"] is None  # the agent's reply answered it

    as_citizen(app)
    conversation = app.get(f"/api/conversations/{cid}").json()
    survey = app.post(f"/api/conversations/{cid}/survey", json={"score": 4, "comment": "Resolveu."})
    assert conversation["state"] == "closed"
    assert [m["role"] for m in conversation["messages"][-2:]] == ["agent", "system"]
    assert conversation["messages"][-2]["text"] == edited
    number = closed.json()["protocol_number"]
    assert re.fullmatch(r"\d{4}-\d{6}", number)  # a service protocol (tools_mcp protocols, kind "contact")
    assert conversation["messages"][-1]["text"] == t("handoff.closed", reference=number)
    assert survey.json() == {"detail": t("handoff.survey_thanks")}
    record = services.handoff.current(cid)  # type: ignore[union-attr]
    assert (record.survey_score, record.close_reason) == (4, "information_given")  # type: ignore[union-attr]


def test_a_second_agent_cannot_take_a_conversation_already_taken(
    app: TestClient, accounts: Accounts, agent: StaffUser
) -> None:
    cid = citizen_waiting(app)
    app.post(f"/api/console/conversations/{cid}/claim", headers=as_staff(app, accounts, agent))
    other = create_user(accounts, "bruno.agente", "agent")

    refused = app.post(f"/api/console/conversations/{cid}/claim", headers=as_staff(app, accounts, other))
    reply = app.post(
        f"/api/console/conversations/{cid}/messages", json={"text": "Olá"}, headers=as_staff(app, accounts, other)
    )

    assert (refused.status_code, refused.json()["code"]) == (409, "taken")
    assert (reply.status_code, reply.json()["code"]) == (403, "not_assigned")
    assert refused.json()["detail"] == t("handoff.error.taken")


def test_revealing_the_citizens_personal_data_shows_it_in_clear_and_is_audited(
    app: TestClient, accounts: Accounts, agent: StaffUser, services: Services
) -> None:
    cid = citizen_waiting(app)
    app.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION})
    headers = as_staff(app, accounts, agent)
    app.post(f"/api/console/conversations/{cid}/claim", headers=headers)

    card = app.get(f"/api/console/conversations/{cid}").json()["citizen"]
    revealed = app.post(f"/api/console/conversations/{cid}/reveal", headers=headers).json()

    assert card["data"] == [{"kind": "CPF", "count": 1, "value": "[CPF]"}]
    assert revealed == {"data": [{"kind": "CPF", "value": CPF}]}
    assert isinstance(services.audit, AuditLog)
    reads = [r for r in services.audit.iter_records() if r.action == "conversation.pii_read"]
    assert [(r.actor, r.object_id) for r in reads] == [(f"user:{agent.id}", cid)]


def test_an_agent_cannot_unmask_a_conversation_they_are_not_serving(
    app: TestClient, accounts: Accounts, agent: StaffUser, services: Services
) -> None:
    cid = citizen_waiting(app)
    waiting = app.post(f"/api/console/conversations/{cid}/reveal", headers=as_staff(app, accounts, agent))
    app.post(f"/api/console/conversations/{cid}/claim", headers=as_staff(app, accounts, agent))
    other = create_user(accounts, "carla.agente", "agent")
    someone_elses = app.post(f"/api/console/conversations/{cid}/reveal", headers=as_staff(app, accounts, other))

    assert (waiting.status_code, waiting.json()["code"]) == (403, "not_assigned")
    assert (someone_elses.status_code, someone_elses.json()["code"]) == (403, "not_assigned")
    assert isinstance(services.audit, AuditLog)
    assert not [r for r in services.audit.iter_records() if r.action == "conversation.pii_read"]


def test_an_administrator_may_read_the_queue_but_not_take_or_unmask(app: TestClient, services: Services) -> None:
    # Administrators must enrol a second factor first; that is the accounts issue's concern, not this test's.
    accounts = rewire(services, clock=ManualClock(), settings=with_settings(services.settings, totp_required_roles=""))
    cid = citizen_waiting(app)
    headers = as_staff(app, accounts, create_user(accounts, "root", "admin"))

    assert app.get("/api/console/queue").status_code == 200
    assert app.post(f"/api/console/conversations/{cid}/claim", headers=headers).status_code == 403
    assert app.post(f"/api/console/conversations/{cid}/reveal", headers=headers).status_code == 403


def test_notes_stay_internal_and_a_transfer_requeues_for_the_other_team(
    app: TestClient, accounts: Accounts, agent: StaffUser
) -> None:
    from core.accounts.types import SYSTEM

    accounts.directory.create_team("Tributos", actor="system", origin=SYSTEM)  # a transfer names an existing setor
    cid = citizen_waiting(app)
    headers = as_staff(app, accounts, agent)
    app.post(f"/api/console/conversations/{cid}/claim", headers=headers)

    app.post(f"/api/console/conversations/{cid}/notes", json={"text": "Ligar para a SEFAZ"}, headers=headers)
    notes = app.get(f"/api/console/conversations/{cid}").json()["notes"]
    moved = app.post(f"/api/console/conversations/{cid}/transfer", json={"team": "tributos"}, headers=headers).json()

    assert [n["text"] for n in notes] == ["Ligar para a SEFAZ"]
    assert moved == {"state": "waiting", "team": "tributos", "position": 1, "estimated_wait_s": None}
    as_citizen(app)
    assert all(m["text"] != "Ligar para a SEFAZ" for m in messages_of(app, cid))


def test_closing_without_a_known_reason_is_a_422_in_portuguese(
    app: TestClient, accounts: Accounts, agent: StaffUser
) -> None:
    cid = citizen_waiting(app)
    headers = as_staff(app, accounts, agent)
    app.post(f"/api/console/conversations/{cid}/claim", headers=headers)

    refused = app.post(f"/api/console/conversations/{cid}/close", json={"reason": "sei-la"}, headers=headers)

    assert refused.status_code == 422
    assert refused.json() == {"code": "invalid_reason", "detail": t("handoff.error.invalid_reason")}


def test_a_survey_before_the_service_is_closed_is_refused(app: TestClient) -> None:
    cid = citizen_waiting(app)

    refused = app.post(f"/api/conversations/{cid}/survey", json={"score": 5})

    assert (refused.status_code, refused.json()["code"]) == (409, "no_survey")


def test_the_event_stream_starts_with_ready_and_pushes_queue_changes(
    app: TestClient, accounts: Accounts, agent: StaffUser, services: Services
) -> None:
    as_staff(app, accounts, agent)
    cid = services.store.create_conversation("web").id

    # The test client never reports the disconnect, so the stream runs its full `wait`: keep it short.
    with app.stream("GET", "/api/console/events", params={"wait": 5}) as response:
        lines = (line for line in response.iter_lines() if line)
        before = list(itertools.takewhile(lambda line: not line.startswith("data:"), lines))
        services.handoff.request(cid, reason="citizen_request", source="citizen_request")  # type: ignore[union-attr]
        pushed = [next(lines) for _ in range(2)]

    assert response.headers["content-type"].startswith("text/event-stream")
    assert before[-1] == "event: ready"
    assert pushed[0] == "event: queued"
    assert json.loads(pushed[1].removeprefix("data: "))["conversation_id"] == cid


def test_the_console_page_is_served_in_portuguese_with_its_assets(app: TestClient) -> None:
    page = app.get("/console")

    assert page.status_code == 200
    assert f"<title>{t('console.title')}" in page.text
    assert app.get("/console/assets/console.js").status_code == 200
    assert app.get("/console/assets/staff.js").status_code == 200
    assert app.get("/console/assets/nada.js").status_code == 404


def team_of_two(accounts: Accounts, agent: StaffUser) -> tuple[StaffUser, StaffUser]:
    """A supervisor and a second agent in the first agent's team (a supervisor sees only their teams' staff)."""
    from core.accounts.directory import UserChanges
    from core.accounts.types import SYSTEM

    team = accounts.directory.create_team("Atendimento geral", actor="system", origin=SYSTEM)
    accounts.directory.update_user(agent.id, UserChanges(team_id=team.id), actor="system", origin=SYSTEM)
    return (
        create_user(accounts, "sueli.supervisora", "supervisor", team=team.id),
        create_user(accounts, "bruno.agente", "agent", team=team.id),
    )


def test_the_supervisor_sees_presence_queue_sizes_and_todays_times(
    app: TestClient, accounts: Accounts, agent: StaffUser
) -> None:
    supervisor, other = team_of_two(accounts, agent)
    outsider = create_user(accounts, "fora.da.equipe", "agent")
    first = citizen_waiting(app)
    citizen_waiting(app)
    headers = as_staff(app, accounts, agent)
    app.post("/api/console/presence", json={"status": "online"}, headers=headers)
    app.post(f"/api/console/conversations/{first}/claim", headers=headers)
    headers = as_staff(app, accounts, other)
    app.post("/api/console/presence", json={"status": "paused"}, headers=headers)
    as_staff(app, accounts, supervisor)

    board = app.get("/api/console/supervisor").json()

    statuses = {entry["subject"]: (entry["status"], entry["load"], entry["capacity"]) for entry in board["agents"]}
    assert statuses == {
        agent.subject: ("busy", 1, 3),
        other.subject: ("paused", 0, 3),
        supervisor.subject: ("offline", 0, 3),
    }
    assert outsider.subject not in statuses  # another team's agent
    assert list(board["queues"]) == ["atendimento"]
    assert board["queues"]["atendimento"]["size"] == 1
    assert [item["agent"] for item in board["served"]] == [agent.subject]
    assert board["today"]["handoffs"] == 2
    assert board["today"]["mean_wait_s"] is not None


def test_a_supervisor_reassigns_steps_in_and_closes_and_an_agent_may_not(
    app: TestClient, accounts: Accounts, agent: StaffUser, services: Services
) -> None:
    supervisor, other = team_of_two(accounts, agent)
    cid = citizen_waiting(app)
    headers = as_staff(app, accounts, agent)
    app.post(f"/api/console/conversations/{cid}/claim", headers=headers)
    refused = app.post(
        f"/api/console/supervisor/conversations/{cid}/reassign", json={"agent": other.subject}, headers=headers
    )
    headers = as_staff(app, accounts, supervisor)

    moved = app.post(
        f"/api/console/supervisor/conversations/{cid}/reassign", json={"agent": other.subject}, headers=headers
    )
    unknown = app.post(
        f"/api/console/supervisor/conversations/{cid}/reassign", json={"agent": "user:9999"}, headers=headers
    )
    stepped_in = app.post(
        f"/api/console/supervisor/conversations/{cid}/messages", json={"text": "Aqui é a supervisão."}, headers=headers
    )
    closed = app.post(
        f"/api/console/supervisor/conversations/{cid}/close", json={"reason": "resolved"}, headers=headers
    )

    assert refused.status_code == 403
    assert (moved.status_code, moved.json()["agent"]) == (200, other.subject)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == t("handoff.error.unknown_agent")
    assert stepped_in.status_code == 200
    as_citizen(app)
    assert "Aqui é a supervisão." in [m["text"] for m in messages_of(app, cid)]
    assert closed.json()["status"] == "closed"
    kinds = [e.kind for e in services.store.list_events(cid)]
    assert {"handoff_reassigned", "supervisor_intervened", "handoff_closed"} <= set(kinds)


def test_a_supervisor_sets_an_agents_capacity_and_the_agent_reads_it(
    app: TestClient, accounts: Accounts, agent: StaffUser
) -> None:
    from core.accounts.types import SYSTEM

    supervisor, _ = team_of_two(accounts, agent)
    general = accounts.directory.team("Atendimento geral")
    assert general is not None
    accounts.directory.create_team("Tributos", parent=general.id, actor="system", origin=SYSTEM)  # below hers
    headers = as_staff(app, accounts, supervisor)

    saved = app.put(
        f"/api/console/agents/{agent.subject}/profile",
        json={"teams": ["atendimento", "tributos"], "capacity": 5, "languages": ["pt-BR", "es"]},
        headers=headers,
    )
    invalid = app.put(
        f"/api/console/agents/{agent.subject}/profile", json={"teams": [], "capacity": 0}, headers=headers
    )
    as_staff(app, accounts, agent)
    mine = app.get("/api/console/agents/me").json()

    assert saved.status_code == 200
    assert invalid.status_code == 422
    assert (mine["capacity"], mine["teams"], mine["languages"]) == (5, ["atendimento", "tributos"], ["pt-BR", "es"])


def test_the_console_heartbeat_keeps_the_agent_online_for_the_presence_ttl(
    app: TestClient, accounts: Accounts, agent: StaffUser, services: Services
) -> None:
    headers = as_staff(app, accounts, agent)

    beat = app.post("/api/console/presence", json={"status": "online"}, headers=headers).json()

    assert beat["ttl_s"] == services.settings.handoff_presence_ttl_s
    assert services.handoff.live.presence() == {agent.subject: "online"}  # type: ignore[union-attr]


def test_the_supervisor_page_is_served_in_portuguese_with_its_script(app: TestClient) -> None:
    page = app.get("/console/supervisor")

    assert page.status_code == 200
    assert f"<title>{t('supervisor.title')}" in page.text
    assert app.get("/console/assets/supervisor.js").status_code == 200


def test_outside_business_hours_the_citizen_is_told_when_the_team_opens_and_offered_a_protocol(
    app: TestClient, services: Services
) -> None:
    tomorrow = DAYS[(datetime.now(ZoneInfo("America/Sao_Paulo")).weekday() + 1) % 7]
    hours = {"atendimento": BusinessHours.parse(f"{tomorrow} 08:00-17:00")}
    services.handoff.config = replace(services.handoff.config, hours=hours)  # type: ignore[union-attr]
    cid = app.post("/api/conversations").json()["id"]

    reply = app.post(f"/api/conversations/{cid}/messages", json={"text": "quero falar com um atendente"}).json()

    assert reply["decision"] == "handoff"
    assert reply["answer"].startswith(t("handoff.after_hours", day="", time="")[:40])
    assert "08:00" in reply["answer"]
    assert app.get(f"/api/conversations/{cid}/handoff").json()["state"] == "bot"


def test_with_a_remote_model_the_copilot_prompt_carries_placeholders_not_the_citizens_data(
    app: TestClient, accounts: Accounts, agent: StaffUser, scripted: ScriptedChatModel, services: Services
) -> None:
    assert services.copilot is not None
    services.copilot.llm_is_local = False  # as with ATENDE_LLM_BACKEND=openai pointing at a hosted provider
    cid = citizen_waiting(app)
    app.post(f"/api/conversations/{cid}/messages", json={"text": QUESTION})
    headers = as_staff(app, accounts, agent)
    app.post(f"/api/console/conversations/{cid}/claim", headers=headers)
    scripted.add(first_sentence_of(1))

    suggestion = app.post(f"/api/console/conversations/{cid}/suggestion", headers=headers).json()

    assert suggestion["text"]
    assert CPF not in json.dumps(scripted.calls, ensure_ascii=False)


def test_a_citizen_who_leaves_the_queue_is_back_with_the_bot_and_the_abandonment_is_timed(
    app: TestClient, services: Services
) -> None:
    cid = citizen_waiting(app)

    left = app.delete(f"/api/conversations/{cid}/handoff")
    again = app.delete(f"/api/conversations/{cid}/handoff")

    assert left.json()["state"] == "bot"
    assert again.status_code == 409
    assert again.json()["detail"] == t("handoff.error.not_waiting")
    record = services.handoff.current(cid)  # type: ignore[union-attr]
    assert record is not None
    assert record.status == "abandoned"
    assert record.timings_s()["abandonment"] is not None
