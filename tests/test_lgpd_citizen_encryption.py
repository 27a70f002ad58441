"""The citizens' personal fields are encrypted at rest, still found by CPF, and survive key rotation and migration.

On SQLite and PostgreSQL: the raw rows are read with plain SQL, never through the ORM.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from lgpd_support import lgpd_services, lgpd_settings
from mcp import Client
from sqlalchemy import JSON, Date, bindparam, text

from atende.schema import metadata
from atende.services import Services
from core.audit import MemoryAuditSink
from core.data_subjects import DataSubject
from core.db import make_engine, make_session_factory
from core.lgpd.crypto import FieldCipher, generate_key
from core.migrate import downgrade, upgrade
from core.principals import Principal
from core.settings import Settings
from domain.seed import CITIZENS, DemoCitizen, seed
from domain.wiring import Domain, build_domain
from tools_mcp.server import build_mcp_server
from tools_mcp.testing import call

pytestmark = pytest.mark.anyio

MARIA = CITIZENS[0]
INDEX_KEY = "blind-index-key-" + "i" * 24
STAFF = Principal(kind="staff", subject="user:7", scopes=frozenset({"citizens:read", "citizens:pii"}))


def settings_for(tmp_path: Path, url: str, keys: str, index_key: str = INDEX_KEY) -> Settings:
    return lgpd_settings(tmp_path, url, encryption_keys=keys, blind_index_key=index_key)


def open_services(settings: Settings) -> Services:
    services = lgpd_services(settings)
    assert services.domain is not None
    return services


def domain_of(services: Services) -> Domain:
    assert services.domain is not None
    return services.domain


def raw_citizens(url: str) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(text("SELECT * FROM citizens ORDER BY id"))]
    finally:
        engine.dispose()


def clear_values(person: DemoCitizen) -> list[str]:
    """Every spelling of a demo citizen's personal data that must not appear in a stored row."""
    phone_digits = "".join(ch for ch in person.phone if ch.isdigit())
    return [
        person.cpf,
        f"{person.cpf[:3]}.{person.cpf[3:6]}.{person.cpf[6:9]}-{person.cpf[9:]}",
        person.name,
        person.birth_date.isoformat(),
        person.birth_date.strftime("%d/%m/%Y"),
        person.phone,
        phone_digits,
        person.email,
        person.email.split("@")[0],
    ]


def assert_nothing_in_clear(url: str) -> None:
    rows = raw_citizens(url)
    assert len(rows) >= len(CITIZENS)
    stored = "\n".join(repr(row) for row in rows)
    for person in CITIZENS:
        for value in clear_values(person):
            assert value not in stored, f"{value!r} is stored in clear"
    for row in rows:
        assert not {"cpf", "name", "birth_date", "phone", "email", "channel_ids"} & set(row)
        assert row["cpf_encrypted"].startswith("gAAAAA")  # a Fernet token


def test_the_citizens_table_holds_no_clear_cpf_name_birth_date_phone_or_email(
    database_url: str, tmp_path: Path
) -> None:
    services = open_services(settings_for(tmp_path, database_url, generate_key()))
    try:
        seed(domain_of(services))
        assert_nothing_in_clear(database_url)
        maria = domain_of(services).citizens.by_cpf(MARIA.cpf)
    finally:
        services.close()

    assert maria is not None
    assert (maria.cpf, maria.name, maria.birth_date, maria.phone, maria.email) == (
        MARIA.cpf,
        MARIA.name,
        MARIA.birth_date,
        MARIA.phone,
        MARIA.email,
    )


def test_seeding_again_rewrites_no_encrypted_value(database_url: str, tmp_path: Path) -> None:
    services = open_services(settings_for(tmp_path, database_url, generate_key()))
    try:
        seed(domain_of(services))
        before = raw_citizens(database_url)
        report = seed(domain_of(services))
    finally:
        services.close()

    assert report.created == {}
    assert raw_citizens(database_url) == before


