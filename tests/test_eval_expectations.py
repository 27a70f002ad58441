"""Each expectation type passes when it holds and fails with a reason when it does not."""

from __future__ import annotations

from typing import Any

import pytest

from eval.expectations import Observation, check, match_tool_calls
from eval.suite import Expect, ExpectedCall, ToolCallsExpectation


def seen(**kw: Any) -> Observation:
    base: dict[str, Any] = {
        "answer": "A segunda via do IPTU é emitida no Portal do Contribuinte.",
        "decision": "answered",
    }
    base.setdefault("route", "knowledge")
    return Observation(**{**base, **kw})


def failures(expect: Expect, observation: Observation) -> list[tuple[str, str]]:
    return [(f.expectation, f.reason) for f in check(expect, observation)]


def test_an_empty_expectation_always_passes() -> None:
    assert failures(Expect(), seen(decision="abstained")) == []


def test_contains_ignores_case_and_accents_and_needs_every_string() -> None:
    assert failures(Expect(contains=("segunda VIA", "portal do contribuinte")), seen()) == []
    assert failures(Expect(contains=("emitída",)), seen()) == []
    [(name, reason)] = failures(Expect(contains=("Portal", "Pix")), seen())
    assert name == "contains"
    assert "'Pix'" in reason
    assert "Portal" not in reason


def test_contains_any_needs_one_string() -> None:
    assert failures(Expect(contains_any=("pix", "portal")), seen()) == []
    assert failures(Expect(contains_any=("pix", "boleto impresso")), seen())[0][0] == "contains_any"


def test_not_contains_fails_when_a_string_appears_in_any_case() -> None:
    assert failures(Expect(not_contains=("cpf",)), seen()) == []
    [(name, reason)] = failures(Expect(not_contains=("PORTAL DO",)), seen())
    assert name == "not_contains"
    assert "PORTAL DO" in reason


def test_cites_any_all_and_none() -> None:
    obs = seen(cited=("iptu-segunda-via", "iptu-calendario-descontos"))
    assert failures(Expect(cites_any=("x", "iptu-segunda-via")), obs) == []
    assert failures(Expect(cites_all=("iptu-segunda-via", "iptu-calendario-descontos")), obs) == []
    assert failures(Expect(cites_none=("interno-escala",)), obs) == []
    assert "cites none of 'x'" in failures(Expect(cites_any=("x",)), obs)[0][1]
    assert "does not cite 'y'" in failures(Expect(cites_all=("iptu-segunda-via", "y")), obs)[0][1]
    assert "must not cite 'iptu-segunda-via'" in failures(Expect(cites_none=("iptu-segunda-via",)), obs)[0][1]


@pytest.mark.parametrize(
    ("decision", "abstains", "ok"),
    [("abstained", True, True), ("answered", True, False), ("answered", False, True), ("abstained", False, False)],
)
def test_abstains_compares_with_the_decision(decision: str, abstains: bool, ok: bool) -> None:
    assert (failures(Expect(abstains=abstains), seen(decision=decision)) == []) is ok


def test_handoff_true_false_and_team() -> None:
    assert failures(Expect(handoff=True), seen(decision="handoff")) == []
    assert failures(Expect(handoff=True), seen(handoff_team="tributos")) == []
    assert failures(Expect(handoff=False), seen()) == []
    assert failures(Expect(handoff=True), seen())[0][0] == "handoff"
    assert failures(Expect(handoff=False), seen(decision="handoff"))[0][0] == "handoff"
    assert failures(Expect(handoff=True, handoff_team="Tributos"), seen(handoff_team="tributos")) == []
    reason = failures(Expect(handoff=True, handoff_team="saude"), seen(handoff_team="tributos"))[0][1]
    assert "expected team 'saude', got 'tributos'" in reason


def test_language_route_and_latency() -> None:
    assert failures(Expect(language="es"), seen(language="es")) == []
    assert failures(Expect(language="pt-BR"), seen(language="en"))[0] == (
        "language",
        "expected a reply in pt-BR, got en",
    )
    assert failures(Expect(route="smalltalk"), seen())[0][0] == "route"
    assert failures(Expect(max_latency_ms=100), seen(latency_ms=99.0)) == []
    assert failures(Expect(max_latency_ms=100), seen(latency_ms=250.0))[0] == (
        "max_latency_ms",
        "took 250 ms, limit 100 ms",
    )


