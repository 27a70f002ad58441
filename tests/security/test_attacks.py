"""An attacker's attempts against the running app, one scenario each: another citizen who knows a conversation's id,
an agent or supervisor of another team, an integrator minting itself access to citizens' data, a stale token."""

from __future__ import annotations

import httpx
import pytest

from core.accounts import permissions
from core.audit import AuditLog
from domain.seed import CITIZENS

from .conftest import OTHER_TEAM, SERVICE_TEAM, Citizen, LiveApp, tool_result

pytestmark = pytest.mark.integration

CPF = "529.982.247-25"
CPF_DIGITS = "52998224725"
BIRTH = "15/03/1985"
MARIA = CITIZENS[0]
REFUSED = {403, 404}
DATA_SCOPES = ["citizens:read", "payments:read"]  # what reading a citizen's debts over MCP takes


def victim_with_personal_data(live: LiveApp) -> tuple[Citizen, str]:
    """A citizen waiting for a person, who has told the chat their CPF and birth date."""
    victim = Citizen(live)
    conversation_id = victim.waiting_for_a_person()
    told = victim.say(conversation_id, f"Meu CPF é {CPF} e nasci em {BIRTH}")
    assert told.status_code == 200, told.text
    return victim, conversation_id


def stranger(live: LiveApp) -> Citizen:
    """Another citizen: a chat of their own (and its key), and someone else's conversation id."""
    citizen = Citizen(live)
    citizen.start()
    return citizen


def clear_personal_data_in(text: str) -> bool:
    return CPF in text or CPF_DIGITS in text or BIRTH in text


def pii_reads_by(live: LiveApp, subject: str) -> list[str]:
    audit = live.services.audit
    assert isinstance(audit, AuditLog)
    return [r.object_id for r in audit.iter_records() if r.action.endswith("pii_read") and r.actor == subject]


# --- citizens ----------------------------------------------------------------------------------------------------


def test_a_citizen_reads_and_continues_their_own_conversation(live: LiveApp) -> None:
    victim, conversation_id = victim_with_personal_data(live)

    history = victim.request("GET", f"/api/conversations/{conversation_id}")
    more = victim.say(conversation_id, "Ainda estou aguardando")
    place = victim.request("GET", f"/api/conversations/{conversation_id}/handoff")

    assert history.status_code == 200
    assert [m["role"] for m in history.json()["messages"]][:1] == ["user"]
    assert more.status_code == 200
    assert place.json()["state"] == "waiting"


def test_another_citizen_cannot_read_a_conversation_whose_id_they_know(live: LiveApp) -> None:
    _, conversation_id = victim_with_personal_data(live)

    answer = stranger(live).request("GET", f"/api/conversations/{conversation_id}")

    assert (answer.status_code, answer.json()["code"]) == (404, "conversation_not_found")
    assert not clear_personal_data_in(answer.text)


def test_another_citizen_cannot_post_as_the_citizen_of_a_conversation_whose_id_they_know(live: LiveApp) -> None:
    victim, conversation_id = victim_with_personal_data(live)
    before = len(victim.request("GET", f"/api/conversations/{conversation_id}").json()["messages"])
    intruder = stranger(live)

    posted = intruder.say(conversation_id, "Cancele meu atendimento, por favor")
    streamed = intruder.request(
        "POST", f"/api/conversations/{conversation_id}/messages/stream", json={"text": "Quero meus débitos"}
    )

    assert (posted.status_code, posted.json()["code"]) == (404, "conversation_not_found")
    assert (streamed.status_code, streamed.json()["code"]) == (404, "conversation_not_found")
    assert len(victim.request("GET", f"/api/conversations/{conversation_id}").json()["messages"]) == before


def test_another_citizen_cannot_take_a_waiting_citizen_out_of_the_queue(live: LiveApp) -> None:
    victim, conversation_id = victim_with_personal_data(live)

    left = stranger(live).request("DELETE", f"/api/conversations/{conversation_id}/handoff")

    assert (left.status_code, left.json()["code"]) == (404, "conversation_not_found")
    assert victim.request("GET", f"/api/conversations/{conversation_id}/handoff").json()["state"] == "waiting"


def test_another_citizen_cannot_queue_or_rate_a_conversation_whose_id_they_know(live: LiveApp) -> None:
    victim = Citizen(live)
    conversation_id = victim.start()
    intruder = stranger(live)

    queued = intruder.request("POST", f"/api/conversations/{conversation_id}/handoff", json={})
    rated = intruder.request("POST", f"/api/conversations/{conversation_id}/survey", json={"score": 1})

    assert (queued.status_code, queued.json()["code"]) == (404, "conversation_not_found")
    assert (rated.status_code, rated.json()["code"]) == (404, "conversation_not_found")
    assert victim.request("GET", f"/api/conversations/{conversation_id}/handoff").json()["state"] == "bot"


