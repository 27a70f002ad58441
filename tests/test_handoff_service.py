"""Conversation states and the handoff lifecycle over a real database: queue, claim, reply, transfer, close, survey,
abandonment, restart and two app processes sharing one queue."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from handoff_support import Stack, stack_fixture  # noqa: F401  (the parametrised fixture)

from assistant.agent_aids.summary import summarize
from atende.lgpd.sources import anonymise_conversations
from channels.testing import ScriptedDelivery
from core.clock import Clock
from core.i18n import t
from core.models import Conversation
from domain.contacts import ContactProtocols
from domain.models import Citizen, VerifiedConversation
from domain.protocols import ProtocolBook
from handoff.context import HandoffConfig
from handoff.delivery import Outgoing, Survey
from handoff.hours import BusinessHours
from handoff.live import InMemoryLiveState
from handoff.records import QUEUE_TOPIC, HandoffError, conversation_topic
from handoff.service import HandoffService
from handoff.triggers import handoff_reason


@pytest.fixture
def handoff(stack: Stack) -> HandoffService:
    return stack.service()


def protocol_book(stack: Stack) -> ProtocolBook:
    return ProtocolBook(stack.sessions, Clock(ZoneInfo("America/Sao_Paulo"), stack.clock))


@pytest.fixture
def numbered(stack: Stack) -> HandoffService:
    """The service as build_services wires it: each closed service gets a protocol from the protocol book."""
    clock = Clock(ZoneInfo("America/Sao_Paulo"), stack.clock)
    return stack.service(protocols=ContactProtocols(protocol_book(stack), clock))


def waiting_conversation(handoff: HandoffService, team: str | None = None) -> str:
    cid = handoff.store.create_conversation("web").id
    handoff.store.add_message(cid, "user", "Como emito a segunda via do IPTU?")
    handoff.request(cid, reason="citizen_request", source="citizen_request", team=team)
    return cid


# --- queueing ----------------------------------------------------------------------------------------------


def test_asking_for_a_person_moves_the_conversation_to_waiting_at_the_end_of_the_queue(handoff: HandoffService) -> None:
    first = waiting_conversation(handoff)
    cid = handoff.store.create_conversation("web").id

    ticket = handoff.request(cid, reason="citizen_request", source="citizen_request")

    assert (ticket.state, ticket.team, ticket.position) == ("waiting", "atendimento", 2)
    assert handoff.ticket(first).position == 1
    assert [e.kind for e in handoff.store.list_events(cid)] == ["handoff_queued"]


def test_asking_again_while_waiting_keeps_the_place_and_records_nothing_new(handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    waiting_conversation(handoff)

    ticket = handoff.request(cid, reason="citizen_request", source="citizen_request")

    assert ticket.position == 1
    assert len(handoff.history(cid)) == 1


def test_the_mcp_tool_queue_answers_with_the_place_in_the_named_teams_queue(handoff: HandoffService) -> None:
    cid = handoff.store.create_conversation("web").id

    position = handoff.enqueue(cid, team="tributos", reason="dívida ativa")

    assert position == 1
    assert handoff.ticket(cid).team == "tributos"


def test_a_waiting_citizens_message_is_stored_and_pushed_to_the_console(stack: Stack, handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    watcher = stack.live.subscribe(conversation_topic(cid))
    try:
        handoff.citizen_message(cid, "Ainda estou aguardando")
        pushed = watcher.next(5.0)
    finally:
        watcher.close()

    assert handoff.store.list_messages(cid)[-1].text == "Ainda estou aguardando"
    assert pushed is not None
    # The push names the message; its text is read through the console's checked, masked endpoint.
    assert pushed["message"] == {
        "id": handoff.store.list_messages(cid)[-1].id,
        "role": "user",
        "created_at": handoff.store.list_messages(cid)[-1].created_at.isoformat(),
    }


# --- taking a conversation ---------------------------------------------------------------------------------


def test_claiming_assigns_the_agent_records_the_wait_and_leaves_the_queue(
    stack: Stack, handoff: HandoffService
) -> None:
    cid = waiting_conversation(handoff)
    stack.clock.advance(seconds=42)

    view = handoff.claim(cid, "user:7")

    assert (view.status, view.agent) == ("with_agent", "user:7")
    assert view.timings_s()["wait"] == 42.0
    assert handoff.store.get_conversation(cid).state == "with_agent"  # type: ignore[union-attr]
    assert handoff.waiting() == []


def test_a_conversation_already_taken_cannot_be_claimed_again(handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    handoff.claim(cid, "user:7")

    with pytest.raises(HandoffError) as refused:
        handoff.claim(cid, "user:8")

    assert refused.value.code == "taken"
    assert handoff.current(cid).agent == "user:7"  # type: ignore[union-attr]


def test_of_agents_claiming_one_conversation_at_once_exactly_one_wins(stack: Stack) -> None:
    # Each agent in its own app process: separate services over the same database and live state.
    cid = waiting_conversation(stack.service())
    agents = [stack.service() for _ in range(6)]
    barrier = threading.Barrier(len(agents))

    def grab(n: int) -> str:
        barrier.wait()
        try:
            agents[n].claim(cid, f"user:{n}")
        except HandoffError as exc:
            return exc.code
        return "won"

    with ThreadPoolExecutor(len(agents)) as pool:
        outcomes = list(pool.map(grab, range(len(agents))))

    assert sorted(outcomes) == ["taken"] * (len(agents) - 1) + ["won"]
    winner = f"user:{outcomes.index('won')}"
    assert stack.service().current(cid).agent == winner  # type: ignore[union-attr]


def test_the_database_refuses_a_claim_even_when_the_live_lock_was_lost(stack: Stack) -> None:
    # A Redis flush (or an expired lock) must not let a second agent take a conversation already served.
    cid = waiting_conversation(stack.service())
    stack.service().claim(cid, "user:1")

    with pytest.raises(HandoffError):
        stack.service(InMemoryLiveState()).claim(cid, "user:2")


# --- serving -----------------------------------------------------------------------------------------------


def test_only_the_assigned_agent_may_reply_and_the_first_reply_is_timed(stack: Stack, handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    handoff.claim(cid, "user:7")
    stack.clock.advance(seconds=15)

    with pytest.raises(HandoffError) as refused:
        handoff.reply(cid, "user:8", "Olá!")
    sent = handoff.reply(cid, "user:7", "Olá! Posso ajudar com o IPTU.")
    handoff.reply(cid, "user:7", "Um momento, por favor.")

    assert refused.value.code == "not_assigned"
    assert (sent.role, sent.text) == ("agent", "Olá! Posso ajudar com o IPTU.")
    assert handoff.current(cid).timings_s()["first_response"] == 15.0  # type: ignore[union-attr]


def test_an_internal_note_is_kept_as_an_event_and_never_as_a_message(handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    handoff.claim(cid, "user:7")

    handoff.note(cid, "user:7", "Cidadão já ligou ontem.")

    assert all(m.text != "Cidadão já ligou ontem." for m in handoff.store.list_messages(cid))
    assert [e.payload["text"] for e in handoff.store.list_events(cid) if e.kind == "internal_note"] == [
        "Cidadão já ligou ontem."
    ]


def test_a_transfer_puts_the_conversation_in_the_other_teams_queue(handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    handoff.claim(cid, "user:7")

    ticket = handoff.transfer(cid, "user:7", "tributos")

    assert (ticket.state, ticket.team, ticket.position) == ("waiting", "tributos", 1)
    assert [(h.team, h.status, h.close_reason) for h in handoff.history(cid)] == [
        ("atendimento", "closed", "transferred"),
        ("tributos", "waiting", None),
    ]


def test_closing_stores_the_summary_times_the_handling_and_sends_the_survey(
    stack: Stack, numbered: HandoffService
) -> None:
    handoff = numbered
    cid = waiting_conversation(handoff)
    handoff.claim(cid, "user:7")
    handoff.reply(cid, "user:7", "Acesse o portal e escolha Segunda via.")
    stack.clock.advance(minutes=3)

    closed = handoff.close(cid, "user:7", "information_given")

    assert handoff.store.get_conversation(cid).state == "closed"  # type: ignore[union-attr]
    assert closed.close_reason == "information_given"
    assert closed.summary is not None
    assert closed.summary["reason"] == ["Como emito a segunda via do IPTU?"]
    assert closed.timings_s()["handling"] == 180.0
    last = handoff.store.list_messages(cid)[-1]
    assert closed.protocol_number == "2026-000001"
    assert (last.role, last.text) == ("system", t("handoff.closed", reference="2026-000001"))


def test_the_service_protocol_is_a_concluded_contact_holding_the_summary_for_the_team(
    stack: Stack, numbered: HandoffService
) -> None:
    cid = waiting_conversation(numbered, team="tributos")
    numbered.claim(cid, "user:7")

    closed = numbered.close(cid, "user:7", "information_given")

    assert closed.protocol_number is not None
    view = protocol_book(stack).view(closed.protocol_number)
    p = view.protocol
    assert (p.service_code, view.service_name, p.team, p.status) == (
        "atendimento_humano",
        "Atendimento humano",
        "tributos",
        "concluido",
    )
    assert (p.citizen_id, p.anonymous, p.channel) == (None, False, "web")  # the web chat citizen gave no identity
    assert "Como emito a segunda via do IPTU?" in p.description
    assert t("console.close.information_given") in p.description
    assert [(e.status, e.actor) for e in view.history] == [("aberto", "user:7"), ("concluido", "user:7")]
    assert numbered.current(cid).protocol_number == closed.protocol_number  # type: ignore[union-attr]


def test_the_service_protocol_belongs_to_the_citizen_the_conversation_identified(
    stack: Stack, numbered: HandoffService
) -> None:
    with stack.sessions.begin() as session:
        known, verified = Citizen(cpf_hash="hash-known"), Citizen(cpf_hash="hash-verified")
        session.add_all([known, verified])
    by_ref, by_verification, expired = (waiting_conversation(numbered) for _ in range(3))
    with stack.sessions.begin() as session:
        session.get(Conversation, by_ref).citizen_ref = f"citizen:{known.id}"  # type: ignore[union-attr]
        session.add_all(
            [
                VerifiedConversation(
                    conversation_id=by_verification,
                    citizen_id=verified.id,
                    expires_at=stack.clock() + timedelta(minutes=30),
                ),
                VerifiedConversation(
                    conversation_id=expired, citizen_id=verified.id, expires_at=stack.clock() - timedelta(minutes=1)
                ),
            ]
        )

    owners = []
    for cid in (by_ref, by_verification, expired):
        numbered.claim(cid, "user:7")
        number = numbered.close(cid, "user:7", "resolved").protocol_number
        assert number is not None
        owners.append(protocol_book(stack).owner_of(number))

    assert owners == [known.id, verified.id, None]


def test_anonymising_the_conversation_blanks_its_summary_and_its_service_protocols_description(
    stack: Stack, numbered: HandoffService
) -> None:
    cid = waiting_conversation(numbered)
    numbered.claim(cid, "user:7")
    number = numbered.close(cid, "user:7", "resolved").protocol_number
    assert number is not None

    with stack.sessions.begin() as session:
        anonymise_conversations(session, [cid], reason="retention", now=stack.clock())

    assert protocol_book(stack).view(number).protocol.description == t("lgpd.anonymised_text")
    assert numbered.current(cid).summary is None  # type: ignore[union-attr]


def test_a_refused_close_uses_up_no_protocol_number(numbered: HandoffService) -> None:
    cid = waiting_conversation(numbered)
    numbered.claim(cid, "user:7")

    with pytest.raises(HandoffError):
        numbered.close(cid, "user:8", "resolved")
    closed = numbered.close(cid, "user:7", "resolved")

    assert closed.protocol_number == "2026-000001"


def test_without_a_protocol_book_the_citizen_is_told_no_number(handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    handoff.claim(cid, "user:7")

    closed = handoff.close(cid, "user:7", "resolved")

    assert closed.protocol_number is None
    assert handoff.store.list_messages(cid)[-1].text == t("handoff.closed_unnumbered")


def test_closing_with_an_unknown_reason_is_refused(handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    handoff.claim(cid, "user:7")

    with pytest.raises(HandoffError) as refused:
        handoff.close(cid, "user:7", "cansei")

    assert refused.value.code == "invalid_reason"
    assert handoff.store.get_conversation(cid).state == "with_agent"  # type: ignore[union-attr]


def test_the_survey_is_answered_once_after_closing(handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    handoff.claim(cid, "user:7")
    handoff.close(cid, "user:7", "resolved")

    handoff.survey(cid, 5, "Rápido e claro.")
    with pytest.raises(HandoffError) as again:
        handoff.survey(cid, 1, None)

    assert again.value.code == "no_survey"
    assert (handoff.current(cid).survey_score, handoff.current(cid).survey_comment) == (  # type: ignore[union-attr]
        5,
        "Rápido e claro.",
    )


def test_leaving_the_queue_is_recorded_as_an_abandonment(stack: Stack, handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    stack.clock.advance(seconds=90)

    handoff.leave(cid)

    assert handoff.store.get_conversation(cid).state == "bot"  # type: ignore[union-attr]
    assert handoff.current(cid).timings_s()["abandonment"] == 90.0  # type: ignore[union-attr]
    assert handoff.waiting() == []


def test_a_closed_conversation_can_ask_for_a_person_again(handoff: HandoffService) -> None:
    cid = waiting_conversation(handoff)
    handoff.claim(cid, "user:7")
    handoff.close(cid, "user:7", "resolved")

    ticket = handoff.request(cid, reason="citizen_request", source="citizen_request")

    assert (ticket.state, ticket.position) == ("waiting", 1)


# --- restart and several processes -------------------------------------------------------------------------


def test_a_restart_rebuilds_the_queue_in_order_from_the_database(stack: Stack) -> None:
    before = stack.service()
    first = waiting_conversation(before)
    stack.clock.advance(seconds=1)
    second = waiting_conversation(before)
    served = waiting_conversation(before)
    before.claim(served, "user:1")

    after = stack.service(InMemoryLiveState())  # the live state is gone
    rebuilt = after.rebuild()

    assert rebuilt == 2
    assert [(view.conversation_id, position) for view, position in after.waiting()] == [(first, 1), (second, 2)]


def test_two_app_processes_share_one_queue_and_its_updates(stack: Stack) -> None:
    one, two = stack.service(), stack.service()
    watcher = stack.live.subscribe(QUEUE_TOPIC)
    try:
        cid = waiting_conversation(one)
        pushed = watcher.next(5.0)
    finally:
        watcher.close()

    assert [view.conversation_id for view, _ in two.waiting()] == [cid]
    assert pushed is not None
    assert (pushed["event"], pushed["conversation_id"]) == ("queued", cid)


# --- when the bot hands off, and the summary ---------------------------------------------------------------


def test_the_bot_hands_off_after_two_abstentions_in_a_row_but_not_after_one(handoff: HandoffService) -> None:
    cid = handoff.store.create_conversation("web").id
    store = handoff.store
    store.add_message(cid, "user", "Qual o horário do cemitério?")
    store.add_message(cid, "assistant", t("abstain"), decision="abstained")
    once = handoff_reason(store.list_messages(cid))
    store.add_message(cid, "user", "E aos domingos?")
    store.add_message(cid, "assistant", t("abstain"), decision="abstained")

    assert once is None
    assert handoff_reason(store.list_messages(cid)) == "abstained_twice"


def test_the_summary_gives_reason_cited_answers_masked_data_and_the_pending_request(handoff: HandoffService) -> None:
    cid = handoff.store.create_conversation("web").id
    store = handoff.store
    store.add_message(cid, "user", "Como emito a segunda via do IPTU?")
    store.add_message(
        cid,
        "assistant",
        "No portal, opção Segunda via. [1]",
        decision="answered",
        citations=[{"n": 1, "doc_id": "iptu", "title": "IPTU", "url": "kb://articles/iptu"}],
    )
    store.add_message(cid, "user", "Meu CPF é 529.982.247-25 e o boleto não abre")
    store.add_message(cid, "assistant", t("abstain"), decision="abstained")
    store.add_message(cid, "user", "quero falar com um atendente")

    summary = summarize(store.list_messages(cid))

    assert summary["reason"] == ["Como emito a segunda via do IPTU?", "Meu CPF é [CPF] e o boleto não abre"]
    assert summary["answers"] == [
        {"text": "No portal, opção Segunda via. [1]", "citations": [{"title": "IPTU", "url": "kb://articles/iptu"}]}
    ]
    assert summary["data"] == [{"kind": "CPF", "count": 1}]
    assert summary["pending"] == "Meu CPF é [CPF] e o boleto não abre"
    assert "529.982.247-25" not in str(summary)


# --- business hours ----------------------------------------------------------------------------------------


def test_outside_the_teams_hours_nothing_is_queued_and_the_next_opening_is_given(stack: Stack) -> None:
    # ManualClock starts on Monday 23 November 2026, 09:00 UTC (06:00 in São Paulo): before opening.
    handoff = stack.service(config=HandoffConfig(hours={"tributos": BusinessHours.parse("mon-fri 08:00-17:00")}))
    cid = handoff.store.create_conversation("web").id

    ticket = handoff.request(cid, reason="citizen_request", source="citizen_request", team="tributos")

    assert (ticket.state, ticket.position) == ("bot", None)
    assert ticket.opens_at == datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))
    assert handoff.waiting() == []
    assert [e.kind for e in handoff.store.list_events(cid)] == ["handoff_after_hours"]


def test_inside_the_teams_hours_the_conversation_is_queued(stack: Stack) -> None:
    handoff = stack.service(config=HandoffConfig(hours={"tributos": BusinessHours.parse("mon-fri 08:00-17:00")}))
    stack.clock.advance(hours=3)  # 09:00 in São Paulo

    ticket = handoff.request(
        handoff.store.create_conversation("web").id, reason="x", source="citizen_request", team="tributos"
    )

    assert (ticket.state, ticket.position, ticket.opens_at) == ("waiting", 1, None)


def test_the_estimated_wait_is_the_place_in_the_queue_times_the_teams_recent_pace(stack: Stack) -> None:
    handoff = stack.service()
    for _ in range(3):  # one conversation taken every two minutes
        handoff.claim(waiting_conversation(handoff), "user:1")
        stack.clock.advance(minutes=2)
    waiting_conversation(handoff)
    second = waiting_conversation(handoff)

    ticket = handoff.ticket(second)

    assert ticket.position == 2
    assert ticket.estimated_wait_s == 240.0


def test_without_history_there_is_no_estimate(handoff: HandoffService) -> None:
    assert handoff.ticket(waiting_conversation(handoff)).estimated_wait_s is None


# --- channels: how agents' messages reach citizens (channels.registry.Delivery) -------------------------------


def channel_conversation(handoff: HandoffService, delivery: ScriptedDelivery, channel: str = "sms") -> str:
    """A conversation on `channel`, whose delivery is told about it, waiting for an agent."""
    cid = handoff.store.create_conversation(channel).id
    delivery.expect(cid)
    handoff.store.add_message(cid, "user", "Preciso falar com alguém")
    handoff.request(cid, reason="citizen_request", source="citizen_request")
    return cid


def test_the_channel_delivers_the_agents_reply_and_the_closing_survey_once_committed(numbered: HandoffService) -> None:
    handoff = numbered
    sms = ScriptedDelivery()
    handoff.register_delivery("sms", sms)
    cid = channel_conversation(handoff, sms)
    handoff.claim(cid, "user:7")

    sent = handoff.reply(cid, "user:7", "Olá! Como posso ajudar?")
    closed = handoff.close(cid, "user:7", "resolved")

    assert sms.sent == [
        (cid, Outgoing(f"agent:{sent.id}", "Olá! Como posso ajudar?")),
        (
            cid,
            Outgoing(
                f"close:{closed.id}",
                t("handoff.closed", reference="2026-000001"),
                Survey(closed.id, "2026-000001"),
            ),
        ),
    ]


def test_a_reply_the_channel_refuses_stores_nothing_and_tells_the_agent_why(handoff: HandoffService) -> None:
    sms = ScriptedDelivery()
    handoff.register_delivery("sms", sms)
    cid = channel_conversation(handoff, sms)
    sms.refuse(cid, "outside_window", "handoff.error.outside_window")
    handoff.claim(cid, "user:7")

    with pytest.raises(HandoffError) as refused:
        handoff.reply(cid, "user:7", "Olá!")

    assert (refused.value.code, refused.value.key) == ("outside_window", "handoff.error.outside_window")
    assert [m.role for m in handoff.store.list_messages(cid)] == ["user"]
    current = handoff.current(cid)
    assert current is not None
    assert current.first_response_at is None
    # Closing never waits on the channel: the service ends and staff can see the citizen was not told.
    assert handoff.close(cid, "user:7", "resolved").status == "closed"
    assert "handoff_close_not_delivered" in [e.kind for e in handoff.store.list_events(cid)]


def test_a_request_naming_no_team_joins_the_channels_team_and_a_named_team_wins(handoff: HandoffService) -> None:
    sms = ScriptedDelivery()
    handoff.register_delivery("sms", sms)
    unnamed = handoff.store.create_conversation("sms").id
    default = handoff.store.create_conversation("sms").id
    named = handoff.store.create_conversation("sms").id
    for cid in (unnamed, default, named):
        sms.expect(cid, team="geral")

    assert handoff.request(unnamed, reason="r", source="citizen_request").team == "geral"
    assert handoff.enqueue(default, team="atendimento", reason="r") == 2  # the tool's default team is no choice
    assert handoff.request(named, reason="r", source="tool", team="tributos").team == "tributos"
    assert [view.team for view, _ in handoff.waiting()] == ["geral", "geral", "tributos"]
