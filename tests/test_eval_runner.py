"""The suite runner: the channels' entry point, an isolated database, repeats, seeding and tool calls."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import command_line_env
from sqlalchemy import text
from typer.testing import CliRunner

from assistant.service import Drafted, Token
from atende import cli
from atende.services import Services, build_services
from core.settings import Settings
from domain.seed import CITIZENS
from eval import runner as runner_module
from eval.chat_models import scripted_model
from eval.isolation import isolated_services
from eval.runner import run_suites
from eval.suite import Suite, parse_suite

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"

SUITE = """\
suite: demo
cases:
  - id: iptu
    tags: [iptu]
    turns:
      - user: "perdi o boleto do IPTU, como tiro a segunda via?"
        expect: {cites: {any: [iptu-segunda-via]}, abstains: false}
  - id: hello-then-question
    tags: [followup]
    turns:
      - user: "oi, bom dia"
        expect: {route: smalltalk}
      - user: "qual o horário da farmácia municipal?"
        expect: {cites: {any: [farmacia-municipal]}}
  - id: off-topic
    tags: [unanswerable]
    turns:
      - user: "qual a capital da Mongólia?"
        expect: {abstains: true}
"""


def suite(body: str = SUITE) -> Suite:
    return parse_suite(textwrap.dedent(body), "demo.yaml")


@pytest.fixture
def eval_services(test_settings: Settings) -> Iterator[Services]:
    with isolated_services(test_settings, build_services, model=scripted_model(200)) as services:
        yield services


def test_a_suite_runs_through_the_assistant_and_every_turn_is_recorded(eval_services: Services) -> None:
    report = run_suites([suite()], eval_services)

    assert [c["passed"] for c in report["cases"]] == [True, True, True], [c["reason"] for c in report["cases"]]
    assert report["summary"]["pass_rate"] == 1.0
    # The same pipeline as the web chat: every turn lands in the (throwaway) turn log.
    assert len(list(eval_services.store.iter_turns())) == 4
    turn = report["cases"][0]["runs"][0]["turns"][0]
    assert turn["citations"][0]["doc_id"] == "iptu-segunda-via"
    assert turn["retrieved"]
    assert turn["latency_ms"] > 0
    # The answer streams: its first words reach the citizen before the checked, recorded reply.
    assert 0 < turn["first_words_ms"] < turn["latency_ms"]
    assert report["summary"]["first_words_ms"]["p50"] <= report["summary"]["latency_ms"]["p50"]
    assert turn["faithfulness"] is None


def test_evaluation_never_touches_the_configured_database_or_index(test_settings: Settings) -> None:
    real = test_settings.model_copy(update={"vector_store": "chroma"})
    with isolated_services(real, build_services, model=scripted_model(50)) as services:
        run_suites([suite()], services)
        workdir = services.settings.data_dir
        assert services.settings.vector_store == "memory"
        with services.engine.connect() as conn:
            assert conn.execute(text("select count(*) from turns")).scalar() == 4
    assert not workdir.exists()
    assert not (test_settings.data_dir / "atende.db").exists()
    assert not (test_settings.data_dir / "chroma").exists()


def test_repeat_reports_pass_hat_k_where_a_case_counts_only_if_every_run_passes(
    eval_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_case = suite(SUITE.split("  - id: hello-then-question")[0])
    real = eval_services.assistant.draft_stream
    runs = iter(range(1, 100))

    def flaky(conversation_id: str, text: str, channel: str = "web") -> Iterator[Token | Drafted]:
        run = next(runs)
        for item in real(conversation_id, text, channel):
            # The second run loses its citation, as an answer that drifted off the article would.
            drifted = run == 2 and isinstance(item, Drafted)
            yield replace(item, reply=replace(item.reply, citations=[])) if drifted else item

    monkeypatch.setattr(eval_services.assistant, "draft_stream", flaky)
    report = run_suites([one_case], eval_services, repeat=3)

    case = report["cases"][0]
    assert (case["passes"], case["repeat"], case["passed"]) == (2, 3, False)
    assert report["summary"]["pass_hat_k"] == {
        "1": pytest.approx(2 / 3, abs=1e-4),
        "2": pytest.approx(1 / 3, abs=1e-4),
        "3": 0.0,
    }
    assert "cites none of" in case["reason"]


def test_a_turn_that_raises_fails_its_case_with_the_reason_and_the_run_goes_on(
    eval_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = eval_services.assistant.draft_stream

    def draft_stream(conversation_id: str, text: str, channel: str = "web") -> Iterator[Token | Drafted]:
        if "Mongólia" in text:
            raise RuntimeError("boom")
        yield from real(conversation_id, text, channel)

    monkeypatch.setattr(eval_services.assistant, "draft_stream", draft_stream)
    report = run_suites([suite()], eval_services)

    assert [c["passed"] for c in report["cases"]] == [True, True, False]
    assert report["cases"][2]["reason"] == "turn 1 raised RuntimeError: boom"


TOOL_SUITE = """\
suite: tools
cases:
  - id: debts
    citizen: {cpf: "529.982.247-25", birth_date: "1985-03-14"}
    turns:
      - user: "quero ver meus débitos, cpf {citizen.cpf}, nasci em 14/03/1985"
        expect:
          tool_calls:
            calls: [{name: citizen_verify, arguments: {cpf: "52998224725"}, ok: true}, {name: payment_list_debts}]
            ordered: true