CALLS = (
    {"name": "citizen_verify", "arguments": {"cpf": "529.982.247-25", "birth_date": "1985-03-14"}, "ok": True},
    {"name": "payment_list_debts", "arguments": {"status": "Aberto"}, "ok": True},
    {"name": "protocol_open", "arguments": {"service": "iluminacao_publica", "detail": {"pole": 12}}, "ok": False},
)


def tools(*calls: ExpectedCall, ordered: bool = False, exclusive: bool = False) -> Expect:
    return Expect(tool_calls=ToolCallsExpectation(calls, ordered=ordered, exclusive=exclusive))


def test_tool_calls_match_a_name_and_a_subset_of_the_arguments() -> None:
    assert failures(tools(ExpectedCall("payment_list_debts")), seen(tool_calls=CALLS)) == []
    assert failures(tools(ExpectedCall("payment_list_debts", {"status": "aberto"})), seen(tool_calls=CALLS)) == []
    assert failures(tools(ExpectedCall("protocol_open", {"detail": {"pole": 12}})), seen(tool_calls=CALLS)) == []
    [(name, reason)] = failures(tools(ExpectedCall("payment_list_debts", {"status": "pago"})), seen(tool_calls=CALLS))
    assert name == "tool_calls"
    assert "payment_list_debts(status='pago')" in reason
    assert "calls made:" in reason


def test_tool_call_digits_match_with_or_without_punctuation() -> None:
    assert failures(tools(ExpectedCall("citizen_verify", {"cpf": "52998224725"})), seen(tool_calls=CALLS)) == []


def test_tool_call_ok_is_checked_only_when_given() -> None:
    assert failures(tools(ExpectedCall("protocol_open")), seen(tool_calls=CALLS)) == []
    assert failures(tools(ExpectedCall("protocol_open", ok=True)), seen(tool_calls=CALLS))[0][0] == "tool_calls"


def test_ordered_tool_calls_must_appear_in_that_order() -> None:
    in_order = tools(ExpectedCall("citizen_verify"), ExpectedCall("payment_list_debts"), ordered=True)
    reversed_ = tools(ExpectedCall("payment_list_debts"), ExpectedCall("citizen_verify"), ordered=True)
    assert failures(in_order, seen(tool_calls=CALLS)) == []
    assert "expected in order" in failures(reversed_, seen(tool_calls=CALLS))[0][1]
    unordered = tools(ExpectedCall("payment_list_debts"), ExpectedCall("citizen_verify"))
    assert failures(unordered, seen(tool_calls=CALLS)) == []


def test_exclusive_tool_calls_forbid_any_other_call() -> None:
    only_verify = tools(ExpectedCall("citizen_verify"), exclusive=True)
    assert "unexpected extra call(s): payment_list_debts" in failures(only_verify, seen(tool_calls=CALLS))[0][1]
    assert failures(tools(exclusive=True), seen()) == []
    assert failures(tools(exclusive=True), seen(tool_calls=CALLS[:1]))[0][0] == "tool_calls"


def test_each_expected_call_needs_its_own_actual_call() -> None:
    twice = ToolCallsExpectation((ExpectedCall("payment_list_debts"), ExpectedCall("payment_list_debts")))
    result = match_tool_calls(twice, CALLS)
    assert (result.matched, result.expected, result.called) == (1, 2, 3)
    assert [c.name for c in result.missing] == ["payment_list_debts"]


def test_unordered_matching_finds_an_assignment_a_greedy_one_would_miss() -> None:
    calls = [{"name": "t", "arguments": {"a": 1, "b": 2}}, {"name": "t", "arguments": {"a": 1}}]
    expect = ToolCallsExpectation((ExpectedCall("t", {"a": 1}), ExpectedCall("t", {"b": 2})))
    assert match_tool_calls(expect, calls).matched == 2