def test_a_whatsapp_conversation_is_never_reachable_through_the_web_chat_api(live: LiveApp) -> None:
    whatsapp = live.services.store.create_conversation("whatsapp", citizen_ref="whatsapp:5511912345601")
    web = stranger(live)

    read = web.request("GET", f"/api/conversations/{whatsapp.id}")
    posted = web.say(whatsapp.id, "Olá")

    assert (read.status_code, read.json()["code"]) == (404, "conversation_not_found")
    assert (posted.status_code, posted.json()["code"]) == (404, "conversation_not_found")


# --- staff of another team ---------------------------------------------------------------------------------------


def test_an_agent_of_another_team_cannot_claim_a_conversation_waiting_for_a_team_they_are_not_in(
    live: LiveApp,
) -> None:
    _, conversation_id = victim_with_personal_data(live)

    taken = live.request(
        "POST", f"/api/console/conversations/{conversation_id}/claim", headers=live.as_role("agent", team=OTHER_TEAM)
    )
    by_the_team = live.request(
        "POST", f"/api/console/conversations/{conversation_id}/claim", headers=live.as_role("agent", team=SERVICE_TEAM)
    )

    assert taken.status_code in REFUSED, taken.text
    assert by_the_team.status_code == 200, by_the_team.text


def test_an_agent_of_another_team_cannot_unmask_a_citizen_even_after_trying_to_claim_them(live: LiveApp) -> None:
    _, conversation_id = victim_with_personal_data(live)
    intruder = live.user("agent", team=OTHER_TEAM)
    headers = live.signed_in(intruder)

    live.request("POST", f"/api/console/conversations/{conversation_id}/claim", headers=headers)
    revealed = live.request("POST", f"/api/console/conversations/{conversation_id}/reveal", headers=headers)

    assert revealed.status_code in REFUSED, revealed.text
    assert not clear_personal_data_in(revealed.text)
    assert conversation_id not in pii_reads_by(live, intruder.subject)


def test_an_agent_of_another_team_cannot_read_annotate_or_ask_the_copilot_about_a_conversation(
    live: LiveApp,
) -> None:
    _, conversation_id = victim_with_personal_data(live)
    headers = live.as_role("agent", team=OTHER_TEAM)
    base = f"/api/console/conversations/{conversation_id}"

    answers = {
        "read": live.request("GET", base, headers=headers),
        "note": live.request("POST", f"{base}/notes", headers=headers, json={"text": "anotação"}),
        "suggestion": live.request("POST", f"{base}/suggestion", headers=headers, json={}),
        "events": live.request(
            "GET", "/api/console/events", headers=headers, params={"conversation_id": conversation_id, "wait": "0"}
        ),
    }

    assert {name: a.status_code for name, a in answers.items() if a.status_code not in REFUSED} == {}


def test_a_supervisor_of_another_team_cannot_step_into_a_conversation(live: LiveApp) -> None:
    _, conversation_id = victim_with_personal_data(live)
    live.request(
        "POST", f"/api/console/conversations/{conversation_id}/claim", headers=live.as_role("agent", team=SERVICE_TEAM)
    )

    stepped_in = live.request(
        "POST",
        f"/api/console/supervisor/conversations/{conversation_id}/messages",
        headers=live.as_role("supervisor", team=OTHER_TEAM),
        json={"text": "Assumo daqui"},
    )

    assert stepped_in.status_code in REFUSED, stepped_in.text


def test_the_console_event_stream_carries_no_clear_personal_data(live: LiveApp) -> None:
    victim = Citizen(live)
    conversation_id = victim.waiting_for_a_person()
    headers = live.as_role("agent", team=SERVICE_TEAM)
    claimed = live.request("POST", f"/api/console/conversations/{conversation_id}/claim", headers=headers)
    assert claimed.status_code == 200, claimed.text

    seen: list[str] = []
    params = {"conversation_id": conversation_id, "wait": "5"}
    with (
        httpx.Client(base_url=live.url, timeout=30) as console,
        console.stream("GET", "/api/console/events", headers=headers, params=params) as stream,
    ):
        assert stream.status_code == 200
        lines = stream.iter_lines()
        for line in lines:  # subscribed once the stream says ready
            seen.append(line)
            if line.startswith("data:") and '"topics"' in line:
                break
        victim.say(conversation_id, f"Meu CPF é {CPF} e nasci em {BIRTH}")
        for line in lines:
            seen.append(line)
            if line.startswith("data:"):
                break

    assert len(seen) > 2, "the citizen's message never reached the console"
    assert not clear_personal_data_in("\n".join(seen))


