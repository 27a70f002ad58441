"""Benchmarks of the LGPD pieces: masking with extra patterns, audit appends and verification, field encryption,
and the encrypted citizens table (CPF lookup, seed).

    python -m bench.lgpd [--out bench/lgpd_results.json] [--postgres URL]

Speed targets live here, never in tests (docs/decisions/0020-0022 quote these numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, Text, insert, text

from core.audit import AuditEvent, AuditLog, ChainKeys, MemoryAuditSink
from core.db import make_engine, make_session_factory, normalize_url
from core.lgpd.crypto import EncryptedColumn, FieldCipher, generate_key, rotate_columns
from core.migrate import upgrade
from core.privacy import Masker
from core.settings import Settings

EXTRA = {
    "MATRICULA": r"MAT-\d{6}",
    "CNH": r"(?i:cnh)\s*\d{11}",
    "PLACA": r"(?<![A-Z0-9])[A-Z]{3}-?\d[A-Z0-9]\d{2}(?![A-Z0-9])",
}
PARAGRAPH = (
    "Meu CPF é 529.982.247-25, e-mail maria@example.com, telefone (19) 99876-5432. "
    "Quero a segunda via do IPTU do imóvel da Rua das Flores, 120. "
) * 150


def _per_20kb(masker: Masker, rounds: int = 20) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        masker.mask(PARAGRAPH)
    per_call = (time.perf_counter() - started) / rounds
    return round(per_call * 1000 * 20_000 / len(PARAGRAPH), 2)


def bench_masking() -> dict[str, Any]:
    return {
        "mask_ms_per_20kb_builtin": _per_20kb(Masker()),
        "mask_ms_per_20kb_with_3_extra_patterns": _per_20kb(Masker(EXTRA)),
    }


def _event(n: int) -> AuditEvent:
    return AuditEvent("user:7", "citizen.read", "citizen", str(n), "10.0.0.1", "Mozilla/5.0", {"n": n}, f"citizen:{n}")


def bench_audit(url: str, appends: int = 500, threads: int = 4) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    log = AuditLog(make_session_factory(engine), ChainKeys.from_secrets("bench-secret-0123456789"))
    started = time.perf_counter()
    for n in range(appends):
        log.record(_event(n))
    serial = appends / (time.perf_counter() - started)

    def worker(offset: int) -> None:
        for n in range(appends // threads):
            log.record(_event(offset + n))

    pool = [threading.Thread(target=worker, args=(i * 10_000,)) for i in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    concurrent = (appends // threads * threads) / (time.perf_counter() - started)
    started = time.perf_counter()
    result = log.verify()
    verify_rate = result.checked / (time.perf_counter() - started)
    engine.dispose()
    assert result.ok, result.reason
    return {
        "appends_per_s_one_writer": round(serial),
        f"appends_per_s_{threads}_writers": round(concurrent),
        "verify_records_per_s": round(verify_rate),
        "records": result.checked,
    }


def bench_crypto(rows: int = 2000) -> dict[str, Any]:
    old, new = generate_key(), generate_key()
    cipher = FieldCipher([old], b"k" * 32)
    n = 2000
    started = time.perf_counter()
    tokens = [cipher.encrypt("529.982.247-25") for _ in range(n)]
    encrypt_us = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for token in tokens:
        cipher.decrypt(token)
    decrypt_us = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for _ in range(n):
        cipher.blind_index("529.982.247-25", kind="cpf")
    index_us = (time.perf_counter() - started) / n * 1e6
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/rotate.db")
        table = Table("secrets", MetaData(), Column("id", Integer, primary_key=True), Column("value", Text))
        table.create(engine)
        with engine.begin() as connection:
            connection.execute(insert(table), [{"id": i, "value": tokens[i % n]} for i in range(rows)])
        started = time.perf_counter()
        rotate_columns(engine, FieldCipher([new, old], b"k" * 32), [EncryptedColumn("secrets", "value")])
        rotate_rate = rows / (time.perf_counter() - started)
        engine.dispose()
    return {
        "encrypt_us": round(encrypt_us, 1),
        "decrypt_us": round(decrypt_us, 1),
        "blind_index_us": round(index_us, 1),
        "rotate_rows_per_s_sqlite": round(rotate_rate),
    }


def bench_citizens(url: str, rounds: int = 7, people: int = 1000) -> dict[str, Any]:
    """The encrypted citizens table: seed, CPF lookup (blind index + decrypting the six fields) and upserts.

    `cpf_lookup_without_decrypting_us` is the same lookup without decrypting (what it cost before encryption at
    rest); the variants are measured in alternate rounds so a loaded machine slows them alike. Minimum over the
    rounds (the median of the full lookup too).
    """
    from validate_docbr import CPF

    from domain.seed import CITIZENS, seed
    from domain.wiring import build_domain

    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    cipher = FieldCipher([generate_key()], b"k" * 32)
    settings = Settings(environment="test", _env_file=None)  # type: ignore[call-arg]
    domain = build_domain(sessions, settings, MemoryAuditSink(), cipher=cipher)
    started = time.perf_counter()
    seed(domain)
    seed_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    seed(domain)
    reseed_ms = (time.perf_counter() - started) * 1000
    cpfs = [c.cpf for c in CITIZENS]

    def query_only() -> None:  # by_cpf without decrypting: what a lookup cost before encryption at rest
        for cpf in cpfs:
            with sessions() as session:
                assert domain.citizens.find_in(session, cpf) is not None

    def full_lookup() -> None:
        for cpf in cpfs:
            assert domain.citizens.by_cpf(cpf) is not None

    with sessions() as session:
        rows = [domain.citizens.find_in(session, cpf) for cpf in cpfs]

    def reveal_only() -> None:
        for row in rows:
            assert row is not None
            domain.citizens.reveal(row)

    def per_lookup_us(work: Any) -> float:
        started = time.perf_counter()
        for _ in range(5):
            work()
        return (time.perf_counter() - started) / (5 * len(cpfs)) * 1e6

    full, query, reveal = [], [], []
    for _ in range(rounds):
        full.append(per_lookup_us(full_lookup))
        query.append(per_lookup_us(query_only))
        reveal.append(per_lookup_us(reveal_only))
    generator = CPF()
    new_cpfs = {generator.generate() for _ in range(people)} - set(cpfs)
    started = time.perf_counter()
    with sessions.begin() as session:
        for n, cpf in enumerate(sorted(new_cpfs)):
            domain.citizens.upsert(
                session,
                cpf=cpf,
                name=f"Pessoa {n} da Silva",
                birth_date=date(1980, 1, 1 + n % 28),
                phone=f"+55 11 9{n:08d}",
                email=f"p{n}@example.com",
            )
    upsert_us = (time.perf_counter() - started) / len(new_cpfs) * 1e6
    engine.dispose()
    return {
        "seed_ms": round(seed_ms, 1),
        "reseed_ms": round(reseed_ms, 1),
        "cpf_lookup_us": round(min(full), 1),
        "cpf_lookup_us_median": round(statistics.median(full), 1),
        "cpf_lookup_without_decrypting_us": round(min(query), 1),
        "decrypt_six_fields_us": round(min(reveal), 1),
        "upsert_us_per_new_citizen": round(upsert_us, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/lgpd_results.json"))
    parser.add_argument("--postgres", default=os.environ.get("ATENDE_TEST_POSTGRES_URL", ""))
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "masking": bench_masking(),
        "crypto": bench_crypto(),
    }
    with tempfile.TemporaryDirectory() as folder:
        results["audit_sqlite"] = bench_audit(f"sqlite:///{folder}/audit.db")
    with tempfile.TemporaryDirectory() as folder:
        results["citizens_sqlite"] = bench_citizens(f"sqlite:///{folder}/citizens.db")
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = make_engine(args.postgres)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = normalize_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
            results["audit_postgresql"] = bench_audit(url.render_as_string(hide_password=False))
            results["citizens_postgresql"] = bench_citizens(url.render_as_string(hide_password=False))
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(json.dumps(results, indent=2))
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
