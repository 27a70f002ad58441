"""The domain under the MCP tools: CPF, business days, Pix BR Code, boleto digits, rate limits, seed, schema."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from backing_services import RedisKeys
from sqlalchemy import Table, func, select
from validate_docbr import CPF

from atende.schema import metadata
from core.audit import MemoryAuditSink
from core.data_subjects import DataSubject
from core.db import make_engine, make_session_factory
from core.migrate import downgrade, upgrade
from core.ratelimit import InMemoryRateLimiter, RedisRateLimiter
from core.settings import Settings
from domain import models as domain_models
from domain.boleto import barcode, barcode_from_line, digitable_line, due_date_factor, mod10, mod11_barcode
from domain.calendar import add_business_days, is_business_day
from domain.cpf import is_valid_cpf, mask_cpf, normalize_cpf
from domain.dates import parse_date
from domain.errors import DomainError
from domain.payments import DebtCharge, LocalPaymentProvider
from domain.personal_data import ERASED_NAME, CitizenDataSource, CitizenResolver
from domain.pix import InvalidBRCode, PixCharge, build_br_code, crc16_ccitt_false, decode_br_code
from domain.seed import CITIZENS, PROTOCOLS, seed
from tools_mcp.auth import InvalidTokenTable, parse_token_table, stdio_principal
from tools_mcp.testing import make_test_domain

DOMAIN_TABLES = {
    "citizens",
    "services",
    "protocol_counters",
    "protocols",
    "protocol_events",
    "protocol_comments",
    "debts",
    "appointment_slots",
    "appointments",
    "verified_conversations",
}
# The Central Bank's BR Code manual example (static key, no amount).
BCB_EXAMPLE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
# A Banco do Brasil typed line used as a valid example across boleto libraries.
BB_EXAMPLE_LINE = "00190500954014481606906809350314337370000000100"


# CPF


@pytest.mark.parametrize("typed", ["529.982.247-25", "52998224725", " 529.982.247-25 ", "529.982.247.25"])
def test_a_valid_cpf_is_normalised_to_eleven_digits(typed: str) -> None:
    assert normalize_cpf(typed) == "52998224725"


@pytest.mark.parametrize("typed", ["529.982.247-24", "5299822472", "111.111.111-11", "abc", "", "529982247250"])
def test_an_invalid_or_incomplete_cpf_is_refused_with_invalid_cpf(typed: str) -> None:
    with pytest.raises(DomainError) as refused:
        normalize_cpf(typed)
    assert refused.value.code == "invalid_cpf"
    assert "CPF" in refused.value.message


def test_a_masked_cpf_shows_only_the_middle_digits() -> None:
    assert mask_cpf("52998224725") == "***.982.247-**"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("15/03/1985", date(1985, 3, 15)), ("1985-03-15", date(1985, 3, 15)), ("5-3-1985", date(1985, 3, 5))],
)
def test_dates_are_read_in_brazilian_or_iso_order(typed: str, expected: date) -> None:
    assert parse_date(typed) == expected


@pytest.mark.parametrize("typed", ["31/02/1985", "1985/03/15", "ontem", ""])
def test_an_impossible_date_is_an_invalid_argument(typed: str) -> None:
    with pytest.raises(DomainError) as refused:
        parse_date(typed, "data de nascimento")
    assert refused.value.code == "invalid_argument"
    assert "data de nascimento" in refused.value.message


# Business days


def test_sla_counting_skips_a_national_holiday_and_the_weekend() -> None:
    # Wednesday 2026-11-18; Friday 2026-11-20 is Consciência Negra.
    assert not is_business_day(date(2026, 11, 20))
    assert add_business_days(date(2026, 11, 18), 1) == date(2026, 11, 19)
    assert add_business_days(date(2026, 11, 18), 2) == date(2026, 11, 23)
    assert add_business_days(date(2026, 11, 18), 5) == date(2026, 11, 26)


def test_good_friday_and_christmas_are_not_business_days() -> None:
    assert not is_business_day(date(2026, 4, 3))
    assert not is_business_day(date(2026, 12, 25))
    assert is_business_day(date(2026, 12, 24))


# Pix


def test_crc16_of_the_central_bank_example_matches_its_published_check() -> None:
    assert f"{crc16_ccitt_false(BCB_EXAMPLE[:-4].encode()):04X}" == BCB_EXAMPLE[-4:]


def test_the_builder_reproduces_the_central_bank_example_byte_for_byte() -> None:
    charge = PixCharge(
        key="123e4567-e12b-12d1-a456-426655440000", merchant_name="Fulano de Tal", merchant_city="BRASILIA"
    )
    assert build_br_code(charge) == BCB_EXAMPLE


def test_a_charge_decodes_back_to_its_key_amount_and_txid() -> None:
    payload = build_br_code(
        PixCharge(
            key="3f1c2b7e-8d4a-4e6f-9b1a-2c5d7e9f0a13",
            merchant_name="Prefeitura de São João",
            merchant_city="São João",
            amount=Decimal("1234.50"),
            txid="ATENDE-0042",
        )
    )
    fields = decode_br_code(payload)
    assert fields["26.00"] == "br.gov.bcb.pix"
    assert fields["26.01"] == "3f1c2b7e-8d4a-4e6f-9b1a-2c5d7e9f0a13"
    assert fields["53"] == "986"
    assert fields["54"] == "1234.50"
    assert fields["58"] == "BR"
    assert fields["59"] == "Prefeitura de Sao Joao"  # accents removed, as bank apps expect
    assert fields["62.05"] == "ATENDE0042"
    assert payload.isascii()


def test_a_tampered_payload_fails_the_crc_check() -> None:
    tampered = BCB_EXAMPLE.replace("Fulano", "Beltra")
    with pytest.raises(InvalidBRCode, match="CRC"):
        decode_br_code(tampered)


# Boleto


def test_the_banco_do_brasil_example_line_passes_every_check_digit() -> None:
    code = barcode_from_line(BB_EXAMPLE_LINE)
    assert len(code) == 44
    assert digitable_line(code) == BB_EXAMPLE_LINE


def test_the_field_digits_and_the_general_digit_follow_febraban() -> None:
    assert mod10("001905009") == 5
    assert mod10("4014481606") == 9
    assert mod10("0680935031") == 4
    code = barcode_from_line(BB_EXAMPLE_LINE)
    assert mod11_barcode(code[:4] + code[5:]) == int(code[4])


def test_the_due_date_factor_restarts_at_1000_after_february_2025() -> None:
    assert due_date_factor(date(2000, 7, 3)) == 1000
    assert due_date_factor(date(2025, 2, 21)) == 9999
    assert due_date_factor(date(2025, 2, 22)) == 1000


def test_a_generated_boleto_line_has_47_digits_that_check_and_carry_amount_and_factor() -> None:
    code = barcode("001", date(2026, 12, 2), Decimal("285.40"), "1234567890123456789012345")
    line = digitable_line(code)
    assert len(line) == 47
    assert barcode_from_line(line) == code
    assert line.endswith(f"{due_date_factor(date(2026, 12, 2)):04d}0000028540")


def test_a_wrong_digit_in_a_typed_line_is_caught() -> None:
    broken = BB_EXAMPLE_LINE[:12] + ("0" if BB_EXAMPLE_LINE[12] != "0" else "1") + BB_EXAMPLE_LINE[13:]
    with pytest.raises(ValueError, match="check digit"):
        barcode_from_line(broken)


def test_the_local_provider_gives_a_valid_pix_and_boleto_for_the_same_amount() -> None:
    provider = LocalPaymentProvider(
        pix_key="3f1c2b7e-8d4a-4e6f-9b1a-2c5d7e9f0a13",
        merchant_name="Prefeitura",
        merchant_city="Santa Aurora",
        bank_code="001",
    )
    copy = provider.second_copy(DebtCharge("17", "IPTU", "IPTU 2026 - 2/3", Decimal("285.40"), date(2026, 12, 2)))
    assert decode_br_code(copy.pix_copia_e_cola)["54"] == "285.40"
    assert barcode_from_line(copy.boleto_linha_digitavel)[9:19] == "0000028540"


# Rate limits


def test_the_in_memory_limiter_allows_the_limit_then_refuses_until_the_window_ends() -> None:
    now = [0.0]
    limiter = InMemoryRateLimiter(clock=lambda: now[0])
    decisions = [limiter.hit("k", limit=3, window_s=60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].retry_after_s == 60
    now[0] = 61.0
    assert limiter.hit("k", limit=3, window_s=60).allowed
    assert limiter.peek("other", limit=3) == 3


def test_a_refunded_hit_no_longer_counts_and_refunding_an_unknown_key_does_nothing() -> None:
    limiter = InMemoryRateLimiter(clock=lambda: 0.0)
    limiter.hit("k", limit=2, window_s=60)
    limiter.hit("k", limit=2, window_s=60)
    limiter.refund("k")
    limiter.refund("never-hit")
    assert limiter.peek("k", limit=2) == 1
    assert limiter.peek("never-hit", limit=2) == 2
    assert limiter.hit("k", limit=2, window_s=60).allowed


@pytest.mark.integration
def test_the_redis_limiter_counts_across_clients_and_expires_with_the_window(redis_keys: RedisKeys) -> None:
    from redis import Redis

    client, prefix = redis_keys.client, redis_keys.prefix
    other_client = Redis.from_url(redis_keys.url)
    try:
        first, second = RedisRateLimiter(client, prefix), RedisRateLimiter(other_client, prefix)
        assert first.hit("k", limit=2, window_s=30).allowed
        assert second.hit("k", limit=2, window_s=30).allowed
        refused = first.hit("k", limit=2, window_s=30)
        assert not refused.allowed
        assert 0 < refused.retry_after_s <= 30
        assert second.peek("k", limit=2) == 0
        assert 0 < client.pttl(prefix + "k") <= 30_000
        second.refund("k")
        assert first.peek("k", limit=2) == 0  # three hits, one refunded
        second.refund("k")
        assert first.hit("k", limit=2, window_s=30).allowed
        first.refund("absent")
        assert client.exists(prefix + "absent") == 0  # a refund never creates a key without an expiry
    finally:
        other_client.close()


# Schema and seed


def table_of(diff: Any) -> str | None:
    """The table an Alembic autogenerate difference is about."""
    if isinstance(diff, list):
        return str(diff[0][2])
    if isinstance(diff[1], Table):
        return diff[1].name
    table = getattr(diff[1], "table", None)
    return table.name if table is not None else str(diff[2])


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'domain.db').as_posix()}"


def test_migration_0002_creates_exactly_the_domain_models_and_downgrades_cleanly(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), metadata)
        # Other areas' tables may be missing from this process's metadata; only ours are checked.
        assert [d for d in diffs if table_of(d) in DOMAIN_TABLES] == []
        downgrade(url, "0001")
        with engine.connect() as connection:
            names = set(connection.dialect.get_table_names(connection))
        assert names & DOMAIN_TABLES == set()
    finally:
        engine.dispose()


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[str, Settings]:
    url = sqlite_url(tmp_path)
    upgrade(url)
    return url, Settings(environment="test", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]


def test_the_demo_citizens_have_valid_distinct_cpfs_and_birth_dates() -> None:
    checker = CPF()
    assert len(CITIZENS) >= 20
    assert all(checker.validate(c.cpf) and is_valid_cpf(c.cpf) for c in CITIZENS)
    assert len({c.cpf for c in CITIZENS}) == len(CITIZENS)
    assert all(c.birth_date.year < 2010 for c in CITIZENS)


def test_seeding_twice_creates_everything_once_with_protocols_in_every_status(seeded: tuple[str, Settings]) -> None:
    url, settings = seeded
    engine = make_engine(url)
    domain = make_test_domain(make_session_factory(engine), settings)
    first = seed(domain)
    second = seed(domain)
    assert first.created["citizens"] == len(CITIZENS)
    assert second.created == {}
    with domain.sessions() as session:
        statuses = set(session.scalars(select(domain_models.Protocol.status)).all())
        debt_states = {
            ("pago" if d.status == "pago" else "vencido" if d.due_date < domain.clock.today() else "aberto")
            for d in session.scalars(select(domain_models.Debt)).all()
        }
        assert session.scalar(select(func.count()).select_from(domain_models.Citizen)) == len(CITIZENS)
        assert session.scalar(select(func.count()).select_from(domain_models.Protocol)) == len(PROTOCOLS)
        assert session.scalar(select(func.count()).select_from(domain_models.AppointmentSlot)) > 0
    assert statuses == {"aberto", "em_analise", "encaminhado", "concluido", "cancelado"}
    assert debt_states == {"aberto", "vencido", "pago"}
    engine.dispose()


def test_a_citizen_can_be_exported_and_erased_for_lgpd_and_can_no_longer_verify(seeded: tuple[str, Settings]) -> None:
    url, settings = seeded
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    audit = MemoryAuditSink()
    domain = make_test_domain(sessions, settings, audit=audit)
    seed(domain)
    maria = CITIZENS[0]
    subject = CitizenResolver(sessions, domain.citizens).resolve(DataSubject(cpf=maria.cpf))
    assert subject.citizen_id is not None
    assert f"citizen:{subject.citizen_id}" in subject.citizen_refs

    source = CitizenDataSource(sessions, domain.citizens, domain.clock)
    exported = source.export(subject)
    assert exported["citizen"]["name"] == maria.name
    assert exported["citizen"]["cpf"] == maria.cpf
    assert len(exported["protocols"]) == 3
    assert exported["debts"]

    assert source.erase(subject) >= 4
    after = source.export(DataSubject(citizen_id=subject.citizen_id))
    assert after["citizen"]["name"] == ERASED_NAME
    assert after["citizen"]["cpf"] == ""
    assert all(p["description"] == "[removido a pedido do titular]" for p in after["protocols"])
    outcome = domain.verifier.verify("conv-after-erase", maria.cpf, maria.birth_date.isoformat(), actor="test")
    assert not outcome.verified
    engine.dispose()


# Token configuration


def test_the_token_table_maps_each_token_to_an_integration_principal_with_its_scopes() -> None:
    table = parse_token_table(
        json.dumps(
            {
                "a-token-of-sixteen+": {"name": "ouvidoria", "scopes": ["protocols:read", "protocols:write"]},
                "another-long-token": {"name": "ana", "scopes": ["citizens:read"], "kind": "staff"},
            }
        )
    )
    assert table["a-token-of-sixteen+"].subject == "integration:ouvidoria"
    assert table["a-token-of-sixteen+"].scopes == {"protocols:read", "protocols:write"}
    assert table["another-long-token"].kind == "staff"
    assert parse_token_table("") == {}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("not json", "not JSON"),
        ('{"short": {"name": "x", "scopes": []}}', "16+"),
        ('{"a-token-of-sixteen+": {"name": "x", "scopes": ["payments:write"]}}', "unknown scopes"),
    ],
)
def test_a_bad_token_table_is_refused_without_echoing_the_token(raw: str, problem: str) -> None:
    with pytest.raises(InvalidTokenTable, match=problem) as refused:
        parse_token_table(raw)
    assert "a-token-of-sixteen+" not in str(refused.value)


def test_the_stdio_operator_gets_exactly_the_configured_scopes() -> None:
    assert stdio_principal("citizens:read, kb:read").scopes == {"citizens:read", "kb:read"}
    with pytest.raises(InvalidTokenTable):
        stdio_principal("everything")
