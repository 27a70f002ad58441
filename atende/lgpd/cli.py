"""`atende audit …` and `atende lgpd …`: the audit trail and data-subject rights from the server's shell.

Requests made here are audited with actor "cli:<operating-system user>".
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from atende.services import Services
    from core.audit import AuditLog, AuditQuery
    from core.data_subjects import DataSubject

audit_app = typer.Typer(help="The audit trail: verify the hash chain, export records.", no_args_is_help=True)
lgpd_app = typer.Typer(help="LGPD: data-subject export and erase, retention, encryption keys.", no_args_is_help=True)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry, e.g. a container with an arbitrary uid
        return "cli:unknown"


@contextmanager
def _services() -> Iterator[Services]:
    from atende import cli
    from core.migrate import upgrade

    settings = cli._settings()
    cli._setup_logging(settings)
    with cli._open_services(settings) as services:
        upgrade(settings.resolved_database_url, cipher=services.lgpd.cipher if services.lgpd else None)
        if services.lgpd is not None:
            services.lgpd.warm_up()
        yield services


def _audit_log(services: Services) -> AuditLog:
    from core.audit import AuditLog

    assert isinstance(services.audit, AuditLog), "build_services wires the persistent audit log"
    return services.audit


# --- audit --------------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain from the first record; exit 1 and name the first broken record if any."""
    with _services() as services:
        result = _audit_log(services).verify()
    typer.echo(result.summary())
    if not result.ok:
        raise typer.Exit(1)


def _query(
    actor: str | None,
    action: str | None,
    object_type: str | None,
    object_id: str | None,
    subject: str | None,
    since: str | None,
    until: str | None,
) -> AuditQuery:
    from atende.cli import _parse_when
    from core.audit import AuditQuery

    try:
        since_dt, until_dt = _parse_when(since), _parse_when(until)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO date: {exc}", param_hint="--since/--until") from exc
    return AuditQuery(actor, action, object_type, object_id, subject, since_dt, until_dt)


@audit_app.command("export")
def audit_export(
    fmt: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Output file (required for xlsx; default: stdout)")] = None,
    actor: Annotated[str | None, typer.Option(help='e.g. "user:7"')] = None,
    action: Annotated[str | None, typer.Option(help='e.g. "lgpd.export"')] = None,
    object_type: Annotated[str | None, typer.Option(help='e.g. "citizen"')] = None,
    object_id: Annotated[str | None, typer.Option()] = None,
    subject: Annotated[str | None, typer.Option(help='the citizen, e.g. "citizen:42"')] = None,
    since: Annotated[str | None, typer.Option(help="ISO date or datetime (UTC if no zone)")] = None,
    until: Annotated[str | None, typer.Option(help="ISO date or datetime, exclusive")] = None,
) -> None:
    """Export matching audit records (times in ATENDE_AUDIT_TIMEZONE); the export is itself audited."""
    from core.audit import AuditEvent, write_csv, write_xlsx

    if fmt not in ("csv", "xlsx"):
        raise typer.BadParameter(f"{fmt!r} is not a format; use csv or xlsx", param_hint="--format")
    if fmt == "xlsx" and out is None:
        raise typer.BadParameter("an XLSX export needs a file", param_hint="--out")
    query = _query(actor, action, object_type, object_id, subject, since, until)
    with _services() as services:
        log = _audit_log(services)
        filters = {k: v for k, v in vars(query).items() if v is not None}
        log.record(
            AuditEvent(_actor(), "audit.export", "audit_log", details={"format": fmt, **filters}),
        )
        records = log.iter_records(query)
        if fmt == "xlsx":
            assert out is not None
            with out.open("wb") as binary:
                count = write_xlsx(records, binary, zone=log.timezone)
        elif out is None:
            count = write_csv(records, sys.stdout, zone=log.timezone)
            sys.stdout.flush()  # before the count on stderr, so a terminal shows them in order
        else:
            with out.open("w", encoding="utf-8", newline="") as text:
                count = write_csv(records, text, zone=log.timezone)
    typer.echo(f"{count} audit records exported", err=True)


# --- lgpd ---------------------------------------------------------------------------------------------


