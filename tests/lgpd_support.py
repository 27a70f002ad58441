"""Helpers for the audit and LGPD tests: settings and services over the database the test was given."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from conftest import KNOWLEDGE

from assistant.testing import ScriptedChatModel
from atende.services import Services, build_services
from core.settings import Settings

# Valid check digits, so the detectors take them for real data.
CPF = "529.982.247-25"
CPF_DIGITS = "52998224725"
EMAIL = "maria.silva@example.com"
PHONE = "(19) 99876-5432"


def lgpd_settings(tmp_path: Path, database_url: str = "", **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "data_dir": tmp_path / "var",
        "knowledge_dir": KNOWLEDGE,
        "database_url": database_url,
        "vector_store": "memory",
        "embedding_backend": "hashing",
        "abstain_threshold": 0.2,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def lgpd_services(settings: Settings, model: ScriptedChatModel | None = None) -> Services:
    services = build_services(settings, model=model or ScriptedChatModel([]))
    services.warm_up()
    return services


def sign_in(client: Any, accounts: Any, role: str, username: str | None = None) -> tuple[dict[str, str], str]:
    """Sign a fresh member of `role` in (session cookie in the client): the headers a mutation needs, and the
    member's audit actor ("user:<id>")."""
    from core.accounts.testing import create_user, sign_in_directly

    client.cookies.clear()
    user = create_user(accounts, username or f"{role}-{uuid.uuid4().hex[:6]}", role)
    csrf = sign_in_directly(client, accounts, user)
    return {"X-CSRF-Token": csrf, "User-Agent": "pytest-staff-browser"}, user.subject