async def test_lookup_verification_and_export_by_cpf_find_the_encrypted_citizen(
    database_url: str, tmp_path: Path
) -> None:
    services = open_services(settings_for(tmp_path, database_url, generate_key()))
    try:
        domain = domain_of(services)
        seed(domain)
        async with Client(build_mcp_server(domain, local_principal=STAFF)) as client:
            looked_up = await call(client, "citizen_lookup", {"cpf": "983.690.060-86"})
        verified = domain.verifier.verify("c1", MARIA.cpf, MARIA.birth_date.strftime("%d/%m/%Y"), actor="test")
        assert services.lgpd is not None
        export = services.lgpd.rights.export(DataSubject(cpf=MARIA.cpf), actor="cli:test")
    finally:
        services.close()

    assert looked_up.ok, looked_up.data
    assert looked_up.data["name"] == MARIA.name
    assert looked_up.data["cpf_masked"] == "***.690.060-**"
    assert verified.verified
    assert verified.first_name == "Maria"
    citizen = export.sources["citizens"]["citizen"]
    assert (citizen["cpf"], citizen["name"], citizen["birth_date"], citizen["email"]) == (
        MARIA.cpf,
        MARIA.name,
        MARIA.birth_date.isoformat(),
        MARIA.email,
    )


def test_an_erased_citizen_keeps_no_personal_field_and_is_found_by_no_cpf(database_url: str, tmp_path: Path) -> None:
    services = open_services(settings_for(tmp_path, database_url, generate_key()))
    try:
        domain = domain_of(services)
        seed(domain)
        maria = domain.citizens.by_cpf(MARIA.cpf)
        assert maria is not None
        assert services.lgpd is not None
        services.lgpd.rights.erase(DataSubject(citizen_id=str(maria.id)), actor="cli:test")
        found = domain.citizens.by_cpf(MARIA.cpf)
    finally:
        services.close()

    (row,) = [row for row in raw_citizens(database_url) if row["id"] == maria.id]
    assert found is None
    assert row["cpf_hash"] == f"erased:{maria.id}"
    assert [row[f"{name}_encrypted"] for name in ("cpf", "birth_date", "phone", "email", "channel_ids")] == [None] * 5


def test_rotating_the_key_re_encrypts_every_citizen_field_and_cpf_lookups_still_work(
    database_url: str, tmp_path: Path
) -> None:
    old, new = generate_key(), generate_key()
    services = open_services(settings_for(tmp_path, database_url, old))
    try:
        seed(domain_of(services))
    finally:
        services.close()

    services = open_services(settings_for(tmp_path, database_url, f"{new},{old}"))
    try:
        assert services.lgpd is not None
        reports = {r.column: r for r in services.lgpd.rotate_keys(services.engine, batch_size=7)}
        again = {r.column: r for r in services.lgpd.rotate_keys(services.engine)}
    finally:
        services.close()

    fields = ("cpf", "name", "birth_date", "phone", "email")
    for name in fields:
        assert reports[f"citizens.{name}_encrypted"].rotated == len(CITIZENS)
        assert again[f"citizens.{name}_encrypted"].rotated == 0
    assert reports["citizens.cpf_hash"].rotated == 0  # the index key did not change
    new_only = FieldCipher([new], b"unused")
    for row in raw_citizens(database_url):
        assert all(new_only.is_current(row[f"{name}_encrypted"]) for name in fields)

    services = open_services(settings_for(tmp_path, database_url, new))  # the old key is gone
    try:
        maria = domain_of(services).citizens.by_cpf(MARIA.cpf)
        verified = domain_of(services).verifier.verify("c1", MARIA.cpf, MARIA.birth_date.isoformat(), actor="test")
    finally:
        services.close()
    assert maria is not None
    assert maria.name == MARIA.name
    assert verified.verified


def test_a_new_blind_index_key_is_applied_by_rotate_key_and_lookups_work_again(
    database_url: str, tmp_path: Path
) -> None:
    key = generate_key()
    services = open_services(settings_for(tmp_path, database_url, key, index_key="first-index-key-" + "a" * 24))
    try:
        seed(domain_of(services))
        erased = domain_of(services).citizens.by_cpf(CITIZENS[1].cpf)
        assert erased is not None
        assert services.lgpd is not None
        services.lgpd.rights.erase(DataSubject(citizen_id=str(erased.id)), actor="cli:test")
    finally:
        services.close()

    services = open_services(settings_for(tmp_path, database_url, key, index_key="second-index-key-" + "b" * 24))
    try:
        missed = domain_of(services).citizens.by_cpf(MARIA.cpf)
        assert services.lgpd is not None
        reports = {r.column: r for r in services.lgpd.rotate_keys(services.engine)}
        found = domain_of(services).citizens.by_cpf(MARIA.cpf)
    finally:
        services.close()

    assert missed is None  # until the indexes are recomputed
    assert reports["citizens.cpf_hash"].rotated == len(CITIZENS) - 1
    assert reports["citizens.cpf_hash"].summary().endswith("blind indexes recomputed, 0 already current")
    assert found is not None
    assert found.name == MARIA.name
    (row,) = [row for row in raw_citizens(database_url) if row["id"] == erased.id]
    assert row["cpf_hash"] == f"erased:{erased.id}"