def _subject(citizen_id: str | None, cpf: str | None, refs: list[str] | None) -> DataSubject:
    from atende.lgpd.rights import InvalidSubject, checked_subject
    from core.i18n import t

    if cpf == "-":  # from stdin, so the CPF stays out of the shell history and the process list
        cpf = sys.stdin.readline().strip()
    try:
        return checked_subject(citizen_id, cpf, tuple(refs or ()))
    except InvalidSubject as exc:
        raise typer.BadParameter(t(exc.key), param_hint="--citizen-id/--cpf/--ref") from exc


CitizenId = Annotated[str | None, typer.Option("--citizen-id", help="Domain citizen id")]
Cpf = Annotated[str | None, typer.Option("--cpf", help="CPF; '-' reads it from stdin")]
Refs = Annotated[list[str] | None, typer.Option("--ref", help="A conversation citizen_ref (repeatable)")]


@lgpd_app.command("export")
def lgpd_export(
    citizen_id: CitizenId = None,
    cpf: Cpf = None,
    ref: Refs = None,
    fmt: Annotated[str, typer.Option("--format", help="json or html")] = "json",
    out: Annotated[Path | None, typer.Option(help="Output file (default: stdout)")] = None,
) -> None:
    """Everything held about a citizen, as JSON or as a readable HTML page (audited)."""
    from atende.lgpd.rights import render_html

    if fmt not in ("json", "html"):
        raise typer.BadParameter(f"{fmt!r} is not a format; use json or html", param_hint="--format")
    subject = _subject(citizen_id, cpf, ref)
    with _services() as services:
        assert services.lgpd is not None
        result = services.lgpd.rights.export(subject, actor=_actor())
        settings = services.settings
    if fmt == "html":
        body = render_html(result, organization=settings.organization_name, timezone=settings.audit_timezone)
    else:
        body = json.dumps(result.as_json(), ensure_ascii=False, indent=2)
    if out is None:
        typer.echo(body)
    else:
        out.write_text(body, encoding="utf-8")


@lgpd_app.command("erase")
def lgpd_erase(
    citizen_id: CitizenId = None,
    cpf: Cpf = None,
    ref: Refs = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Anonymise a citizen's personal data in every source, keeping statistics (audited; cannot be undone)."""
    subject = _subject(citizen_id, cpf, ref)
    if not yes:
        typer.confirm("Erase this citizen's personal data? This cannot be undone", abort=True)
    with _services() as services:
        assert services.lgpd is not None
        report = services.lgpd.rights.erase(subject, actor=_actor())
    typer.echo(f"{report.subject_key}: " + ", ".join(f"{name} {rows}" for name, rows in report.rows.items()))


@lgpd_app.command("retention")
def lgpd_retention(
    days: Annotated[int | None, typer.Option(min=1, help="Default: ATENDE_RETENTION_DAYS")] = None,
) -> None:
    """Anonymise conversations idle for longer than the retention period (audited)."""
    with _services() as services:
        assert services.lgpd is not None
        report = services.lgpd.retention.run(days or services.settings.retention_days, actor=_actor())
    typer.echo(report.summary())


@lgpd_app.command("rotate-key")
def lgpd_rotate_key() -> None:
    """Re-encrypt every registered encrypted column with the first key of ATENDE_ENCRYPTION_KEYS, then recompute
    every blind index (the CPF lookup hash) with ATENDE_BLIND_INDEX_KEY.

    Put the new key first and keep the old ones after it; once this reports nothing left on an old key, the old
    keys can be removed. After a change of ATENDE_BLIND_INDEX_KEY, run it at once: lookups miss until it has.
    """
    from core.audit import AuditEvent

    with _services() as services:
        assert services.lgpd is not None
        reports = services.lgpd.rotate_keys(services.engine)
        services.audit.record(
            AuditEvent(
                _actor(),
                "lgpd.rotate_key",
                "encryption",
                details={r.column: {"rotated": r.rotated, "current": r.already_current} for r in reports},
            )
        )
    for report in reports:
        typer.echo(report.summary())
    if not reports:
        typer.echo("no encrypted columns are registered")


@lgpd_app.command("generate-key")
def lgpd_generate_key(
    env: Annotated[
        bool, typer.Option("--env", help="Print all three production keys as ATENDE_*=… lines for an .env file")
    ] = False,
) -> None:
    """Print a new random key for ATENDE_ENCRYPTION_KEYS (with --env: every key production needs)."""
    from core.keys import new_keys
    from core.lgpd.crypto import generate_key

    if not env:
        typer.echo(generate_key())
        return
    for name, value in new_keys().items():
        typer.echo(f"{name}={value}")
