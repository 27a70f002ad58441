"""Settings: defaults, ATENDE_* environment variables, production guards and secrets that never leak."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from conftest import production_values
from cryptography.fernet import Fernet
from pydantic import ValidationError

from core import keys
from core.lgpd.crypto import DecryptionError, FieldCipher, cipher_from_settings, derive_key
from core.settings import DEMO_PIX_KEY, Settings

REAL_SECRET = "d1f5c0a8e8b24f0f9b4a7c6e2d9f1a3b"
API_KEY = "sk-teste-9f8e7d6c5b4a"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A developer's or CI's ATENDE_* variables must not decide these tests; generated keys land in tmp_path/var.
    for name in list(os.environ):
        if name.upper().startswith("ATENDE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **{"environment": "development", **values})  # type: ignore[call-arg, arg-type]


def production(**values: object) -> Settings:
    return Settings(_env_file=None, **{**production_values(), **values})  # type: ignore[call-arg, arg-type]


def test_defaults_keep_every_file_under_the_data_directory() -> None:
    s = settings()

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


# Fail closed: production is the default and needs real, independent keys


def test_the_environment_defaults_to_production_and_refuses_to_start_without_keys() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]

    message = str(refused.value)
    for variable in ("ATENDE_SECRET_KEY", "ATENDE_ENCRYPTION_KEYS", "ATENDE_BLIND_INDEX_KEY"):
        assert f"{variable} is not set" in message
    assert "atende lgpd generate-key" in message
    assert "secrets.token_urlsafe(48)" in message
    assert "ATENDE_ENVIRONMENT=development" in message
    assert not Path("var").exists()


def test_development_is_read_from_the_environment_or_a_dotenv_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("ATENDE_ENVIRONMENT=development\n")

    assert Settings().environment == "development"
    monkeypatch.setenv("ATENDE_ENVIRONMENT", "test")
    assert Settings(_env_file=None).environment == "test"  # type: ignore[call-arg]


def test_production_accepts_real_keys_and_the_organizations_own_receiver() -> None:
    values = production_values()

    s = production(payment_bank_code="001")

    assert s.environment == "production"
    assert s.payment_bank_code == "001"  # Banco do Brasil is a real bank: chosen explicitly, it is accepted
    assert s.payment_pix_key == values["payment_pix_key"]
    assert cipher_from_settings(s).decrypt(cipher_from_settings(s).encrypt("x")) == "x"


@pytest.mark.parametrize(
    "value",
    [
        "x",
        "dev-secret-change-me",
        "  CHANGETHIS ",
        "",
        "s" * 40,
        "ab" * 20,
        "dev-secret-change-me-dev-secret-change-me",
    ],
)
@pytest.mark.parametrize("variable", ["secret_key", "blind_index_key"])
def test_production_refuses_a_missing_placeholder_short_or_repetitive_key(variable: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"ATENDE_{variable.upper()}"):
        production(**{variable: value})


def test_production_refuses_the_secret_key_reused_as_the_blind_index_key() -> None:
    secret = production_values()["secret_key"]

    with pytest.raises(ValidationError, match="ATENDE_BLIND_INDEX_KEY must be its own key"):
        production(secret_key=secret, blind_index_key=secret)


@pytest.mark.parametrize(
    "value",
    ["", "not-a-key", base64.urlsafe_b64encode(bytes(32)).decode(), f"{Fernet.generate_key().decode()},short"],
    ids=["missing", "malformed", "all-zero", "second-malformed"],
)
def test_production_refuses_encryption_keys_that_are_missing_malformed_or_not_random(value: str) -> None:
    with pytest.raises(ValidationError, match="ATENDE_ENCRYPTION_KEYS") as refused:
        production(encryption_keys=value)

    assert "short" not in str(refused.value).replace("too short", "")


@pytest.mark.parametrize(("pix", "bank"), [(DEMO_PIX_KEY, "104"), ("", "104"), ("pix@prefeitura.gov.br", "")])
def test_production_refuses_the_demo_pix_receiver(pix: str, bank: str) -> None:
    with pytest.raises(ValidationError, match="ATENDE_PAYMENT_"):
        production(payment_pix_key=pix, payment_bank_code=bank)


def test_a_refused_setting_never_prints_the_other_secrets() -> None:
    with pytest.raises(ValidationError) as refused:
        production(secret_key="x", openai_api_key=API_KEY, blind_index_key=REAL_SECRET + REAL_SECRET)

    assert API_KEY not in str(refused.value)
    assert REAL_SECRET not in str(refused.value)


def test_even_development_refuses_the_public_placeholder_secret() -> None:
    with pytest.raises(ValidationError, match="ATENDE_SECRET_KEY is a public placeholder"):
        settings(secret_key="dev-secret-change-me")


# Development and test make their own random keys, kept per data directory


def test_development_generates_random_keys_once_and_keeps_them_in_a_private_file(tmp_path: Path) -> None:
    first = settings(data_dir=tmp_path / "var")
    again = settings(data_dir=tmp_path / "var")

    path = tmp_path / "var" / "keys.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for name in ("secret_key", "encryption_keys", "blind_index_key"):
        assert getattr(first, name).get_secret_value() == getattr(again, name).get_secret_value()
    assert (
        keys.production_problems(
            {
                "ATENDE_SECRET_KEY": first.secret_key.get_secret_value(),
                "ATENDE_ENCRYPTION_KEYS": first.encryption_keys.get_secret_value(),
                "ATENDE_BLIND_INDEX_KEY": first.blind_index_key.get_secret_value(),
            }
        )
        == []
    )
    token = cipher_from_settings(first).encrypt("529.982.247-25")
    assert cipher_from_settings(again).decrypt(token) == "529.982.247-25"


def test_the_keys_are_generated_with_a_warning_only_the_first_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings(environment="test", data_dir=tmp_path / "var")
    settings(environment="test", data_dir=tmp_path / "var")

    assert caplog.text.count("Generated random test keys") == 1
    assert "keys.env" in caplog.text


def test_two_data_directories_never_share_a_key(tmp_path: Path) -> None:
    one, other = settings(data_dir=tmp_path / "one"), settings(data_dir=tmp_path / "two")

    for name in ("secret_key", "encryption_keys", "blind_index_key"):
        assert getattr(one, name).get_secret_value() != getattr(other, name).get_secret_value()
    assert cipher_from_settings(one).blind_index("52998224725", kind="cpf") != cipher_from_settings(other).blind_index(
        "52998224725", kind="cpf"
    )


def test_no_personal_data_key_follows_from_public_constants(tmp_path: Path) -> None:
    # What the former defaults gave anybody who read the source: keys derived from the placeholder secret.
    public = base64.urlsafe_b64encode(derive_key("dev-secret-change-me", "field-encryption/dev")).decode()
    cipher = cipher_from_settings(settings(data_dir=tmp_path / "var"))

    with pytest.raises(DecryptionError):
        cipher.decrypt(Fernet(public.encode()).encrypt(b"529.982.247-25").decode())
    public_index = FieldCipher([public], derive_key("dev-secret-change-me", "blind-index"))
    assert cipher.blind_index("52998224725", kind="cpf") != public_index.blind_index("52998224725", kind="cpf")


def test_the_blind_index_depends_on_its_own_key_only(tmp_path: Path) -> None:
    index_key = keys.new_keys()["ATENDE_BLIND_INDEX_KEY"]
    one = settings(data_dir=tmp_path / "one", blind_index_key=index_key)
    other = settings(data_dir=tmp_path / "two", blind_index_key=index_key)

    assert one.secret_key.get_secret_value() != other.secret_key.get_secret_value()
    assert cipher_from_settings(one).blind_index("52998224725", kind="cpf") == cipher_from_settings(other).blind_index(
        "52998224725", kind="cpf"
    )


def test_keys_given_explicitly_in_development_are_used_and_nothing_is_written(tmp_path: Path) -> None:
    given = production_values()

    s = settings(
        data_dir=tmp_path / "var",
        secret_key=given["secret_key"],
        encryption_keys=given["encryption_keys"],
        blind_index_key=given["blind_index_key"],
    )

    assert s.encryption_keys.get_secret_value() == given["encryption_keys"]
    assert not (tmp_path / "var" / "keys.env").exists()


def test_processes_racing_to_create_the_keys_all_read_the_winners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "var"
    winner = keys.new_keys()
    real_link = os.link

    def another_process_wins(source: str, target: str) -> None:
        Path(target).write_text("".join(f"{name}={value}\n" for name, value in winner.items()))
        real_link(source, target)

    monkeypatch.setattr(os, "link", another_process_wins)

    assert keys.development_keys(data_dir, "development") == winner
    assert [p.name for p in data_dir.iterdir()] == ["keys.env"]  # the loser's draft is gone


def test_development_demo_payment_receiver_is_filled_in_outside_production() -> None:
    s = settings()

    assert s.payment_pix_key == DEMO_PIX_KEY
    assert s.payment_bank_code == "001"


def test_secrets_never_appear_when_settings_are_printed_or_serialised() -> None:
    s = production(secret_key=REAL_SECRET + "-" + REAL_SECRET, openai_api_key=API_KEY)

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
    env_file.write_text("ATENDE_ENVIRONMENT=test\nATENDE_LOG_LEVEL=DEBUG\nATENDE_LLM_BACKEND=openai\n")

    s = Settings(_env_file=env_file)  # type: ignore[call-arg]

    assert s.log_level == "DEBUG"
    assert s.llm_local is False