# Migration 0008


def insert_clear_citizens(url: str) -> None:
    """Two citizens as revision 0007 stored them: one active with a debt, one already erased."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO citizens (id, cpf_hash, cpf, name, birth_date, phone, email, channel_ids, "
                    "consent_whatsapp, consent_email, consent_sms, created_at, updated_at) VALUES "
                    "(:id, :hash, :cpf, :name, :birth, :phone, :email, :channels, "
                    ":consent, false, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ).bindparams(bindparam("birth", type_=Date()), bindparam("channels", type_=JSON())),
                [
                    {
                        "id": 1,
                        "hash": "a" * 64,  # a hash from another key: the migration recomputes it
                        "cpf": MARIA.cpf,
                        "name": MARIA.name,
                        "birth": MARIA.birth_date,
                        "phone": MARIA.phone,
                        "email": MARIA.email,
                        "channels": {"whatsapp": "5511912345601"},
                        "consent": True,
                    },
                    {
                        "id": 2,
                        "hash": "erased:2",
                        "cpf": "",
                        "name": "Titular anonimizado",
                        "birth": None,
                        "phone": None,
                        "email": None,
                        "channels": {},
                        "consent": False,
                    },
                ],
            )
            connection.execute(
                text(
                    "INSERT INTO debts (citizen_id, kind, reference, description, amount_cents, due_date, status, "
                    "created_at) VALUES (1, 'IPTU', 'IPTU 2026', 'IPTU', 100, :due, 'aberto', CURRENT_TIMESTAMP)"
                ).bindparams(bindparam("due", type_=Date())),
                {"due": date(2026, 12, 1)},
            )
    finally:
        engine.dispose()


def citizens_differences(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    return [d for d in diffs if _table_of(d) == "citizens"]


def _table_of(diff: Any) -> str | None:
    """The table an Alembic autogenerate difference is about."""
    op = diff[0] if isinstance(diff, list) else diff  # modify_* differences come as lists of tuples
    kind: str = op[0]
    if kind in ("add_table", "remove_table"):
        return str(op[1].name)
    if kind in ("add_column", "remove_column") or kind.startswith("modify_"):
        return str(op[2])
    table = getattr(op[1], "table", None)  # indexes, constraints, foreign keys
    return str(table.name) if table is not None else None


def count_debts(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM debts")).scalar_one())
    finally:
        engine.dispose()


def test_migration_0008_encrypts_existing_rows_keeps_their_debts_and_downgrades_back_to_clear(
    database_url: str, tmp_path: Path
) -> None:
    upgrade(database_url, "0007")
    insert_clear_citizens(database_url)
    cipher = FieldCipher([generate_key()], b"migration-index-key")

    upgrade(database_url, cipher=cipher)

    stored = raw_citizens(database_url)
    assert MARIA.cpf not in repr(stored)
    assert MARIA.name not in repr(stored)
    assert "5511912345601" not in repr(stored)
    assert stored[0]["cpf_hash"] == cipher.blind_index(MARIA.cpf, kind="cpf")
    assert (stored[1]["cpf_hash"], stored[1]["cpf_encrypted"]) == ("erased:2", None)
    assert count_debts(database_url) == 1
    assert citizens_differences(database_url) == []
    engine = make_engine(database_url)
    try:
        domain = build_domain(
            make_session_factory(engine), lgpd_settings(tmp_path, database_url), MemoryAuditSink(), cipher=cipher
        )
        maria = domain.citizens.by_cpf(MARIA.cpf)
    finally:
        engine.dispose()
    assert maria is not None
    assert (maria.name, maria.birth_date, maria.phone, maria.channel_ids) == (
        MARIA.name,
        MARIA.birth_date,
        MARIA.phone,
        {"whatsapp": "5511912345601"},
    )

    downgrade(database_url, "0007", cipher=cipher)

    restored = raw_citizens(database_url)
    assert (restored[0]["cpf"], restored[0]["name"], restored[0]["email"]) == (MARIA.cpf, MARIA.name, MARIA.email)
    assert (restored[1]["cpf"], restored[1]["name"]) == ("", "Titular anonimizado")
    assert count_debts(database_url) == 1
