"""Every MCP tool through the SDK's in-memory client, as the assistant calls them (conversation id in `_meta`)."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from sqlalchemy import select

from core.audit import MemoryAuditSink
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from core.models import Conversation, Event
from core.principals import Principal
from core.settings import Settings
from domain.boleto import barcode_from_line
from domain.models import Debt
from domain.pix import decode_br_code
from domain.seed import CITIZENS, seed
from domain.wiring import Domain
from tools_mcp.server import build_mcp_server
from tools_mcp.testing import DEFAULT_NOW, MovableClock, ToolOutcome, call, make_test_domain

pytestmark = pytest.mark.anyio

CONTRACT_TOOLS = {
    "citizen_lookup",
    "citizen_verify",
    "protocol_open",
    "protocol_status",
    "protocol_add_comment",
    "protocol_list",
    "payment_list_debts",
    "payment_second_copy",
    "appointment_slots",
    "appointment_book",
    "appointment_cancel",
    "handoff_to_human",
}
MARIA, JOAO, ANA = CITIZENS[0], CITIZENS[1], CITIZENS[2]
STAFF_SCOPES = frozenset(
    {
        "citizens:read",
        "citizens:pii",
        "protocols:read",
        "protocols:write",
        "payments:read",
        "appointments:read",
        "appointments:write",
        "kb:read",
    }
)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated and seeded once; each test gets its own copy."""
    root = tmp_path_factory.mktemp("tools-template")
    url = f"sqlite:///{(root / 'atende.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    seed(make_test_domain(make_session_factory(engine), _settings(root)))
    engine.dispose()
    return root / "atende.db"


def _settings(root: Path) -> Settings:
    return Settings(environment="test", data_dir=root, knowledge_dir=Path("knowledge").resolve(), _env_file=None)  # type: ignore[call-arg]


class World:
    def __init__(self, domain: Domain, audit: MemoryAuditSink, clock: MovableClock) -> None:
        self.domain, self.audit, self.clock = domain, audit, clock

    def client(self, principal: Principal | None = None) -> Client:
        server = build_mcp_server(self.domain, **({"local_principal": principal} if principal else {}))
        return Client(server)

    def citizen_id(self, cpf: str) -> int:
        citizen = self.domain.citizens.by_cpf(cpf)
        assert citizen is not None
        return citizen.id


@pytest.fixture
def world(template_db: Path, tmp_path: Path) -> Iterator[World]:
    shutil.copy(template_db, tmp_path / "atende.db")
    # The seeded rows are encrypted with the template directory's generated keys (test mode keeps them there).
    shutil.copy(template_db.parent / "keys.env", tmp_path / "keys.env")
    engine = make_engine(f"sqlite:///{(tmp_path / 'atende.db').as_posix()}")
    audit, clock = MemoryAuditSink(), MovableClock()
    yield World(
        make_test_domain(make_session_factory(engine), _settings(tmp_path), audit=audit, clock=clock), audit, clock
    )
    engine.dispose()


@pytest.fixture
async def client(world: World) -> AsyncIterator[Client]:
    async with world.client() as c:
        yield c


async def verify(client: Client, conversation: str, who: Any = MARIA) -> ToolOutcome:
    outcome = await call(
        client,
        "citizen_verify",
        {"cpf": who.cpf, "birth_date": who.birth_date.strftime("%d/%m/%Y")},
        conversation=conversation,
    )
    assert outcome.ok, outcome.data
    assert outcome.data["verified"], outcome.data
    return outcome


# Listing


