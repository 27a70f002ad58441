"""Settings: defaults, ATENDE_* environment variables, production guards and secrets that never leak."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from atende.settings import Settings

REAL_SECRET = "d1f5c0a8e8b24f0f9b4a7c6e2d9f1a3b"
API_KEY = "sk-teste-9f8e7d6c5b4a"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's or CI's ATENDE_* variables must not decide these tests.
    for name in list(os.environ):
        if name.upper().startswith("ATENDE_"):
            monkeypatch.delenv(name)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_defaults_keep_every_file_under_the_data_directory() -> None:
    s = settings()

    assert s.environment == "development"
    assert s.data_dir == Path("var")
    assert s.resolved_database_url == "sqlite:///var/atende.db"
    assert s.resolved_chroma_path == Path("var") / "chroma"
    assert s.resolved_llm_model_path == Path("var") / "models" / f"{s.llm_model}.gguf"


def test_paths_follow_a_moved_data_directory(tmp_path: Path) -> None:
    s = settings(data_dir=tmp_path)

    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'atende.db').as_posix()}"
    assert s.resolved_chroma_path == tmp_path / "chroma"


def test_explicit_locations_win_over_the_data_directory(tmp_path: Path) -> None:
    s = settings(database_url="postgresql+psycopg://atende@db/atende", chroma_path=tmp_path / "vetores")

    assert s.resolved_database_url == "postgresql+psycopg://atende@db/atende"
    assert s.resolved_chroma_path == tmp_path / "vetores"


def test_atende_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATENDE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ATENDE_VECTOR_STORE", "chroma_http")
    monkeypatch.setenv("ATENDE_RETRIEVAL_TOP_K", "7")
    monkeypatch.setenv("ATENDE_ORGANIZATION_NAME", "Prefeitura de Vila Nova")
    monkeypatch.setenv("DATA_DIR", "/sem-prefixo-nao-vale")

    s = settings()

    assert s.data_dir == tmp_path
    assert s.vector_store == "chroma_http"
    assert s.retrieval_top_k == 7
    assert s.organization_name == "Prefeitura de Vila Nova"


def test_an_invalid_environment_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATENDE_VECTOR_STORE", "faiss")

    with pytest.raises(ValidationError, match="vector_store"):
        settings()


@pytest.mark.parametrize("placeholder", ["dev-secret-change-me", "changeme", "  CHANGETHIS ", ""])
def test_production_refuses_a_placeholder_secret(placeholder: str) -> None:
    with pytest.raises(ValidationError, match="ATENDE_SECRET_KEY"):
        settings(environment="production", secret_key=placeholder)


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="ATENDE_SECRET_KEY"):
        settings(environment="production")


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATENDE_ENVIRONMENT", "production")
    monkeypatch.setenv("ATENDE_SECRET_KEY", REAL_SECRET)

    s = settings()

    assert s.environment == "production"
    assert s.secret_key.get_secret_value() == REAL_SECRET


def test_development_tolerates_the_placeholder_secret() -> None:
    assert settings().secret_key.get_secret_value() == "dev-secret-change-me"


def test_secrets_never_appear_when_settings_are_printed_or_serialised() -> None:
    s = settings(environment="production", secret_key=REAL_SECRET, openai_api_key=API_KEY)

    for rendered in (s.model_dump_json(), repr(s), str(s), str(s.model_dump())):
        assert REAL_SECRET not in rendered
        assert API_KEY not in rendered
    assert s.openai_api_key.get_secret_value() == API_KEY


def test_llamacpp_counts_as_a_local_model_and_openai_as_an_external_one() -> None:
    assert settings(llm_backend="llamacpp").llm_local is True
    assert settings(llm_backend="openai").llm_local is False


def test_an_openai_compatible_server_run_in_house_can_be_declared_local() -> None:
    assert settings(llm_backend="openai", llm_is_local=True).llm_local is True
    assert settings(llm_backend="llamacpp", llm_is_local=False).llm_local is False


def test_a_dotenv_file_is_read_when_asked_for(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ATENDE_LOG_LEVEL=DEBUG\nATENDE_LLM_BACKEND=openai\n")

    s = Settings(_env_file=env_file)  # type: ignore[call-arg]

    assert s.log_level == "DEBUG"
    assert s.llm_local is False
