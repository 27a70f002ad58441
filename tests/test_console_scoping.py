"""Who sees what in the console: setor (team), assignment and role scope every conversation route, the live feed
carries no personal data, and handoffs name only existing teams (docs/decisions/0036-console-access.md)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from fastapi.testclient import TestClient

from atende.app import create_app
from atende.services import Services
from core.accounts.permissions import SCOPES
from core.accounts.service import Accounts
from core.accounts.testing import ManualClock, create_user, rewire, sign_in_directly, with_settings
from core.accounts.types import SYSTEM, StaffUser
from core.audit import AuditLog
from core.i18n import t
from core.principals import Principal, StaticTokenVerifier
from handoff.service import HandoffService

CPF = "529.982.247-25"
PHONE = "(11) 98765-4321"
PERSONAL = f"Meu CPF é {CPF} e meu telefone é {PHONE}"
INTEGRATION_TOKEN = "integration-with-every-scope"


@pytest.fixture
def app(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), base_url="https://testserver") as client:
        yield client


@dataclass(frozen=True)
class Office:
    """Two setors: "Atendimento geral" serves the atendimento queue, "Tributos" the tributos queue."""

    accounts: Accounts
    agent_a: StaffUser
    colleague_a: StaffUser
    supervisor_a: StaffUser
    agent_b: StaffUser
    supervisor_b: StaffUser


@pytest.fixture
def office(services: Services, app: TestClient) -> Office:
    accounts = rewire(services, clock=ManualClock())
    general = accounts.directory.create_team("Atendimento geral", actor="system", origin=SYSTEM)
    taxes = accounts.directory.create_team("Tributos", actor="system", origin=SYSTEM)
    return Office(
        accounts,
        create_user(accounts, "ana.agente", "agent", team=general.id),
        create_user(accounts, "caio.agente", "agent", team=general.id),
        create_user(accounts, "sueli.supervisora", "supervisor", team=general.id),
        create_user(accounts, "bia.tributos", "agent", team=taxes.id),
        create_user(accounts, "tito.supervisor", "supervisor", team=taxes.id),
    )


def handoff_of(services: Services) -> HandoffService:
    assert services.handoff is not None
    return services.handoff


def waiting_for_general(services: Services) -> str:
    """A web conversation in the atendimento queue whose citizen wrote their CPF and phone."""
    cid = services.store.create_conversation("web").id
    handoff = handoff_of(services)
    handoff.request(cid, reason="citizen_request", source="citizen_request")
    handoff.citizen_message(cid, PERSONAL)
    return cid


def as_staff(app: TestClient, office: Office, user: StaffUser) -> dict[str, str]:
    app.cookies.clear()
    return {"X-CSRF-Token": sign_in_directly(app, office.accounts, user)}


def served_by(app: TestClient, office: Office, services: Services, agent: StaffUser) -> str:
    cid = waiting_for_general(services)
    claimed = app.post(f"/api/console/conversations/{cid}/claim", headers=as_staff(app, office, agent))
    assert claimed.status_code == 200
    return cid


def pii_reads(services: Services) -> list[str]:
    assert isinstance(services.audit, AuditLog)
    return [r.actor for r in services.audit.iter_records() if r.action == "conversation.pii_read"]


def test_the_live_feed_pushes_message_ids_and_never_the_citizens_cpf_or_phone(
    app: TestClient, office: Office, services: Services
) -> None:
    cid = served_by(app, office, services, office.agent_a)

    # The test client never reports the disconnect, so the stream runs its full `wait`: keep it short.
    with app.stream("GET", "/api/console/events", params={"wait": 3, "conversation_id": cid}) as response:
        lines = (line for line in response.iter_lines() if line)
        list(itertools.takewhile(lambda line: not line.startswith("data:"), lines))
        handoff_of(services).citizen_message(cid, PERSONAL)
        pushed = [next(lines) for _ in range(2)]

    assert response.status_code == 200
    assert pushed[0] == "event: message"
    data = json.loads(pushed[1].removeprefix("data: "))
    assert data["message"]["role"] == "user"
    assert isinstance(data["message"]["id"], int)
    assert CPF not in pushed[1]
    assert PHONE not in pushed[1]
    assert "98765" not in pushed[1]


def test_the_queue_feed_reaches_only_the_staff_of_the_conversations_team(
    app: TestClient, office: Office, services: Services
) -> None:
    as_staff(app, office, office.agent_b)
    general = services.store.create_conversation("web").id
    taxes = services.store.create_conversation("web").id

    with app.stream("GET", "/api/console/events", params={"wait": 3}) as response:
        lines = (line for line in response.iter_lines() if line)
        list(itertools.takewhile(lambda line: not line.startswith("data:"), lines))
        handoff_of(services).request(general, reason="citizen_request", source="citizen_request")
        handoff_of(services).request(taxes, reason="citizen_request", source="topic", team="tributos")
        pushed = [next(lines) for _ in range(2)]

    assert pushed[0] == "event: queued"
    assert json.loads(pushed[1].removeprefix("data: "))["conversation_id"] == taxes  # the atendimento one never came


def test_an_agent_of_another_team_cannot_read_claim_reveal_note_suggest_or_follow_a_conversation(
    app: TestClient, office: Office, services: Services
) -> None:
    cid = waiting_for_general(services)
    headers = as_staff(app, office, office.agent_b)

    queue = app.get("/api/console/queue").json()
    read = app.get(f"/api/console/conversations/{cid}")
    followed = app.get("/api/console/events", params={"conversation_id": cid})
    claimed = app.post(f"/api/console/conversations/{cid}/claim", headers=headers)
    noted = app.post(f"/api/console/conversations/{cid}/notes", json={"text": "Vi aqui"}, headers=headers)
    suggested = app.post(f"/api/console/conversations/{cid}/suggestion", headers=headers)
    revealed = app.post(f"/api/console/conversations/{cid}/reveal", headers=headers)

    assert cid not in [item["conversation_id"] for item in queue["waiting"]]
    for refused in (read, followed, claimed, noted, suggested, revealed):
        assert (refused.status_code, refused.json()["code"]) == (403, "other_team")
    assert read.json()["detail"] == t("handoff.error.other_team")
    assert handoff_of(services).current(cid).status == "waiting"  # type: ignore[union-attr]
    assert pii_reads(services) == []


def test_the_agents_own_team_sees_the_waiting_conversation_and_may_claim_it(
    app: TestClient, office: Office, services: Services
) -> None:
    cid = waiting_for_general(services)
    headers = as_staff(app, office, office.agent_a)

    queue = app.get("/api/console/queue").json()
    read = app.get(f"/api/console/conversations/{cid}")
    claimed = app.post(f"/api/console/conversations/{cid}/claim", headers=headers)

    assert [item["conversation_id"] for item in queue["waiting"]] == [cid]
    assert read.status_code == 200
    assert CPF not in read.text
    assert claimed.status_code == 200


def test_a_supervisor_of_another_team_cannot_reassign_step_in_or_close(
    app: TestClient, office: Office, services: Services
) -> None:
    cid = served_by(app, office, services, office.agent_a)
    headers = as_staff(app, office, office.supervisor_b)
    base = f"/api/console/supervisor/conversations/{cid}"

    board = app.get("/api/console/supervisor").json()
    taken = app.post(f"{base}/reassign", json={"agent": "me"}, headers=headers)
    stepped_in = app.post(f"{base}/messages", json={"text": "Aqui é a supervisão."}, headers=headers)
    closed = app.post(f"{base}/close", json={"reason": "resolved"}, headers=headers)
    revealed = app.post(f"/api/console/conversations/{cid}/reveal", headers=headers)

    assert cid not in [item["conversation_id"] for item in board["served"]]
    for refused in (taken, stepped_in, closed, revealed):
        assert (refused.status_code, refused.json()["code"]) == (403, "other_team")
    current = handoff_of(services).current(cid)
    assert current is not None
    assert (current.status, current.agent) == ("with_agent", office.agent_a.subject)
    assert [m.role for m in services.store.list_messages(cid)] == ["user"]
    assert pii_reads(services) == []


def test_the_supervisor_of_the_team_unmasks_and_the_read_is_audited(
    app: TestClient, office: Office, services: Services
) -> None:
    cid = served_by(app, office, services, office.agent_a)
    headers = as_staff(app, office, office.supervisor_a)

    revealed = app.post(f"/api/console/conversations/{cid}/reveal", headers=headers)

    assert revealed.status_code == 200
    assert {"kind": "CPF", "value": CPF} in revealed.json()["data"]
    assert pii_reads(services) == [office.supervisor_a.subject]


def test_an_integration_token_holding_every_scope_cannot_unmask_or_read_a_conversation(
    app: TestClient, office: Office, services: Services
) -> None:
    cid = served_by(app, office, services, office.agent_a)
    integration = Principal(kind="integration", subject="integration:ouvidoria", scopes=SCOPES)
    services.token_verifier = StaticTokenVerifier({INTEGRATION_TOKEN: integration})
    app.cookies.clear()
    bearer = {"Authorization": f"Bearer {INTEGRATION_TOKEN}"}

    revealed = app.post(f"/api/console/conversations/{cid}/reveal", headers=bearer)
    read = app.get(f"/api/console/conversations/{cid}", headers=bearer)
    queue = app.get("/api/console/queue", headers=bearer)

    assert (revealed.status_code, revealed.json()["code"]) == (403, "no_access")
    assert revealed.json()["detail"] == t("handoff.error.no_access")
    assert read.status_code == 403
    assert queue.json()["waiting"] == []
    assert pii_reads(services) == []


def test_an_agent_of_the_team_who_is_not_serving_cannot_add_notes_or_run_the_copilot(
    app: TestClient, office: Office, services: Services
) -> None:
    waiting = waiting_for_general(services)
    cid = served_by(app, office, services, office.agent_a)
    headers = as_staff(app, office, office.colleague_a)

    refused = [
        app.post(f"/api/console/conversations/{cid}/notes", json={"text": "Eu resolvo"}, headers=headers),
        app.post(f"/api/console/conversations/{cid}/suggestion", headers=headers),
        app.get(f"/api/console/conversations/{cid}/actions/open_protocol", headers=headers),
        app.post(f"/api/console/conversations/{waiting}/notes", json={"text": "Antes de assumir"}, headers=headers),
        app.post(f"/api/console/conversations/{waiting}/suggestion", headers=headers),
    ]

    assert [(r.status_code, r.json()["code"]) for r in refused] == [(403, "not_assigned")] * len(refused)
    assert not [e for e in services.store.list_events(cid) if e.kind == "internal_note"]
    assert not [e for e in services.store.list_events(waiting) if e.kind == "internal_note"]


def test_a_transfer_to_an_unknown_team_is_refused_in_portuguese_and_the_conversation_stays(
    app: TestClient, office: Office, services: Services
) -> None:
    cid = served_by(app, office, services, office.agent_a)
    headers = as_staff(app, office, office.agent_a)

    refused = app.post(f"/api/console/conversations/{cid}/transfer", json={"team": "tributo"}, headers=headers)
    moved = app.post(f"/api/console/conversations/{cid}/transfer", json={"team": "tributos"}, headers=headers)

    assert refused.status_code == 422
    assert refused.json() == {"code": "unknown_team", "detail": t("handoff.error.unknown_team")}
    history = handoff_of(services).history(cid)
    assert [(h.team, h.status) for h in history] == [("atendimento", "closed"), ("tributos", "waiting")]
    assert moved.json()["team"] == "tributos"


def test_a_transfer_refused_as_unknown_leaves_the_agent_serving(
    app: TestClient, office: Office, services: Services
) -> None:
    cid = served_by(app, office, services, office.agent_a)
    headers = as_staff(app, office, office.agent_a)

    app.post(f"/api/console/conversations/{cid}/transfer", json={"team": "tributo"}, headers=headers)

    current = handoff_of(services).current(cid)
    assert current is not None
    assert (current.team, current.status, current.agent) == ("atendimento", "with_agent", office.agent_a.subject)
    assert services.store.get_conversation(cid).state == "with_agent"  # type: ignore[union-attr]


def test_a_citizen_cannot_ask_for_a_team_that_does_not_exist(app: TestClient, office: Office) -> None:
    app.cookies.clear()
    cid = app.post("/api/conversations").json()["id"]

    refused = app.post(f"/api/conversations/{cid}/handoff", json={"team": "tributo"})
    default = app.post(f"/api/conversations/{cid}/handoff", json={"team": "atendimento"})

    assert (refused.status_code, refused.json()["code"]) == (422, "unknown_team")
    assert default.json()["team"] == "atendimento"


def test_an_administrator_sees_the_queue_without_summaries_and_no_conversation(
    app: TestClient, office: Office, services: Services
) -> None:
    accounts = rewire(services, clock=ManualClock(), settings=with_settings(services.settings, totp_required_roles=""))
    cid = waiting_for_general(services)
    app.cookies.clear()
    sign_in_directly(app, accounts, create_user(accounts, "root", "admin"))

    queue = app.get("/api/console/queue").json()
    read = app.get(f"/api/console/conversations/{cid}")
    followed = app.get("/api/console/events", params={"conversation_id": cid})

    assert [(item["conversation_id"], item["summary"]) for item in queue["waiting"]] == [(cid, None)]
    assert (read.status_code, read.json()["code"]) == (403, "no_access")
    assert followed.status_code == 403


def test_routing_never_gives_an_agent_a_conversation_of_another_team(
    app: TestClient, office: Office, services: Services
) -> None:
    from handoff.assignment import AssignmentRules

    handoff = handoff_of(services)
    handoff.config = replace(handoff.config, assignment=AssignmentRules(mode="least_busy"))
    app.post("/api/console/presence", json={"status": "online"}, headers=as_staff(app, office, office.agent_b))

    cid = waiting_for_general(services)

    current = handoff_of(services).current(cid)
    assert current is not None
    assert (current.status, current.agent) == ("waiting", None)
    app.post("/api/console/presence", json={"status": "online"}, headers=as_staff(app, office, office.agent_a))
    assert handoff_of(services).current(cid).agent == office.agent_a.subject  # type: ignore[union-attr]


def test_a_supervisor_cannot_send_an_agent_to_another_teams_queue_nor_to_an_unknown_one(
    app: TestClient, office: Office, services: Services
) -> None:
    headers = as_staff(app, office, office.supervisor_a)
    url = f"/api/console/agents/{office.agent_a.subject}/profile"

    foreign = app.put(url, json={"teams": ["atendimento", "tributos"], "capacity": 3}, headers=headers)
    unknown = app.put(url, json={"teams": ["tributo"], "capacity": 3}, headers=headers)
    own = app.put(url, json={"teams": ["atendimento"], "capacity": 4}, headers=headers)

    assert (foreign.status_code, foreign.json()["code"]) == (403, "other_team")
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_team")
    assert own.status_code == 200
    assert handoff_of(services).profile(office.agent_a.subject).capacity == 4