async def test_every_contract_tool_is_listed_with_annotations_and_an_output_schema(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= CONTRACT_TOOLS
    for name in CONTRACT_TOOLS:
        tool = tools[name]
        assert tool.description, name
        assert tool.output_schema, name
        assert tool.annotations is not None, name
    assert tools["citizen_lookup"].annotations.read_only_hint is True
    assert tools["payment_second_copy"].annotations.idempotent_hint is True
    assert tools["citizen_verify"].annotations.read_only_hint is False
    assert tools["citizen_verify"].annotations.idempotent_hint is True
    assert tools["appointment_cancel"].annotations.destructive_hint is True
    assert tools["protocol_open"].annotations.idempotent_hint is False
    assert set(tools["citizen_verify"].input_schema["required"]) == {"cpf", "birth_date"}
    # Field descriptions speak the citizen's formats, so the model passes what people type.
    assert "DD/MM/AAAA" in tools["citizen_verify"].input_schema["properties"]["birth_date"]["description"]


# Verification


async def test_verifying_with_cpf_and_birth_date_verifies_the_conversation_and_links_it(
    world: World, client: Client
) -> None:
    with world.domain.sessions.begin() as session:
        session.add(Conversation(id="c1", channel="web"))
    outcome = await verify(client, "c1")
    assert outcome.data == {"verified": True, "first_name": "Maria", "attempts_left": 5}
    with world.domain.sessions() as session:
        conversation = session.get(Conversation, "c1")
        assert conversation is not None
        assert conversation.citizen_ref == f"citizen:{world.citizen_id(MARIA.cpf)}"
    assert world.audit.events[-1].action == "citizen.verify"
    assert world.audit.events[-1].details["outcome"] == "verified"


async def test_a_wrong_birth_date_does_not_verify_and_says_how_many_attempts_are_left(client: Client) -> None:
    wrong = await call(client, "citizen_verify", {"cpf": MARIA.cpf, "birth_date": "01/01/2000"}, conversation="c1")
    unknown = await call(
        client, "citizen_verify", {"cpf": "529.982.247-25", "birth_date": "01/01/2000"}, conversation="c1"
    )
    assert wrong.data == {"verified": False, "first_name": None, "attempts_left": 4}
    # An unregistered CPF reads exactly like a wrong date: nothing tells whether the CPF exists.
    assert unknown.data == {"verified": False, "first_name": None, "attempts_left": 3}
    still = await call(client, "payment_list_debts", conversation="c1")
    assert still.error == "not_verified"


async def test_verification_attempts_are_rate_limited_per_conversation_and_every_one_is_audited(
    world: World, client: Client
) -> None:
    for _ in range(5):
        await call(client, "citizen_verify", {"cpf": MARIA.cpf, "birth_date": "01/01/2000"}, conversation="c1")
    blocked = await call(
        client, "citizen_verify", {"cpf": MARIA.cpf, "birth_date": MARIA.birth_date.isoformat()}, conversation="c1"
    )
    assert blocked.error == "rate_limited"
    assert "tentativas" in blocked.data["message"]
    outcomes = [e.details["outcome"] for e in world.audit.events if e.action == "citizen.verify"]
    assert outcomes == ["mismatch"] * 5 + ["rate_limited"]
    assert all(MARIA.cpf not in str(e.details) for e in world.audit.events)


async def test_verification_attempts_are_rate_limited_per_cpf_across_conversations(client: Client) -> None:
    for n in range(5):
        await call(client, "citizen_verify", {"cpf": MARIA.cpf, "birth_date": "01/01/2000"}, conversation=f"c{n}")
    blocked = await call(
        client, "citizen_verify", {"cpf": MARIA.cpf, "birth_date": MARIA.birth_date.isoformat()}, conversation="fresh"
    )
    assert blocked.error == "rate_limited"
    other = await verify(client, "fresh", JOAO)
    assert other.data["first_name"] == "João"


async def test_successful_verifications_do_not_count_towards_the_limit_only_failed_guesses_do(client: Client) -> None:
    for n in range(8):
        await verify(client, f"c{n}")
    for _ in range(4):
        await call(client, "citizen_verify", {"cpf": MARIA.cpf, "birth_date": "01/01/2000"}, conversation="c9")
    await verify(client, "c9")  # four misses and a success: still within the five attempts
    await call(client, "citizen_verify", {"cpf": MARIA.cpf, "birth_date": "01/01/2000"}, conversation="c10")
    blocked = await call(
        client, "citizen_verify", {"cpf": MARIA.cpf, "birth_date": MARIA.birth_date.isoformat()}, conversation="c11"
    )
    assert blocked.error == "rate_limited"  # the fifth failed guess on this CPF closed the window


async def test_an_invalid_cpf_or_date_is_refused_with_a_clear_code(client: Client) -> None:
    bad_cpf = await call(
        client, "citizen_verify", {"cpf": "123.456.789-00", "birth_date": "15/03/1985"}, conversation="c1"
    )
    bad_date = await call(client, "citizen_verify", {"cpf": MARIA.cpf, "birth_date": "32/13/1985"}, conversation="c1")
    assert bad_cpf.error == "invalid_cpf"
    assert bad_date.error == "invalid_argument"
    assert "data de nascimento" in bad_date.data["message"]


async def test_verification_without_a_conversation_is_an_invalid_argument(client: Client) -> None:
    outcome = await call(client, "citizen_verify", {"cpf": MARIA.cpf, "birth_date": "15/03/1985"})
    assert outcome.error == "invalid_argument"


async def test_a_verification_expires_after_its_time_to_live(world: World, client: Client) -> None:
    await verify(client, "c1")
    assert (await call(client, "citizen_lookup", conversation="c1")).ok
    world.clock.current = DEFAULT_NOW + timedelta(minutes=61)
    assert (await call(client, "citizen_lookup", conversation="c1")).error == "not_verified"


async def test_citizen_lookup_shows_the_verified_citizen_masked(world: World, client: Client) -> None:
    await verify(client, "c1")
    outcome = await call(client, "citizen_lookup", conversation="c1")
    assert outcome.data == {
        "citizen_id": str(world.citizen_id(MARIA.cpf)),
        "name": MARIA.name,
        "cpf_masked": f"***.{MARIA.cpf[3:6]}.{MARIA.cpf[6:9]}-**",
        "birth_date_masked": "**/**/1985",
        "phone_masked": "(**) *****-5601",
        "email_masked": "m***@example.com",
        "verified": True,
    }
    same = await call(client, "citizen_lookup", {"cpf": MARIA.cpf}, conversation="c1")
    assert same.data == outcome.data
    assert world.audit.events[-1].action == "citizen.read"


async def test_every_read_of_a_citizens_data_through_the_tools_is_audited_under_that_citizen(
    world: World, client: Client
) -> None:
    await verify(client, "c1")
    await call(client, "citizen_lookup", conversation="c1")
    debts = await call(client, "payment_list_debts", conversation="c1")
    unpaid = next(d for d in debts.data["debts"] if d["status"] != "pago")
    copy = await call(client, "payment_second_copy", {"debt_id": unpaid["debt_id"]}, conversation="c1")
    assert copy.ok, copy.data
    await call(client, "protocol_list", conversation="c1")

    maria = f"citizen:{world.citizen_id(MARIA.cpf)}"
    reads = [e.action for e in world.audit.events if e.subject == maria]
    assert reads == ["citizen.read", "debt.list", "debt.second_copy", "protocol.list"]


# Authorization: every personal-data tool


async def _ids_of_joao(world: World) -> dict[str, str]:
    """Objects that belong to João (never verified in these tests)."""
    joao = world.citizen_id(JOAO.cpf)
    with world.domain.sessions() as session:
        debt = session.scalar(select(Debt.id).where(Debt.citizen_id == joao))
    protocol = world.domain.protocols.list_for(joao)[0][0].number
    slots = world.domain.appointments.free_slots("emissao_rg", None, None)
    appointment = world.domain.appointments.book(joao, slots[0]["slot_id"])["appointment_id"]
    return {"debt_id": str(debt), "number": protocol, "appointment_id": appointment, "slot_id": slots[1]["slot_id"]}


def _personal_calls(ids: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("citizen_lookup", {}),
        ("protocol_open", {"service": "tapa_buraco", "description": "Buraco"}),
        ("protocol_list", {}),
        ("protocol_add_comment", {"number": ids["number"], "text": "Alguma novidade?"}),
        ("payment_list_debts", {}),
        ("payment_second_copy", {"debt_id": ids["debt_id"]}),
        ("appointment_book", {"slot_id": ids["slot_id"]}),
        ("appointment_cancel", {"appointment_id": ids["appointment_id"]}),
        ("appointment_reschedule", {"appointment_id": ids["appointment_id"], "slot_id": ids["slot_id"]}),
        ("appointment_list", {}),
    ]


async def test_every_personal_data_tool_refuses_an_unverified_conversation(world: World, client: Client) -> None:
    ids = await _ids_of_joao(world)
    for tool, arguments in _personal_calls(ids):
        outcome = await call(client, tool, arguments, conversation="stranger")
        assert outcome.error == "not_verified", (tool, outcome.data)
        assert "CPF" in outcome.data["message"]
    assert {e.details["reason"] for e in world.audit.events if e.action == "access.denied"} == {"not_verified"}


async def test_every_personal_data_tool_refuses_another_citizens_cpf_or_objects(world: World, client: Client) -> None:
    ids = await _ids_of_joao(world)
    await verify(client, "c1")  # Maria
    for tool, arguments in _personal_calls(ids):
        if tool in ("protocol_add_comment", "payment_second_copy", "appointment_cancel", "appointment_reschedule"):
            outcome = await call(client, tool, arguments, conversation="c1")
        else:
            outcome = await call(client, tool, {**arguments, "cpf": JOAO.cpf}, conversation="c1")
        assert outcome.error == "identity_mismatch", (tool, outcome.data)
        assert JOAO.name not in str(outcome.data)
    # Nothing was changed in João's name.
    assert world.domain.appointments.list_for(world.citizen_id(JOAO.cpf))[0]["status"] == "agendado"


async def test_a_caller_without_any_scope_is_forbidden(world: World) -> None:
    async with world.client(Principal(kind="integration", subject="integration:empty")) as c:
        outcome = await call(c, "appointment_slots", {"service": "vacinacao"}, conversation="c1")
    assert outcome.error == "forbidden"


# Protocols


async def test_protocols_get_sequential_numbers_of_the_year_and_an_sla_that_skips_the_holiday(client: Client) -> None:
    await verify(client, "c1")
    first = await call(
        client,
        "protocol_open",
        {"service": "Iluminação pública", "description": "Poste apagado", "address": "Rua A, 1"},
        conversation="c1",
    )
    second = await call(client, "protocol_open", {"service": "buraco", "description": "Buraco"}, conversation="c1")
    assert first.ok
    assert second.ok
    year, seq = first.data["number"].split("-")
    assert year == "2026"
    assert len(seq) == 6
    assert second.data["number"] == f"2026-{int(seq) + 1:06d}"
    # Opened Wednesday 2026-11-18 with a 5-business-day SLA; Friday the 20th is a national holiday.
    assert re.fullmatch(re.escape(first.data["number"]) + r"-[2-9A-HJKMNP-TV-Z]{4}", first.data["reference"])
    assert first.data | {"number": "x", "reference": "x"} == {
        "number": "x",
        "reference": "x",
        "status": "aberto",
        "service": "iluminacao_publica",
        "service_name": "Iluminação pública",
        "team": "obras",
        "due_date": "2026-11-26",
        "anonymous": False,
    }
    assert second.data["team"] == "obras"
    assert second.data["service"] == "tapa_buraco"


async def test_an_anonymous_protocol_needs_no_verification_and_keeps_no_owner(world: World, client: Client) -> None:
    opened = await call(
        client,
        "protocol_open",
        {"service": "ouvidoria", "description": "Denúncia de obra irregular", "anonymous": True},
        conversation="anon",
    )
    assert opened.ok
    assert opened.data["anonymous"] is True
    assert world.domain.protocols.owner_of(opened.data["number"]) is None
    status = await call(client, "protocol_status", {"number": opened.data["reference"]}, conversation="later")
    assert status.ok
    assert status.data["description"] is None


async def test_an_address_longer_than_300_characters_is_refused_in_portuguese(world: World, client: Client) -> None:
    await verify(client, "c1")
    args = {"service": "tapa_buraco", "description": "Buraco na rua"}
    refused = await call(
        client, "protocol_open", args | {"address": "Rua A, 1 " + "perto da praça " * 30}, conversation="c1"
    )
    accepted = await call(
        client, "protocol_open", args | {"address": "  Rua A, 1 " + "x" * 290 + "  "}, conversation="c1"
    )
    assert refused.error == "invalid_argument"
    assert "endereço é longo demais (máximo de 300 caracteres)" in refused.data["message"]
    assert accepted.ok


async def test_an_unknown_service_lists_the_ones_that_exist(client: Client) -> None:
    await verify(client, "c1")
    outcome = await call(
        client, "protocol_open", {"service": "conserto de foguete", "description": "x"}, conversation="c1"
    )
    assert outcome.error == "invalid_argument"
    assert "tapa_buraco" in outcome.data["message"]


async def test_protocol_status_shows_details_to_the_owner_and_only_the_status_to_anyone_else(
    world: World, client: Client
) -> None:
    await verify(client, "c1")
    number = world.domain.protocols.list_for(world.citizen_id(MARIA.cpf), "em_analise")[0][0].number
    code = world.domain.protocols.reissue_access_code(number)
    own = await call(client, "protocol_status", {"number": number}, conversation="c1")
    other = await call(
        client, "protocol_status", {"number": f"{number.replace('-0000', '0000')}-{code.lower()}"}, conversation="x"
    )
    assert own.ok
    assert other.ok
    assert own.data["description"].startswith("Buraco grande")
    assert [h["status"] for h in own.data["history"]] == ["aberto", "em_analise"]
    assert own.data["history"][1]["note"]
    assert other.data["status"] == own.data["status"] == "em_analise"
    assert other.data["description"] is None
    assert other.data["comments"] is None
    assert other.data["address"] is None
    assert all(h["note"] is None for h in other.data["history"])


async def test_a_protocol_number_alone_or_with_a_wrong_code_reads_nothing_and_looks_like_an_unknown_number(
    world: World, client: Client
) -> None:
    number = world.domain.protocols.list_for(world.citizen_id(MARIA.cpf), "em_analise")[0][0].number
    code = world.domain.protocols.reissue_access_code(number)
    wrong = "".join("2" if ch != "2" else "3" for ch in code)

    bare = await call(client, "protocol_status", {"number": number}, conversation="stranger")
    guessed = await call(client, "protocol_status", {"number": f"{number}-{wrong}"}, conversation="stranger")
    unknown = await call(client, "protocol_status", {"number": "2026-999999-K7Q9"}, conversation="stranger")

    assert bare.error == guessed.error == unknown.error == "not_found"
    assert bare.data["message"] == guessed.data["message"] == unknown.data["message"].replace("2026-999999", number)
    assert "código de acesso" in bare.data["message"]
    assert "history" not in bare.data


async def test_staff_read_any_protocol_by_its_number_alone(world: World) -> None:
    number = world.domain.protocols.list_for(world.citizen_id(MARIA.cpf), "em_analise")[0][0].number
    async with world.client(Principal(kind="staff", subject="user:7", scopes=STAFF_SCOPES)) as staff:
        status = await call(staff, "protocol_status", {"number": number})
    assert status.ok
    assert status.data["description"].startswith("Buraco grande")


async def test_an_unknown_or_malformed_protocol_number_is_reported(client: Client) -> None:
    assert (await call(client, "protocol_status", {"number": "2026-999999"}, conversation="c1")).error == "not_found"
    assert (await call(client, "protocol_status", {"number": "abc"}, conversation="c1")).error == "invalid_argument"


async def test_the_owner_comments_on_an_open_protocol_but_not_on_a_closed_one(world: World, client: Client) -> None:
    await verify(client, "c1")
    maria = world.citizen_id(MARIA.cpf)
    open_number = world.domain.protocols.list_for(maria, "aberto")[0][0].number
    closed_number = world.domain.protocols.list_for(maria, "concluido")[0][0].number
    added = await call(
        client, "protocol_add_comment", {"number": open_number, "text": "Continua apagado."}, conversation="c1"
    )
    assert added.ok
    assert added.data["number"] == open_number
    status = await call(client, "protocol_status", {"number": open_number}, conversation="c1")
    assert status.data["comments"][-1] == {
        "comment_id": added.data["comment_id"],
        "author": "citizen",
        "text": "Continua apagado.",
        "created_at": added.data["created_at"],
    }
    closed = await call(
        client, "protocol_add_comment", {"number": closed_number, "text": "Obrigada"}, conversation="c1"
    )
    assert closed.error == "conflict"


async def test_protocol_list_returns_only_the_citizens_own_protocols_filtered_by_status(client: Client) -> None:
    await verify(client, "c1")
    everything = await call(client, "protocol_list", conversation="c1")
    done = await call(client, "protocol_list", {"status": "concluido"}, conversation="c1")
    assert {p["status"] for p in everything.data["protocols"]} == {"aberto", "em_analise", "concluido"}
    assert [p["service"] for p in done.data["protocols"]] == ["coleta_lixo"]


async def test_staff_move_a_protocol_through_its_workflow_and_an_invalid_step_is_a_conflict(world: World) -> None:
    staff = Principal(kind="staff", subject="user:7", scopes=STAFF_SCOPES)
    number = world.domain.protocols.list_for(world.citizen_id(MARIA.cpf), "aberto")[0][0].number
    async with world.client(staff) as c:
        skipped = await call(c, "protocol_update_status", {"number": number, "status": "concluido"})
        moved = await call(c, "protocol_update_status", {"number": number, "status": "em_analise", "note": "Vistoria."})
        listed = await call(c, "protocol_list", {"cpf": MARIA.cpf})
    assert skipped.error == "conflict"
    assert moved.ok
    assert moved.data["status"] == "em_analise"
    assert moved.data["history"][-1]["note"] == "Vistoria."
    assert number in {p["number"] for p in listed.data["protocols"]}
    async with world.client() as assistant:
        refused = await call(
            assistant, "protocol_update_status", {"number": number, "status": "encaminhado"}, conversation="c1"
        )
    assert refused.error == "forbidden"


async def test_staff_scopes_without_citizens_pii_reach_no_named_citizens_records(world: World) -> None:
    domain_only = Principal(kind="integration", subject="integration:divida", scopes=STAFF_SCOPES - {"citizens:pii"})
    maria = world.citizen_id(MARIA.cpf)
    number = world.domain.protocols.list_for(maria, None)[0][0].number
    async with world.client(domain_only) as c:
        refused = {
            name: (await call(c, name, arguments)).error
            for name, arguments in [
                ("citizen_lookup", {"cpf": MARIA.cpf}),
                ("payment_list_debts", {"cpf": MARIA.cpf}),
                ("protocol_list", {"cpf": MARIA.cpf}),
                ("appointment_list", {"cpf": MARIA.cpf}),
            ]
        }
        status = await call(c, "protocol_status", {"number": number})
        slots = await call(c, "appointment_slots", {"service": "vacinacao"})

    assert set(refused.values()) == {"forbidden"}
    assert status.ok
    assert status.data["description"] is None  # the status, not the citizen's own words
    assert slots.ok
    denied = [e for e in world.audit.events if e.action == "access.denied"]
    assert {e.details["reason"] for e in denied} == {"pii_scope_required"}


# Payments


async def test_debts_carry_open_overdue_and_paid_statuses_and_filter_by_status(client: Client) -> None:
    await verify(client, "c1")
    debts = (await call(client, "payment_list_debts", conversation="c1")).data["debts"]
    overdue = (await call(client, "payment_list_debts", {"status": "vencido"}, conversation="c1")).data["debts"]
    assert {d["status"] for d in debts} == {"aberto", "vencido", "pago"}
    assert {d["kind"] for d in debts} == {"IPTU", "taxa", "multa"}
    assert overdue
    assert all(d["status"] == "vencido" and d["due_date"] < "2026-11-18" for d in overdue)
    assert all(len(d["amount"].split(".")[1]) == 2 for d in debts)


async def test_a_second_copy_of_an_overdue_debt_is_due_today_with_valid_pix_and_boleto(client: Client) -> None:
    await verify(client, "c1")
    overdue = (await call(client, "payment_list_debts", {"status": "vencido"}, conversation="c1")).data["debts"][0]
    copy = await call(client, "payment_second_copy", {"debt_id": overdue["debt_id"]}, conversation="c1")
    assert copy.ok
    assert copy.data["amount"] == overdue["amount"]
    assert copy.data["due_date"] == "2026-11-18"
    assert decode_br_code(copy.data["pix_copia_e_cola"])["54"] == overdue["amount"]
    code = barcode_from_line(copy.data["boleto_linha_digitavel"])
    assert int(code[9:19]) == round(float(overdue["amount"]) * 100)
    again = await call(client, "payment_second_copy", {"debt_id": int(overdue["debt_id"])}, conversation="c1")
    assert again.data == copy.data


async def test_a_paid_debt_has_no_second_copy_and_an_unknown_one_is_not_found(client: Client) -> None:
    await verify(client, "c1")
    paid = (await call(client, "payment_list_debts", {"status": "pago"}, conversation="c1")).data["debts"][0]
    assert (
        await call(client, "payment_second_copy", {"debt_id": paid["debt_id"]}, conversation="c1")
    ).error == "conflict"
    assert (await call(client, "payment_second_copy", {"debt_id": "999999"}, conversation="c1")).error == "not_found"
    assert (
        await call(client, "payment_second_copy", {"debt_id": "abc"}, conversation="c1")
    ).error == "invalid_argument"


async def test_a_citizen_without_debts_gets_an_empty_list(world: World, client: Client) -> None:
    await verify(client, "c1", ANA)  # every third demo citizen owes nothing
    assert (await call(client, "payment_list_debts", conversation="c1")).data == {"debts": []}
    ana = world.domain.citizens.get(world.citizen_id(ANA.cpf))
    assert ana is not None
    assert ana.name == ANA.name


# Appointments


async def test_booking_a_slot_takes_it_cancelling_frees_it_and_rescheduling_moves_it(client: Client) -> None:
    await verify(client, "c1")
    slots = (await call(client, "appointment_slots", {"service": "RG"}, conversation="c1")).data["slots"]
    assert slots
    assert all(s["service"] == "emissao_rg" and s["starts_at"] > "2026-11-18T10:00" for s in slots)
    booked = await call(client, "appointment_book", {"slot_id": slots[0]["slot_id"]}, conversation="c1")
    assert booked.ok
    assert booked.data["starts_at"] == slots[0]["starts_at"]
    after = (await call(client, "appointment_slots", {"service": "emissao_rg"}, conversation="c1")).data["slots"]
    assert slots[0]["slot_id"] not in {s["slot_id"] for s in after}

    moved = await call(
        client,
        "appointment_reschedule",
        {"appointment_id": booked.data["appointment_id"], "slot_id": slots[1]["slot_id"]},
        conversation="c1",
    )
    assert moved.ok
    assert moved.data["previous_appointment_id"] == booked.data["appointment_id"]
    freed = (await call(client, "appointment_slots", {"service": "emissao_rg"}, conversation="c1")).data["slots"]
    assert slots[0]["slot_id"] in {s["slot_id"] for s in freed}

    cancelled = await call(
        client, "appointment_cancel", {"appointment_id": moved.data["appointment_id"]}, conversation="c1"
    )
    assert cancelled.data == {"appointment_id": moved.data["appointment_id"], "status": "cancelado"}
    twice = await call(
        client, "appointment_cancel", {"appointment_id": moved.data["appointment_id"]}, conversation="c1"
    )
    assert twice.error == "conflict"
    mine = (await call(client, "appointment_list", conversation="c1")).data["appointments"]
    assert [a["status"] for a in mine] == ["cancelado", "cancelado"]


async def test_a_taken_slot_is_refused_to_the_next_citizen(client: Client) -> None:
    await verify(client, "c1", MARIA)
    await verify(client, "c2", JOAO)
    slot = (await call(client, "appointment_slots", {"service": "atendimento_iptu"}, conversation="c1")).data["slots"][
        0
    ]
    assert (await call(client, "appointment_book", {"slot_id": slot["slot_id"]}, conversation="c1")).ok
    refused = await call(client, "appointment_book", {"slot_id": slot["slot_id"]}, conversation="c2")
    assert refused.error == "conflict"
    assert "ocupado" in refused.data["message"]


async def test_slots_are_filtered_by_date_and_a_reversed_range_is_refused(client: Client) -> None:
    only = await call(
        client,
        "appointment_slots",
        {"service": "vacinacao", "date_from": "23/11/2026", "date_to": "2026-11-23"},
        conversation="c1",
    )
    assert only.data["slots"]
    assert all(s["starts_at"].startswith("2026-11-23") for s in only.data["slots"])
    reversed_range = await call(
        client,
        "appointment_slots",
        {"service": "vacinacao", "date_from": "30/11/2026", "date_to": "23/11/2026"},
        conversation="c1",
    )
    assert reversed_range.error == "invalid_argument"


# Hand-off, resources, failures


async def test_handoff_records_the_request_and_falls_back_to_the_general_team(world: World, client: Client) -> None:
    with world.domain.sessions.begin() as session:
        session.add(Conversation(id="c1", channel="web"))
    named = await call(
        client, "handoff_to_human", {"reason": "Quer contestar o IPTU", "team": "Tributos"}, conversation="c1"
    )
    unknown = await call(
        client, "handoff_to_human", {"reason": "Outro assunto", "team": "financeiro"}, conversation="c1"
    )
    assert named.data == {"handoff": True, "team": "tributos", "queue_position": None}
    assert unknown.data["team"] == "atendimento"
    with world.domain.sessions() as session:
        events = session.scalars(select(Event).where(Event.conversation_id == "c1")).all()
    assert [(e.kind, e.payload["team"]) for e in events] == [
        ("handoff_requested", "tributos"),
        ("handoff_requested", "atendimento"),
    ]
    assert (await call(client, "handoff_to_human", {"reason": "x"})).error == "invalid_argument"


async def test_public_articles_are_resources_and_internal_ones_only_reach_staff_with_kb_read(world: World) -> None:
    async with world.client() as assistant:
        public = await assistant.read_resource("kb://articles/iptu-segunda-via")
        with pytest.raises(MCPError):
            await assistant.read_resource("kb://articles/interno-triagem-protocolos")
        listing = await assistant.read_resource("kb://articles")
    assert "IPTU" in public.contents[0].text  # type: ignore[union-attr]
    assert "interno-triagem-protocolos" not in listing.contents[0].text  # type: ignore[union-attr]
    async with world.client(Principal(kind="staff", subject="user:7", scopes=STAFF_SCOPES)) as staff:
        internal = await staff.read_resource("kb://articles/interno-triagem-protocolos")
    assert internal.contents[0].text  # type: ignore[union-attr]


async def test_a_database_failure_is_reported_as_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{(tmp_path / 'empty.db').as_posix()}")  # never migrated
    domain = make_test_domain(make_session_factory(engine), _settings(tmp_path))
    async with Client(build_mcp_server(domain)) as c:
        outcome = await call(c, "appointment_slots", {"service": "vacinacao"}, conversation="c1")
    engine.dispose()
    assert outcome.error == "unavailable"
    assert "indisponível" in outcome.data["message"]