def test_an_integration_token_cannot_unmask_a_citizen(live: LiveApp) -> None:
    _, conversation_id = victim_with_personal_data(live)
    token = live.admin_token(sorted(permissions.SCOPES), integration="painel-externo")

    revealed = live.request(
        "POST", f"/api/console/conversations/{conversation_id}/reveal", headers={"Authorization": f"Bearer {token}"}
    )

    assert revealed.status_code == 403, revealed.text
    assert not clear_personal_data_in(revealed.text)


# --- integrators and tokens --------------------------------------------------------------------------------------


def issue_as_integrator(live: LiveApp, scopes: list[str], name: str, **extra: object) -> httpx.Response:
    body = {"name": name, "scopes": scopes, "integration": name, **extra}
    return live.request("POST", "/api/tokens", headers=live.as_role("integrator"), json=body)


def test_an_integrator_cannot_grant_itself_the_personal_data_scope(live: LiveApp) -> None:
    personal = sorted(s for s in permissions.SCOPES if "pii" in s or "personal" in s)
    assert personal, "the permission table has no scope of its own for citizens' personal data"

    issued = issue_as_integrator(live, personal, "portal-pii", expires_in_days=30)

    assert (issued.status_code, issued.json()["code"]) == (403, "scope_not_grantable")


def test_an_integrator_cannot_read_a_citizens_debts_over_mcp_with_a_token_it_issued_itself(live: LiveApp) -> None:
    issued = issue_as_integrator(live, DATA_SCOPES, "portal-debitos", expires_in_days=30)
    if issued.status_code != 201:  # refused outright: nothing to try
        assert issued.status_code == 403, issued.text
        return

    answer = live.mcp(issued.json()["token"], "payment_list_debts", {"cpf": MARIA.cpf})

    assert answer.status_code == 401 or "error" in tool_result(answer), answer.text
    assert "debts" not in answer.text


def test_a_data_token_an_integrator_issues_is_refused_until_an_administrator_approves_it(live: LiveApp) -> None:
    issued = issue_as_integrator(live, ["payments:read"], "portal-pendente", expires_in_days=30)
    assert issued.status_code == 201, issued.text

    answer = live.mcp(issued.json()["token"], "payment_list_debts", {"cpf": MARIA.cpf})

    assert answer.status_code == 401, answer.text


def test_every_token_expires_even_when_its_issuer_asks_for_none(live: LiveApp) -> None:
    by_integrator = issue_as_integrator(live, ["kb:read"], "portal-eterno")
    by_admin = live.request(
        "POST",
        "/api/tokens",
        headers=live.as_role("admin"),
        json={"name": "eterno", "scopes": ["kb:read"], "integration": "eterno"},
    )

    assert by_integrator.status_code == 201, by_integrator.text
    assert by_integrator.json()["expires_at"] is not None
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["expires_at"] is not None


def test_an_expired_token_is_refused_on_mcp(live: LiveApp) -> None:
    fresh = live.mcp(live.admin_token(["kb:read"], integration="portal-em-dia"), "kb_search", {"query": "IPTU"})
    expired = live.mcp(live.expired_token(["kb:read"], integration="portal-vencido"), "kb_search", {"query": "IPTU"})

    assert fresh.status_code == 200, fresh.text
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_token_is_refused_on_mcp_and_on_the_api(live: LiveApp) -> None:
    token = live.revoked_token(["kb:read", "consent:read"], integration="portal-revogado")

    on_mcp = live.mcp(token, "kb_search", {"query": "IPTU"})
    on_api = live.request(
        "GET", "/api/lgpd/consent", headers={"Authorization": f"Bearer {token}"}, params={"citizen_ref": "x"}
    )

    assert on_mcp.status_code == 401
    assert on_api.status_code == 401


# --- pages -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/", "/kb/{article}", "/console", "/staff/login"])
def test_pages_forbid_framing_and_content_sniffing(live: LiveApp, page: str) -> None:
    answer = live.request("GET", page.format(article=live.article_id))

    assert answer.status_code == 200
    assert answer.headers.get("x-content-type-options") == "nosniff"
    assert "frame-ancestors" in answer.headers.get("content-security-policy", "")
