"""`atende wa …`: the WhatsApp worker, one-off template sends, the template register and the queues' state."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from channels.whatsapp.service import WhatsAppService

wa_app = typer.Typer(help="The WhatsApp channel (Cloud API).", no_args_is_help=True)
templates_app = typer.Typer(help="Message templates approved by Meta.", no_args_is_help=True)
wa_app.add_typer(templates_app, name="templates")


def run_worker(wa: WhatsAppService, *, inbox: bool, outbox: bool, until_idle: bool, progress: bool) -> int:
    """Process the inbox and/or outbox in the foreground: until nothing is due, or until SIGTERM/SIGINT."""
    from channels.whatsapp.workers import Workers, run_until_idle

    if until_idle:
        return run_until_idle(wa, inbox=inbox, outbox=outbox, progress=sys.stdout if progress else None)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    workers = Workers(wa, inbox=inbox, outbox=outbox)
    workers.start()
    stop.wait()
    workers.stop()
    return 0


@wa_app.command("worker")
def worker(
    only: Annotated[str | None, typer.Option(help="inbox or outbox (default: both)")] = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Exit when nothing is due")] = False,
    progress: Annotated[bool, typer.Option("--progress", help="Print a line per batch")] = False,
) -> None:
    """Process WhatsApp deliveries and send the outbox (with ATENDE_WHATSAPP_WORKER=off in `atende serve`)."""
    from atende import cli

    if only not in (None, "inbox", "outbox"):
        raise typer.BadParameter("use inbox or outbox", param_hint="--only")
    settings = cli._settings()
    cli._setup_logging(settings)
    with cli._open_services(settings) as services:
        services.warm_up()
        wa = _whatsapp(services.whatsapp)
        run_worker(wa, inbox=only != "outbox", outbox=only != "inbox", until_idle=until_idle, progress=progress)


@wa_app.command("send-template")
def send_template(
    to: Annotated[str, typer.Option(help="Phone number (digits), business-scoped id or citizen_ref")],
    template: Annotated[str, typer.Option(help="Template name")],
    var: Annotated[list[str] | None, typer.Option(help="A value for {{1}}, {{2}}…, in order")] = None,
    language: Annotated[str, typer.Option(help="Template language")] = "pt_BR",
    number: Annotated[str | None, typer.Option(help="Business phone_number_id (default: the first configured)")] = None,
    now: Annotated[bool, typer.Option("--now", help="Send it from this process, not the worker")] = False,
) -> None:
    """Queue an approved template to one citizen who opted in (allowed outside the 24-hour window)."""
    from atende import cli
    from channels.whatsapp.service import SendRefused
    from core.i18n import t

    settings = cli._settings()
    with cli._open_services(settings) as services:
        services.warm_up(model=False)
        wa = _whatsapp(services.whatsapp)
        try:
            outbox_id = wa.send_template(to, template, language, var or [], phone_number_id=number, actor="cli")
        except SendRefused as exc:
            typer.echo(t(exc.key, **exc.params), err=True)
            raise typer.Exit(2) from exc
        if now:
            wa.sender().run_until_idle()
        found = wa.outbox.find_by_id(outbox_id)
    typer.echo(json.dumps({"outbox_id": outbox_id, **found}, ensure_ascii=False))


@wa_app.command("status")
def status() -> None:
    """Inbox and outbox counts by state, and the latest delivery failures."""
    from atende import cli

    settings = cli._settings()
    with cli._open_services(settings) as services:
        services.warm_up(model=False)
        wa = _whatsapp(services.whatsapp)
        out = {"inbox": wa.inbox.counts(), "outbox": wa.outbox.status_counts(), "failures": wa.outbox.failures(10)}
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


@templates_app.command("add")
def templates_add(
    name: Annotated[str, typer.Option(help="Template name, as approved by Meta")],
    body: Annotated[str, typer.Option(help="The body text, with {{1}}, {{2}}… for variables")],
    category: Annotated[str, typer.Option(help="MARKETING, UTILITY or AUTHENTICATION")] = "UTILITY",
    language: Annotated[str, typer.Option(help="Language code")] = "pt_BR",
    var: Annotated[list[str] | None, typer.Option(help="What each variable stands for, in order")] = None,
    button: Annotated[list[str] | None, typer.Option(help="A quick-reply button text")] = None,
    template_status: Annotated[str, typer.Option("--status", help="Meta's review status")] = "APPROVED",
) -> None:
    """Register (or update) a template."""
    from atende import cli
    from channels.whatsapp.templates import TemplateError, TemplateSpec
    from core.i18n import t

    settings = cli._settings()
    with cli._open_services(settings) as services:
        services.warm_up(model=False)
        wa = _whatsapp(services.whatsapp)
        spec = TemplateSpec(name, language, category, body, var or [], button or [], template_status)
        try:
            view = wa.templates.register(spec)
        except TemplateError as exc:
            typer.echo(t(exc.key, **exc.params), err=True)
            raise typer.Exit(2) from exc
    typer.echo(json.dumps(view.as_dict(), ensure_ascii=False))


@templates_app.command("list")
def templates_list() -> None:
    """The registered templates."""
    from atende import cli

    settings = cli._settings()
    with cli._open_services(settings) as services:
        services.warm_up(model=False)
        for view in _whatsapp(services.whatsapp).templates.all():
            typer.echo(json.dumps(view.as_dict(), ensure_ascii=False))


def _whatsapp(wa: WhatsAppService | None) -> WhatsAppService:
    if wa is None:
        typer.echo("the WhatsApp channel is not configured", err=True)
        raise typer.Exit(1)
    return wa
