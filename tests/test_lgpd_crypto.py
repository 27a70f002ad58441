"""Field encryption at rest, blind indexes and key rotation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import production_values
from cryptography.fernet import Fernet
from lgpd_support import CPF, CPF_DIGITS, lgpd_settings
from pydantic import SecretStr, ValidationError
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, insert, select

from atende.services import build_services
from core.db import make_engine
from core.keys import new_keys
from core.lgpd.crypto import (
    ConfigurationError,
    DecryptionError,
    EncryptedColumn,
    FieldCipher,
    cipher_from_settings,
    generate_key,
    rotate_columns,
)

INDEX_KEY = b"k" * 32


def cipher(*keys: str) -> FieldCipher:
    return FieldCipher(list(keys), INDEX_KEY)


def test_a_value_round_trips_and_its_token_never_contains_it() -> None:
    c = cipher(generate_key())

    token = c.encrypt(CPF)

    assert CPF not in token
    assert CPF_DIGITS not in token
    assert c.decrypt(token) == CPF


def test_encrypting_twice_gives_different_tokens() -> None:
    c = cipher(generate_key())

    assert c.encrypt(CPF) != c.encrypt(CPF)


def test_a_value_from_an_unknown_key_or_altered_fails_clearly() -> None:
    token = cipher(generate_key()).encrypt(CPF)

    with pytest.raises(DecryptionError):
        cipher(generate_key()).decrypt(token)
    with pytest.raises(DecryptionError):
        cipher(generate_key()).decrypt(token[:-4] + "AAAA")


def test_the_blind_index_matches_any_spelling_of_a_cpf_and_depends_on_the_key() -> None:
    c = cipher(generate_key())

    assert c.blind_index(CPF, kind="cpf") == c.blind_index(CPF_DIGITS, kind="cpf")
    assert c.blind_index(CPF, kind="cpf") != c.blind_index("111.444.777-35", kind="cpf")
    assert c.blind_index(CPF, kind="cpf") != FieldCipher([generate_key()], b"x" * 32).blind_index(CPF, kind="cpf")
    assert c.blind_index("Maria  da Silva", kind="name") == c.blind_index("maria da silva", kind="name")
    # Domains are separated: the same text under another kind gives another index.
    assert c.blind_index(CPF_DIGITS, kind="cpf") != c.blind_index(CPF_DIGITS, kind="digits")


def test_rotation_moves_a_token_to_the_new_primary_key() -> None:
    old, new = generate_key(), generate_key()
    token = cipher(old).encrypt(CPF)
    both = cipher(new, old)

    assert not both.is_current(token)
    rotated = both.rotate(token)
    assert both.is_current(rotated)
    assert cipher(new).decrypt(rotated) == CPF


# Settings


def test_development_without_keys_uses_the_random_keys_of_its_data_directory(tmp_path: Path) -> None:
    settings = lgpd_settings(tmp_path, environment="development")

    first, second = cipher_from_settings(settings), cipher_from_settings(lgpd_settings(tmp_path))

    assert second.decrypt(first.encrypt("x")) == "x"
    assert (tmp_path / "var" / "keys.env").exists()


def test_production_refuses_to_start_without_encryption_keys(tmp_path: Path) -> None:
    values = {**production_values(), "encryption_keys": ""}

    with pytest.raises(ValidationError, match="ATENDE_ENCRYPTION_KEYS"):
        lgpd_settings(tmp_path, **values)


def test_production_refuses_to_start_without_a_blind_index_key(tmp_path: Path) -> None:
    values = {**production_values(), "blind_index_key": ""}

    with pytest.raises(ValidationError, match="ATENDE_BLIND_INDEX_KEY"):
        lgpd_settings(tmp_path, **values)


def test_a_cipher_is_never_built_without_both_keys(tmp_path: Path) -> None:
    settings = lgpd_settings(tmp_path).model_copy(update={"blind_index_key": SecretStr("")})

    with pytest.raises(ConfigurationError, match="ATENDE_BLIND_INDEX_KEY is not set"):
        cipher_from_settings(settings)
    with pytest.raises(ConfigurationError, match="ATENDE_ENCRYPTION_KEYS is not set"):
        cipher_from_settings(settings.model_copy(update={"encryption_keys": SecretStr("")}))


def test_a_malformed_key_is_refused_at_start_up_without_echoing_it(tmp_path: Path) -> None:
    settings = lgpd_settings(tmp_path, encryption_keys=f"{generate_key()},not-a-key-at-all")

    with pytest.raises(ConfigurationError, match="key #2 is not a valid Fernet key") as error:
        cipher_from_settings(settings)

    assert "not-a-key-at-all" not in str(error.value)
    assert error.value.__cause__ is None


def test_configured_keys_are_used_primary_first(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    settings = lgpd_settings(tmp_path, encryption_keys=f"{new}, {old}", blind_index_key="i" * 32)

    c = cipher_from_settings(settings)

    assert Fernet(new.encode()).decrypt(c.encrypt("x").encode()) == b"x"
    assert c.decrypt(Fernet(old.encode()).encrypt(b"y").decode()) == "y"


# Rotation over a table


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def secrets_table(engine: Engine) -> Table:
    table = Table("citizen_secrets", MetaData(), Column("id", Integer, primary_key=True), Column("cpf", Text))
    table.create(engine)
    return table


def test_rotate_columns_re_encrypts_every_row_in_batches_and_is_resumable(engine: Engine) -> None:
    old, new = generate_key(), generate_key()
    table = secrets_table(engine)
    values = [f"{n:011d}" for n in range(7)]
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": n, "cpf": cipher(old).encrypt(v)} for n, v in enumerate(values)])
        connection.execute(insert(table), [{"id": 99, "cpf": None}])
    column = EncryptedColumn("citizen_secrets", "cpf")

    (report,) = rotate_columns(engine, cipher(new, old), [column], batch_size=3)
    (again,) = rotate_columns(engine, cipher(new, old), [column], batch_size=3)

    assert (report.rotated, report.already_current) == (7, 0)
    assert (again.rotated, again.already_current) == (0, 7)
    with engine.connect() as connection:
        stored = connection.execute(select(table.c.cpf).where(table.c.cpf.is_not(None)).order_by(table.c.id)).scalars()
        assert [cipher(new).decrypt(token) for token in stored] == values


def test_rotation_stops_on_a_value_no_key_opens_and_leaves_its_batch_untouched(engine: Engine) -> None:
    old, new, lost = generate_key(), generate_key(), generate_key()
    table = secrets_table(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": 1, "cpf": cipher(old).encrypt("a")}])
        connection.execute(insert(table), [{"id": 2, "cpf": cipher(lost).encrypt("b")}])

    with pytest.raises(DecryptionError):
        rotate_columns(engine, cipher(new, old), [EncryptedColumn("citizen_secrets", "cpf")])

    with engine.connect() as connection:
        first = connection.execute(select(table.c.cpf).where(table.c.id == 1)).scalar_one()
    assert not cipher(new, old).is_current(first)


def test_the_assistants_cpf_reference_is_keyed_by_the_personal_data_key_not_the_secret_key(tmp_path: Path) -> None:
    shared = {"encryption_keys": generate_key(), "blind_index_key": new_keys()["ATENDE_BLIND_INDEX_KEY"]}
    built = [
        build_services(lgpd_settings(tmp_path / name, secret_key=new_keys()["ATENDE_SECRET_KEY"], **shared))
        for name in ("one", "other")
    ]
    try:
        one, other = (services.assistant.actions for services in built)
        assert one is not None
        assert other is not None
        assert one._cpf_key(CPF) == other._cpf_key(CPF)
        assert one._cpf_key(CPF) != one._cpf_key("111.444.777-35")
    finally:
        for services in built:
            services.close()
