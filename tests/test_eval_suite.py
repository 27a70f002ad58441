"""Suite files: the schema, errors that name the line, defaults, and every committed suite."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from eval.suite import SuiteError, load_suite, load_suites, parse_suite

ROOT = Path(__file__).resolve().parent.parent
SUITES = sorted((ROOT / "eval" / "suites").glob("*.yaml"))


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_suite(textwrap.dedent(text), "s.yaml")


def error_of(text: str) -> SuiteError:
    with pytest.raises(SuiteError) as info:
        parse(text)
    return info.value


VALID = textwrap.dedent(
    """\
    suite: demo
    cases:
      - id: one
        turns:
          - user: "oi"
            expect:
              route: smalltalk
    """
)


def test_a_minimal_suite_loads_with_web_as_the_default_channel() -> None:
    suite = parse(VALID)
    assert suite.name == "demo"
    assert suite.cases[0].turns[0].channel == "web"
    assert suite.cases[0].turns[0].expect.route == "smalltalk"
    assert not suite.seed


def test_an_unknown_key_in_an_expectation_is_an_error_naming_its_line() -> None:
    err = error_of(VALID.replace("route: smalltalk", "route: smalltalk\n          citez: {any: [x]}"))
    assert len(err.problems) == 1
    assert err.problems[0].line == 8
    assert "unknown key 'citez'" in str(err)
    assert str(err).startswith("s.yaml:8:")


def test_unknown_keys_at_every_level_are_each_reported_with_their_line() -> None:
    err = error_of(
        """\
        suite: demo
        colour: blue
        cases:
          - id: one
            priority: high
            turns:
              - user: "oi"
                speaker: bob
        """
    )
    assert [(p.line, p.message.split(" in ")[0]) for p in err.problems] == [
        (2, "unknown key 'colour'"),
        (5, "unknown key 'priority'"),
        (8, "unknown key 'speaker'"),
    ]


def test_a_wrong_type_is_reported_at_its_line_with_the_path() -> None:
    err = error_of(VALID.replace("route: smalltalk", "abstains: sometimes"))
    assert err.problems[0].line == 7
    assert "cases[0].turns[0].expect.abstains" in err.problems[0].message


def test_a_misspelt_handoff_team_names_the_bad_key() -> None:
    err = error_of(VALID.replace("route: smalltalk", "handoff: {teem: tributos}"))
    assert err.problems[0].line == 7
    assert "teem" in err.problems[0].message


def test_a_duplicate_case_id_names_both_lines() -> None:
    err = error_of(VALID + "  - id: one\n    turns:\n      - user: x\n")
    assert err.problems[0].line == 8
    assert "already used on line 3" in err.problems[0].message


def test_a_duplicate_key_is_an_error_rather_than_silently_overwritten() -> None:
    err = error_of(VALID.replace("route: smalltalk", "abstains: true\n          abstains: false"))
    assert err.problems[0].line == 8
    assert "duplicate key 'abstains'" in err.problems[0].message


def test_broken_yaml_is_reported_with_its_line() -> None:
    err = error_of(VALID.replace('"oi"', '"oi'))
    assert err.problems[0].line >= 5
    assert "invalid YAML" in err.problems[0].message


def test_a_missing_required_field_is_reported() -> None:
    err = error_of("suite: demo\ncases:\n  - id: one\n")
    assert "'turns' is a required property" in str(err)


def test_defaults_fill_channel_add_tags_and_merge_expectations_under_each_turn() -> None:
    suite = parse(
        """\
        suite: demo
        defaults:
          channel: whatsapp
          tags: [shared]
          expect: {not_contains: ["NAO_SEI"], max_latency_ms: 500}
        cases:
          - id: one
            tags: [own]
            turns:
              - user: a
              - user: b
                channel: web
                expect: {max_latency_ms: 100}
        """
    )
    case = suite.cases[0]
    assert case.tags == ("own", "shared")
    assert [t.channel for t in case.turns] == ["whatsapp", "web"]
    assert case.turns[0].expect.not_contains == ("NAO_SEI",)
    assert case.turns[0].expect.max_latency_ms == 500
    assert case.turns[1].expect.max_latency_ms == 100


def test_a_citizen_or_a_tool_expectation_makes_the_suite_need_seeded_data() -> None:
    with_tools = VALID.replace("route: smalltalk", "tool_calls: {calls: [{name: payment_list_debts}]}")
    assert parse(with_tools).seed
    assert parse(VALID.replace("cases:", "seed: true\ncases:")).seed


@pytest.mark.parametrize("path", SUITES, ids=[p.name for p in SUITES])
def test_every_committed_suite_is_valid(path: Path) -> None:
    assert load_suite(path).cases


def test_the_documented_example_is_a_valid_suite() -> None:
    suite = load_suite(ROOT / "eval" / "schema" / "example.yaml")
    assert suite.seed
    calls = suite.cases[1].turns[0].expect.tool_calls
    assert calls is not None
    assert calls.ordered
    assert calls.calls[0].ok is True


def test_the_committed_suites_hold_at_least_a_hundred_cases_of_every_required_kind() -> None:
    suites = load_suites([ROOT / "eval" / "suites"])
    cases = [c for s in suites for c in s.cases]
    tags = {t for c in cases for t in c.tags}
    assert len(cases) >= 100
    assert {"answerable", "unanswerable", "followup", "typo", "slang", "es", "en", "injection", "internal"} <= tags
    assert sum(len(c.turns) > 1 for c in cases) >= 10


def test_loading_a_folder_reports_every_bad_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("suite: a\ncases: []\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("suite: b\nbogus: 1\ncases: [{id: x, turns: [{user: y}]}]\n", encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        load_suites([tmp_path])
    assert "a.yaml:2" in str(info.value)
    assert "b.yaml:2: unknown key 'bogus'" in str(info.value)
