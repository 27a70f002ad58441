"""Routing (least busy, capacity, skills, languages, overflow), presence, supervisor actions and inactivity
timeouts, over SQLite + in-process state and PostgreSQL + Redis."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from handoff_support import Stack, stack_fixture  # noqa: F401  (the parametrised fixture)
from helpers import hand_off_after_reply
from sqlalchemy import select

from core.i18n import t
from core.models import Event
from handoff.assignment import AssignmentRules, Candidate, Need, Profile, choose
from handoff.context import HandoffConfig
from handoff.models import Handoff
from handoff.records import HandoffError
from handoff.service import HandoffService
from handoff.timeouts import InactivitySweep, Timeouts


def least_busy(stack: Stack, **options: Any) -> HandoffService:
    return stack.service(config=HandoffConfig(assignment=AssignmentRules(mode="least_busy", **options)))


def ask_for_a_person(handoff: HandoffService, team: str | None = None, *, language: str = "pt-BR") -> str:
    cid = handoff.store.create_conversation("web", language=language).id
    handoff.store.add_message(cid, "user", "Quero falar com um atendente.")
    handoff.request(cid, reason="citizen_request", source="citizen_request", team=team)
    return cid


def agent_of(handoff: HandoffService, cid: str) -> str | None:
    current = handoff.current(cid)
    return None if current is None or current.status != "with_agent" else current.agent


def events_of(stack: Stack, cid: str, kind: str) -> list[dict[str, Any]]:
    with stack.sessions() as session:
        rows = session.scalars(select(Event).where(Event.conversation_id == cid, Event.kind == kind))
        return [dict(row.payload) for row in rows]


# --- choosing an agent (pure) ------------------------------------------------------------------------------


def candidate(subject: str, load: int, capacity: int = 3, **profile: Any) -> Candidate:
    defaults: dict[str, Any] = {"teams": ("atendimento",), "skills": (), "languages": ("pt-BR",)}
    return Candidate(Profile(subject, capacity=capacity, **(defaults | profile)), load)


def test_the_least_busy_agent_by_share_of_capacity_is_chosen() -> None:
    pool = [candidate("user:1", 2, capacity=3), candidate("user:2", 2, capacity=6), candidate("user:3", 3, capacity=3)]

    assert choose(pool, Need("atendimento")).profile.subject == "user:2"  # type: ignore[union-attr]


def test_a_speaker_of_the_citizens_language_comes_before_a_less_busy_agent() -> None:
    pool = [candidate("user:1", 0), candidate("user:2", 2, languages=("pt-BR", "es"))]

    assert choose(pool, Need("atendimento", language="es")).profile.subject == "user:2"  # type: ignore[union-attr]
    assert choose(pool, Need("atendimento", language="pt-BR")).profile.subject == "user:1"  # type: ignore[union-attr]


def test_a_required_skill_and_the_team_filter_agents_and_a_full_agent_gets_nothing() -> None:
    pool = [candidate("user:1", 0), candidate("user:2", 1, skills=("libras",)), candidate("user:3", 0, teams=("iptu",))]

    assert choose(pool, Need("atendimento", skill="libras")).profile.subject == "user:2"  # type: ignore[union-attr]
    assert choose(pool, Need("atendimento", skill="divida_ativa")) is None
    assert choose([candidate("user:1", 3, capacity=3)], Need("atendimento")) is None


# --- least-busy routing ------------------------------------------------------------------------------------


def test_a_conversation_goes_at_once_to_the_least_busy_online_agent(stack: Stack) -> None:
    handoff = least_busy(stack)
    handoff.set_presence("user:1", "online")
    handoff.set_presence("user:2", "online")
    handoff.set_presence("user:3", "paused")
    first = ask_for_a_person(handoff)
    second = ask_for_a_person(handoff)

    assert {agent_of(handoff, first), agent_of(handoff, second)} == {"user:1", "user:2"}
    assert handoff.waiting() == []
    assert events_of(stack, first, "handoff_assigned")[0]["by"] == "router"


def test_with_everyone_full_the_conversation_waits_and_goes_to_whoever_frees_up(stack: Stack) -> None:
    handoff = least_busy(stack)
    handoff.save_profile(Profile("user:1", ("atendimento",), capacity=1))
    handoff.set_presence("user:1", "online")
    served = ask_for_a_person(handoff)
    queued = ask_for_a_person(handoff)
    assert agent_of(handoff, served) == "user:1"
    assert handoff.store.get_conversation(queued).state == "waiting"  # type: ignore[union-attr]

    handoff.close(served, "user:1", "resolved")

    assert agent_of(handoff, queued) == "user:1"


def test_an_agent_coming_online_takes_the_waiting_conversations_up_to_capacity(stack: Stack) -> None:
    handoff = least_busy(stack)
    handoff.save_profile(Profile("user:1", ("atendimento",), capacity=2))
    waiting = [ask_for_a_person(handoff) for _ in range(3)]

    assigned = handoff.set_presence("user:1", "online")

    assert [cid for cid, _ in assigned] == waiting[:2]  # first come, first served
    assert [view.conversation_id for view, _ in handoff.waiting()] == waiting[2:]


def test_in_a_pick_team_nothing_is_pushed_and_a_full_agent_cannot_claim_more(stack: Stack) -> None:
    handoff = stack.service()
    handoff.save_profile(Profile("user:1", ("atendimento",), capacity=1))
    handoff.set_presence("user:1", "online")
    first, second = ask_for_a_person(handoff), ask_for_a_person(handoff)
    assert agent_of(handoff, first) is None

    handoff.claim(first, "user:1")
    with pytest.raises(HandoffError) as refused:
        handoff.claim(second, "user:1")

    assert refused.value.code == "at_capacity"
    assert t(refused.value.key).startswith("Você já está com o número máximo")


def test_a_spanish_speaking_citizen_goes_to_the_agent_who_speaks_spanish(stack: Stack) -> None:
    handoff = least_busy(stack)
    handoff.save_profile(Profile("user:1", ("atendimento",), capacity=3))
    handoff.save_profile(Profile("user:2", ("atendimento",), capacity=3, languages=("pt-BR", "es")))
    handoff.set_presence("user:2", "online")
    handoff.set_presence("user:1", "online")
    ask_for_a_person(handoff)  # user:1 and user:2 both idle: either may take the Portuguese one

    cid = ask_for_a_person(handoff, language="es")

    assert agent_of(handoff, cid) == "user:2"


def test_two_processes_routing_at_once_never_give_one_conversation_twice_nor_overfill(stack: Stack) -> None:
    setup = least_busy(stack)
    for n in range(3):
        setup.save_profile(Profile(f"user:{n}", ("atendimento",), capacity=2))
    waiting = [ask_for_a_person(setup) for _ in range(8)]
    for n in range(3):
        stack.live.set_presence(f"user:{n}", "online", 60.0)
    processes = [least_busy(stack) for _ in range(2)]
    barrier = threading.Barrier(len(processes))

    def run(n: int) -> list[tuple[str, str]]:
        barrier.wait()
        return processes[n].route()

    def loads() -> dict[str, int]:
        return {f"user:{n}": len(setup.assigned_to(f"user:{n}")) for n in range(3)}

    with ThreadPoolExecutor(len(processes)) as pool:
        results = [pair for part in pool.map(run, range(len(processes))) for pair in part]
    during = loads()
    # A router gives up on an agent another one is assigning to; the next sweep's routing takes the rest.
    results += setup.route()

    assigned = [cid for cid, _ in results]
    assert all(load <= 2 for load in during.values())  # never overfilled, even mid-race
    assert len(assigned) == len(set(assigned)) == 6  # three agents × capacity two
    assert loads() == {"user:0": 2, "user:1": 2, "user:2": 2}
    assert [view.conversation_id for view, _ in setup.waiting()] == waiting[6:]


# --- overflow ----------------------------------------------------------------------------------------------


def test_a_team_with_nobody_available_overflows_to_its_helper_team(stack: Stack) -> None:
    handoff = least_busy(stack, overflow={"tributos": "atendimento"})
    handoff.set_presence("user:1", "online")  # serves atendimento (the default profile); tributos has nobody

    cid = ask_for_a_person(handoff, team="tributos")

    current = handoff.current(cid)
    assert (current.team, current.agent) == ("atendimento", "user:1")  # type: ignore[union-attr]
    with stack.sessions() as session:
        assert session.get(Handoff, current.id).overflowed_from == "tributos"  # type: ignore[union-attr]


def test_without_anyone_in_the_helper_team_either_the_conversation_stays_in_its_own_queue(stack: Stack) -> None:
    handoff = least_busy(stack, overflow={"tributos": "atendimento"})

    cid = ask_for_a_person(handoff, team="tributos")

    assert handoff.ticket(cid).team == "tributos"
    assert handoff.ticket(cid).position == 1


def test_the_sweep_overflows_a_queue_whose_agents_all_left(stack: Stack) -> None:
    handoff = stack.service(config=HandoffConfig(assignment=AssignmentRules(overflow={"tributos": "atendimento"})))
    handoff.save_profile(Profile("user:2", ("tributos",), capacity=3))
    handoff.set_presence("user:2", "online")
    cid = ask_for_a_person(handoff, team="tributos")
    assert handoff.ticket(cid).team == "tributos"
    handoff.set_presence("user:2", "offline")
    handoff.set_presence("user:1", "online")

    report = sweeper(handoff, Timeouts(wait_s=0, citizen_idle_s=0, agent_idle_s=0)).sweep()

    assert report.overflowed == [cid]
    assert handoff.ticket(cid).team == "atendimento"
    assert events_of(stack, cid, "handoff_overflowed") == [{"from_team": "tributos", "to_team": "atendimento"}]


# --- supervisor ----------------------------------------------------------------------------------------------


def test_a_supervisor_reassigns_a_served_conversation_and_the_new_agent_can_answer(stack: Stack) -> None:
    handoff = stack.service()
    cid = ask_for_a_person(handoff)
    handoff.claim(cid, "user:1")

    handoff.reassign(cid, "user:9", "user:2")

    assert agent_of(handoff, cid) == "user:2"
    with pytest.raises(HandoffError):
        handoff.reply(cid, "user:1", "Ainda estou aqui?")
    handoff.reply(cid, "user:2", "Olá, vou continuar o seu atendimento.")
    moves = events_of(stack, cid, "handoff_reassigned")
    assert moves == [{"from_agent": "user:1", "to_agent": "user:2", "by": "user:9"}]


def test_a_supervisor_can_give_a_waiting_conversation_to_an_agent_beyond_their_capacity(stack: Stack) -> None:
    handoff = stack.service()
    handoff.save_profile(Profile("user:1", ("atendimento",), capacity=1))
    handoff.claim(ask_for_a_person(handoff), "user:1")
    cid = ask_for_a_person(handoff)

    handoff.reassign(cid, "user:9", "user:1")

    assert agent_of(handoff, cid) == "user:1"
    assert events_of(stack, cid, "handoff_assigned")[0]["by"] == "user:9"


def test_a_supervisors_intervention_reaches_the_citizen_and_is_recorded(stack: Stack) -> None:
    handoff = stack.service()
    cid = ask_for_a_person(handoff)
    handoff.claim(cid, "user:1")

    sent = handoff.reply(cid, "user:9", "Sou a supervisora; vou acompanhar o seu caso.", override=True)

    assert handoff.store.list_messages(cid)[-1].text == sent.text
    assert events_of(stack, cid, "supervisor_intervened") == [{"supervisor": "user:9", "agent": "user:1"}]
    assert handoff.current(cid).first_response_at is None  # type: ignore[union-attr]  # the agent's own metric


def test_a_supervisor_closes_a_conversation_another_agent_holds(stack: Stack) -> None:
    handoff = stack.service()
    cid = ask_for_a_person(handoff)
    handoff.claim(cid, "user:1")

    with pytest.raises(HandoffError):
        handoff.close(cid, "user:9", "resolved")
    closed = handoff.close(cid, "user:9", "resolved", override=True)

    assert closed.status == "closed"
    assert handoff.store.get_conversation(cid).state == "closed"  # type: ignore[union-attr]


# --- inactivity ----------------------------------------------------------------------------------------------


def sweeper(handoff: HandoffService, timeouts: Timeouts) -> InactivitySweep:
    return InactivitySweep(handoff, timeouts, owner="test")


RULES = Timeouts(wait_s=1800, citizen_idle_s=600, citizen_grace_s=300, agent_idle_s=300)


def test_a_citizen_left_waiting_too_long_is_offered_a_protocol_and_the_wait_is_recorded(stack: Stack) -> None:
    handoff = stack.service()
    cid = ask_for_a_person(handoff)
    stack.clock.advance(seconds=1799)
    assert sweeper(handoff, RULES).sweep().expired_waits == []

    stack.clock.advance(seconds=2)
    report = sweeper(handoff, RULES).sweep()

    assert report.expired_waits == [cid]
    assert handoff.store.get_conversation(cid).state == "bot"  # type: ignore[union-attr]
    assert handoff.current(cid).status == "abandoned"  # type: ignore[union-attr]
    assert handoff.store.list_messages(cid)[-1].text == t("handoff.timeout.waiting")
    assert handoff.waiting() == []


def test_a_silent_citizen_is_asked_once_and_the_service_closes_after_the_grace(stack: Stack) -> None:
    handoff = stack.service()
    cid = ask_for_a_person(handoff)
    handoff.claim(cid, "user:1")
    handoff.reply(cid, "user:1", "Pode me informar o número do imóvel?")
    stack.clock.advance(seconds=601)

    first = sweeper(handoff, RULES).sweep()
    again = sweeper(handoff, RULES).sweep()
    stack.clock.advance(seconds=301)
    last = sweeper(handoff, RULES).sweep()

    assert (first.warned_citizens, again.warned_citizens) == ([cid], [])
    assert last.closed_idle == [cid]
    assert handoff.current(cid).close_reason == "citizen_inactive"  # type: ignore[union-attr]
    texts = [m.text for m in handoff.store.list_messages(cid)]
    assert t("handoff.timeout.citizen_warning", minutes=5) in texts


def test_a_citizen_who_answers_the_warning_keeps_the_service_open(stack: Stack) -> None:
    handoff = stack.service()
    cid = ask_for_a_person(handoff)
    handoff.claim(cid, "user:1")
    handoff.reply(cid, "user:1", "Pode me informar o número do imóvel?")
    stack.clock.advance(seconds=601)
    sweeper(handoff, RULES).sweep()

    handoff.citizen_message(cid, "Estou aqui, um momento.")
    stack.clock.advance(seconds=120)

    report = sweeper(handoff, RULES).sweep()
    assert (report.closed_idle, report.requeued) == ([], [])
    assert handoff.current(cid).status == "with_agent"  # type: ignore[union-attr]


def test_an_agent_who_leaves_the_citizen_unanswered_is_paused_and_the_citizen_keeps_the_front_of_the_queue(
    stack: Stack,
) -> None:
    handoff = stack.service()
    handoff.set_presence("user:1", "online")
    cid = ask_for_a_person(handoff)
    handoff.claim(cid, "user:1")
    later = ask_for_a_person(handoff)
    stack.clock.advance(seconds=301)

    report = sweeper(handoff, RULES).sweep()

    assert report.requeued == [cid]
    assert [view.conversation_id for view, _ in handoff.waiting()] == [cid, later]
    assert handoff.live.presence()["user:1"] == "paused"
    assert handoff.store.list_messages(cid)[-1].text == t("handoff.timeout.agent")
    assert events_of(stack, cid, "handoff_agent_timeout")[0]["agent"] == "user:1"


def test_only_one_process_sweeps_at_a_time(stack: Stack) -> None:
    handoff = stack.service()
    assert handoff.live.acquire("sweep", "other-process", 30.0)
    ask_for_a_person(handoff)
    stack.clock.advance(seconds=3600)

    assert sweeper(handoff, RULES).sweep().total() == 0


# --- topics that need a person -------------------------------------------------------------------------------


def test_a_reply_citing_an_article_that_needs_a_person_is_answered_and_queued_for_its_team(stack: Stack) -> None:
    from core.topics import TopicRule, TopicRules

    topics = TopicRules({"article:divida-ativa": TopicRule(team="tributos", skill="negociacao")})
    handoff = stack.service(config=HandoffConfig(topics=topics))
    cid = handoff.store.create_conversation("web").id
    handoff.store.add_message(cid, "user", "Quero parcelar minha dívida ativa.")
    citation = {"doc_id": "divida-ativa", "title": "Dívida ativa", "section": None, "url": None}
    handoff.store.add_message(
        cid, "assistant", "O parcelamento é feito na Secretaria da Fazenda.", "answered", [citation]
    )

    answer = hand_off_after_reply(handoff, cid, "O parcelamento é feito na Secretaria da Fazenda.")

    current = handoff.current(cid)
    assert (current.team, current.reason, current.source) == ("tributos", "topic:article:divida-ativa", "topic")  # type: ignore[union-attr]
    assert answer.startswith("O parcelamento é feito")  # the citizen keeps the answer
    assert t("handoff.queued", position=1) in answer
    with stack.sessions() as session:
        assert session.get(Handoff, current.id).skill == "negociacao"  # type: ignore[union-attr]


def test_a_turn_that_called_a_tool_needing_a_person_is_queued_and_other_replies_are_not(stack: Stack) -> None:
    from core.topics import TopicRule, TopicRules

    handoff = stack.service(config=HandoffConfig(topics=TopicRules({"tool:protocol_open": TopicRule()})))
    plain = handoff.store.create_conversation("web").id
    handoff.store.add_message(plain, "user", "Qual o horário da prefeitura?")
    handoff.store.add_message(plain, "assistant", "Das 8h às 17h.", "answered")
    acted = handoff.store.create_conversation("web").id
    handoff.store.add_message(acted, "user", "Quero registrar um buraco na rua.")
    handoff.store.add_message(acted, "assistant", "Protocolo aberto.", "answered")

    hand_off_after_reply(handoff, plain, "Das 8h às 17h.", tools=["kb_search"])
    hand_off_after_reply(handoff, acted, "Protocolo aberto.", tools=["protocol_open"])

    assert handoff.current(plain) is None
    assert handoff.current(acted).team == handoff.config.default_team  # type: ignore[union-attr]


def test_a_topic_key_without_article_or_tool_prefix_is_refused_at_startup() -> None:
    from core.topics import TopicRules

    with pytest.raises(ValueError, match="article:<id>"):
        TopicRules.parse({"divida-ativa": {"team": "tributos"}})
