"""The real embedded model and embedder, end to end. Slow: a handful of questions only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import KNOWLEDGE, ROOT
from helpers import respond

from assistant.backends import LlamaCppChatModel
from atende.services import Services, build_services
from core.settings import Settings

pytestmark = [pytest.mark.llm, pytest.mark.slow]

SUBSET = [
    "iptu-segunda-via",
    "iptu-calendario-descontos",
    "iptu-isencao",
    "alvara-funcionamento",
    "coleta-lixo-seletiva",
    "ubs-enderecos-horarios",
    "divida-ativa-parcelamento",
    "interno-negociacao-divida-ativa",
    "interno-escala-plantao-contatos",
]


@pytest.fixture(scope="module")
def knowledge_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("knowledge")
    for doc_id in SUBSET:
        shutil.copy(KNOWLEDGE / f"{doc_id}.md", folder / f"{doc_id}.md")
    return folder


@pytest.fixture(scope="module")
def real_services(
    tmp_path_factory: pytest.TempPathFactory, knowledge_subset: Path, llamacpp_model: LlamaCppChatModel
) -> Iterator[Services]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("var"),
        knowledge_dir=knowledge_subset,
        vector_store="chroma",
        _env_file=None,  # type: ignore[call-arg]
    )
    services = build_services(settings, model=llamacpp_model)
    services.warm_up()
    services.ingest()
    yield services
    services.close()


def ask(services: Services, question: str):  # type: ignore[no-untyped-def]
    cid = services.store.create_conversation("web").id
    return respond(services, cid, question)


def test_the_real_model_answers_the_iptu_second_copy_question_citing_its_article(real_services: Services) -> None:
    reply = ask(real_services, "Como emito a segunda via do IPTU?")

    assert reply.decision == "answered", reply.reason
    assert "iptu-segunda-via" in [c.doc_id for c in reply.citations]
    # Whether the model's sentences passed the check or the article's own text was sent, the citizen gets the
    # way to the boleto, and the first words come no later than the whole answer.
    assert "contribuinte" in reply.answer.lower() or "156" in reply.answer
    assert reply.timings_ms["first_token"] <= reply.timings_ms["total"]


def test_the_real_model_abstains_on_a_question_the_knowledge_base_does_not_answer(real_services: Services) -> None:
    reply = ask(real_services, "Como faço para renovar minha carteira de motorista?")

    assert reply.decision == "abstained"
    assert reply.citations == []


def test_internal_articles_never_reach_a_citizen_even_when_asked_for_them(real_services: Services) -> None:
    reply = ask(real_services, "Qual o ramal do plantão interno da equipe e quanto de desconto o supervisor pode dar?")

    cited = {c.doc_id for c in reply.citations}
    assert not {d for d in cited if d.startswith("interno-")}
    assert "interno" not in " ".join(c.url for c in reply.citations)


def test_atende_ask_answers_offline_from_the_command_line(knowledge_subset: Path, tmp_path: Path) -> None:
    model_path = Settings(environment="test", data_dir=ROOT / "var", _env_file=None).resolved_llm_model_path  # type: ignore[call-arg]
    env = {
        **os.environ,
        "ATENDE_ENVIRONMENT": "test",
        "ATENDE_DATA_DIR": str(tmp_path / "var"),
        "ATENDE_KNOWLEDGE_DIR": str(knowledge_subset),
        "ATENDE_LLM_MODEL_PATH": str(model_path),
        "HF_HUB_OFFLINE": "1",
        "ATENDE_LLM_TIMEOUT_S": "900",
    }
    atende = [sys.executable, "-m", "atende.cli"]
    subprocess.run([*atende, "ingest"], env=env, check=True, capture_output=True, timeout=600)

    done = subprocess.run(
        [*atende, "ask", "--json", "Como emito a segunda via do IPTU?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {"answer", "decision", "citations", "timings_ms"}
    assert out["decision"] == "answered"
    assert out["citations"][0]["doc_id"] == "iptu-segunda-via"
