"""From exported turn logs to a regression suite, with personal data masked."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from helpers import respond
from typer.testing import CliRunner

from atende import cli
from atende.logs_export import export_turns
from atende.services import Services
from eval.from_logs import read_turns, suite_from_turns, write_suite
from eval.suite import load_suite

CPF = "529.982.247-25"


def turn(
    conversation: str, n: int, text: str, decision: str, cited: tuple[str, ...] = (), **kw: object
) -> dict[str, object]:
    return {
        "id": n,
        "conversation_id": conversation,
        "channel": "web",
        "created_at": f"2026-11-01T10:00:0{n}+00:00",
        "user_text": text,
        "decision": decision,
        "citations": [{"doc_id": d} for d in cited],
        "error": None,
        **kw,
    }


ROWS = [
    turn("c1", 1, "como tiro a segunda via do IPTU?", "answered", ("iptu-segunda-via",)),
    turn("c2", 2, "quanto custa um passaporte?", "abstained"),
    turn("c1", 3, f"e com o cpf {CPF}?", "answered", ("iptu-segunda-via",)),
    turn("c3", 4, "quero falar com um atendente", "handoff", channel="whatsapp"),
    turn("c4", 5, "oi", "answered", error="LLMError: timeout"),
]


def test_each_conversation_becomes_a_case_that_expects_what_happened_then() -> None:
    suite = suite_from_turns(ROWS, name="regression")
    cases = {c["turns"][0]["user"]: c for c in suite["cases"]}

    iptu = cases["como tiro a segunda via do IPTU?"]
    assert [t["user"] for t in iptu["turns"]] == ["como tiro a segunda via do IPTU?", "e com o cpf [CPF]?"]
    assert iptu["turns"][1]["expect"] == {"abstains": False, "cites": {"any": ["iptu-segunda-via"]}}
    assert cases["quanto custa um passaporte?"]["turns"][0]["expect"] == {"abstains": True}
    handoff = cases["quero falar com um atendente"]
    assert handoff["turns"][0]["expect"] == {"handoff": True}
    assert handoff["channel"] == "whatsapp"
    assert "expect" not in cases["oi"]["turns"][0]  # a failed turn sets no expectation
    assert all(re.fullmatch(r"conv-[0-9a-f]{12}", c["id"]) for c in suite["cases"])  # ids are one-way digests


def test_decisions_and_limit_filter_the_conversations() -> None:
    assert len(suite_from_turns(ROWS, decisions=["abstained"])["cases"]) == 1
    assert len(suite_from_turns(ROWS, limit=2)["cases"]) == 2


def test_the_written_suite_is_valid_and_holds_no_personal_data(tmp_path: Path) -> None:
    rows = [*ROWS, turn("c5", 6, "meu email é ana@example.com e o fone (19) 99876-5432", "abstained")]
    path = write_suite(suite_from_turns(rows, name="regression"), tmp_path / "r.yaml")

    body = path.read_text(encoding="utf-8")
    assert CPF not in body
    assert "ana@example.com" not in body
    assert "99876-5432" not in body
    assert len(load_suite(path).cases) == 5


def test_an_export_of_the_real_turn_log_round_trips_through_csv_and_jsonl(services: Services, tmp_path: Path) -> None:
    cid = services.store.create_conversation("web").id
    respond(services, cid, "quero falar com um atendente", channel="web")
    for fmt in ("jsonl", "csv"):
        buffer = io.StringIO()
        export_turns(services.store, buffer, fmt=fmt)  # type: ignore[arg-type]
        path = tmp_path / f"turns.{fmt}"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        suite = suite_from_turns(read_turns(path))
        assert suite["cases"][0]["turns"][0] == {"user": "quero falar com um atendente", "expect": {"handoff": True}}


def test_atende_eval_from_logs_writes_a_suite(tmp_path: Path) -> None:
    logs = tmp_path / "turns.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    out = tmp_path / "suite.yaml"

    result = CliRunner().invoke(cli.app, ["eval", "from-logs", str(logs), "--out", str(out), "--name", "mined"])

    assert result.exit_code == 0, result.output
    assert "4 case(s) from 5 turn(s)" in result.stdout
    assert load_suite(out).name == "mined"


def test_atende_eval_from_logs_says_so_when_nothing_matches(tmp_path: Path) -> None:
    logs = tmp_path / "turns.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["eval", "from-logs", str(logs), "--decisions", "nothing"])
    assert result.exit_code == 1
    assert "no conversation matched" in result.output


@pytest.mark.parametrize("body", ["{broken", "[1, 2]"])
def test_atende_eval_from_logs_rejects_an_unreadable_export(tmp_path: Path, body: str) -> None:
    logs = tmp_path / "turns.jsonl"
    logs.write_text(body, encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["eval", "from-logs", str(logs)])
    assert result.exit_code == 2
    assert "cannot read" in result.output
    assert "line 1" in result.output
