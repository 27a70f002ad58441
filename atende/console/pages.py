"""The console page: one Jinja2 template with pt-BR strings and a plain script, no build step."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from assistant.agent_aids.translation import LANGUAGE_NAMES
from atende.accounts.pages import PAGE_HEADERS
from core.i18n import t
from handoff.actions import CLOSE_REASONS

# Strings the script shows; the page embeds them as JSON.
SCRIPT_KEYS = (
    "console.empty_queue",
    "console.claim",
    "console.open",
    "console.waited",
    "console.position",
    "console.role.user",
    "console.role.assistant",
    "console.role.agent",
    "console.role.system",
    "console.no_suggestion",
    "console.sent",
    "console.closed",
    "console.closed_protocol",
    "console.saved_replies.none",
    "console.saved_replies.use",
    "console.saved_replies.filled",
    "console.saved_replies.saved",
    "console.actions.filled",
    "console.actions.choose_service",
    "console.actions.debt_option",
    "console.actions.verify.run",
    "console.error",
    "console.summary.reason",
    "console.summary.answers",
    "console.summary.data",
    "console.summary.pending",
    "console.summary.none",
    "console.summary.sentiment",
    *(f"console.sentiment.{label}" for label in ("negative", "neutral", "positive")),
    *(f"console.trend.{name}" for name in ("worsening", "improving", "stable")),
    "console.audience.public",
    "console.audience.internal",
    "console.translation",
    "console.translation_sent",
    *(f"console.language.{code}" for code in LANGUAGE_NAMES),
    *(f"console.close.{reason}" for reason in CLOSE_REASONS),
)


@lru_cache
def _environment() -> Environment:
    directory = Path(str(resources.files("atende.console").joinpath("templates")))
    env = Environment(loader=FileSystemLoader(directory), autoescape=select_autoescape(["html"]))
    env.globals["t"] = t
    return env


def _render(template: str, keys: tuple[str, ...], organization: str) -> HTMLResponse:
    # "<" escaped: the JSON sits inside a <script> element, which a "</script>" in a string would end.
    strings = json.dumps({key: t(key) for key in keys}, ensure_ascii=False).replace("<", "\\u003c")
    html = (
        _environment()
        .get_template(template)
        .render(organization=organization, script_strings=strings, close_reasons=CLOSE_REASONS)
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


def render_console(organization: str) -> HTMLResponse:
    return _render("console.html", SCRIPT_KEYS, organization)


SUPERVISOR_STATUSES = ("online", "paused", "busy", "offline")
SUPERVISOR_KEYS = (
    "console.error",
    "console.empty_queue",
    "console.position",
    "console.close",
    "console.close_reason",
    "console.sent",
    "console.closed",
    *(
        f"supervisor.{name}"
        for name in (
            "handoffs",
            "closed",
            "abandoned",
            "mean_wait",
            "longest_wait",
            "mean_first_response",
            "mean_handling",
            "assign",
            "assign_to",
            "reassign",
            "reassigned",
            "take_over",
            "intervene",
            "intervene_placeholder",
            "handling",
            "none_served",
            "edit",
            "saved",
        )
    ),
    *(f"supervisor.status.{status}" for status in SUPERVISOR_STATUSES),
)


def render_supervisor(organization: str) -> HTMLResponse:
    return _render("supervisor.html", SUPERVISOR_KEYS, organization)