"""


def test_cases_needing_seeded_data_fail_clearly_when_no_seed_module_exists(
    eval_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "SEED_MODULE", "tools_mcp.no_such_seed_module")
    report = run_suites([suite(TOOL_SUITE), suite()], eval_services)

    debts = report["cases"][0]
    assert not debts["passed"]
    assert "needs seeded domain data" in debts["reason"]
    assert "tools_mcp.no_such_seed_module" in debts["reason"]
    assert report["seed_error"]
    assert all(c["passed"] for c in report["cases"][1:])


def test_the_seed_fills_the_domain_the_tools_use_with_the_demo_data_and_the_cases_own_citizens(
    eval_services: Services,
) -> None:
    report = run_suites([suite(TOOL_SUITE)], eval_services)

    assert (report["seeded"], report["seed_error"]) == (True, None)
    domain = eval_services.domain
    assert domain is not None
    with domain.sessions() as session:
        assert domain.citizens.find_in(session, CITIZENS[0].cpf) is not None  # the demo data
        assert domain.citizens.find_in(session, "52998224725") is not None  # the case's citizen
    assert str(eval_services.settings.data_dir) in str(eval_services.engine.url)
    # The case's citizen verifies with the birth date the suite declared, then their debts are listed.
    debts = report["cases"][0]
    assert debts["passed"], debts["reason"]
    assert report["summary"]["tool_calls"] == {"expected": 2, "called": 2, "precision": 1.0, "recall": 1.0}


def test_atende_eval_run_writes_both_reports_and_prints_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command_line_env(monkeypatch, tmp_path, ATENDE_KNOWLEDGE_DIR=str(KNOWLEDGE))
    (tmp_path / "demo.yaml").write_text(SUITE, encoding="utf-8")

    result = CliRunner().invoke(cli.app, ["eval", "run", "demo.yaml", "--model", "scripted", "--out", "out"])

    assert result.exit_code == 0, result.output
    assert "pass rate" in result.stdout
    assert (tmp_path / "out" / "report.json").is_file()
    assert "demo/iptu" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    # Evaluation leaves the data directory alone; test mode may only have generated its keys there.
    assert {p.name for p in (tmp_path / "var").glob("*")} <= {"keys.env"}


def test_atende_eval_run_refuses_a_bad_suite_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SUITE.replace("    tags: [iptu]", "    tags: [iptu]\n    colour: red"), encoding="utf-8")

    result = CliRunner().invoke(cli.app, ["eval", "run", str(bad), "--model", "scripted"])

    assert result.exit_code == 2
    assert f"{bad}:5: unknown key 'colour'" in result.output


GATE_SUITE = """\
suite: gate
cases:
  - id: two-abstentions
    tags: [handoff]
    turns:
      - user: "qual a capital da Mongólia?"
        expect: {abstains: true, handoff: false}
      - user: "e a capital do Cazaquistão?"
        expect: {abstains: true, handoff: {team: atendimento}}
      - user: "qual o horário da farmácia municipal?"
        expect: {route: human, handoff: true, cites: {none: [farmacia-municipal]}}
"""


def test_turns_go_through_the_handoff_gate_so_two_abstentions_queue_the_case_and_later_turns_reach_the_agent(
    eval_services: Services,
) -> None:
    report = run_suites([suite(GATE_SUITE)], eval_services)

    case = report["cases"][0]
    assert case["passed"], case["reason"]
    first, second, third = case["runs"][0]["turns"]
    assert (first["decision"], first["handoff_team"]) == ("abstained", None)
    assert (second["decision"], second["assistant_decision"], second["handoff_team"]) == (
        "handoff",
        "abstained",
        "atendimento",
    )
    assert third["assistant_decision"] is None
    assert third["reason"] == "forwarded to the agent"
    assert report["summary"]["handoff"]["recall"] == 1.0
    assert eval_services.handoff is not None
    assert [view.team for view, _position in eval_services.handoff.waiting()] == ["atendimento"]
