"""The staff sign-in and account pages: Jinja2 templates with pt-BR strings, plain JavaScript, no build step."""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape

from core.accounts.roles import ROLES
from core.i18n import t

LOGIN_PATH = "/staff/login"
ACCOUNT_PATH = "/staff/account"
ASSETS_DIR = Path(str(resources.files("atende.accounts").joinpath("static")))
ASSETS = {"staff.js": "text/javascript; charset=utf-8", "staff.css": "text/css; charset=utf-8"}
# The pages run only their own script; nothing may frame them (clickjacking on the sign-in form).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# Messages the login page may show from its ?erro= parameter (anything else is ignored).
LOGIN_NOTICES = ("sso_failed", "sso_no_account", "session_expired", "signed_out")

# Strings the scripts need; the page embeds them as JSON.
SCRIPT_KEYS = (
    "staff.password.mismatch",
    "staff.password.saved",
    "staff.totp.enabled",
    "staff.totp.disabled",
    "staff.error.network",
    "auth.error.totp_required",
    "auth.error.totp_enrollment_required",
    "auth.error.password_change_required",
    *(f"staff.role.{role}" for role in ROLES),
)


def safe_next(value: str) -> str:
    """Where to go after signing in: a path on this site only (no open redirect).

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so "/%09/evil.example" (a tab
    once decoded) lands on "//evil.example", another host. Only a plain path passes: one leading slash, no
    "//" or backslash, no control or blank character (percent-encoded or not), no scheme.
    """
    decoded = unquote(value)
    if (
        len(value) <= 512
        and value.startswith("/")
        and not any("//" in text or "\\" in text for text in (value, decoded))
        and not any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cf"} for ch in value + decoded)
        and not urlsplit(decoded).scheme
    ):
        return value
    return ACCOUNT_PATH


@lru_cache
def _environment() -> Environment:
    directory = Path(str(resources.files("atende.accounts").joinpath("templates")))
    env = Environment(loader=FileSystemLoader(directory), autoescape=select_autoescape(["html"]))
    env.globals["t"] = t
    return env


def render(template: str, **context: object) -> str:
    # "<" escaped: the JSON sits inside a <script> element, which a "</script>" in a string would end.
    strings = json.dumps({key: t(key) for key in SCRIPT_KEYS}, ensure_ascii=False).replace("<", "\\u003c")
    return _environment().get_template(template).render(script_strings=strings, **context)
