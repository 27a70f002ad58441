"""The template register: message templates approved by Meta, the only thing we may send outside the 24-hour
window. Each has a name, language, category, numbered body variables ({{1}}, {{2}}…) and quick-reply buttons."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.whatsapp.consent import PURPOSE_BY_CATEGORY
from channels.whatsapp.models import TemplateRow
from core.models import utcnow

CATEGORIES: Final = tuple(PURPOSE_BY_CATEGORY)
STATUSES: Final = ("APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED")
MAX_TEMPLATE_BUTTONS: Final = 10
_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")


class TemplateError(ValueError):
    """A template or its use breaks a rule; `key` names the pt-BR explanation."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    name: str
    language: str
    category: str
    body: str
    variables: Sequence[str] = ()  # what each {{n}} stands for, in order: ["nome", "data"]
    buttons: Sequence[str] = ()  # quick-reply button texts
    status: str = "APPROVED"


@dataclass(frozen=True, slots=True)
class TemplateView:
    id: int
    name: str
    language: str
    category: str
    body: str
    variables: list[str]
    buttons: list[dict[str, Any]]
    status: str
    updated_at: datetime
    purpose: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "purpose", PURPOSE_BY_CATEGORY[self.category])

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "body": self.body,
            "variables": self.variables,
            "buttons": self.buttons,
            "status": self.status,
            "purpose": self.purpose,
        }


def _view(row: TemplateRow) -> TemplateView:
    return TemplateView(
        id=row.id,
        name=row.name,
        language=row.language,
        category=row.category,
        body=row.body,
        variables=list(row.variables),
        buttons=list(row.buttons),
        status=row.status,
        updated_at=row.updated_at,
    )


def validate(spec: TemplateSpec) -> None:
    if not _NAME.fullmatch(spec.name):
        raise TemplateError("whatsapp.template_invalid", reason="nome")
    if not _LANGUAGE.fullmatch(spec.language):
        raise TemplateError("whatsapp.template_invalid", reason="idioma")
    if spec.category not in CATEGORIES:
        raise TemplateError("whatsapp.template_invalid", reason="categoria")
    if spec.status not in STATUSES:
        raise TemplateError("whatsapp.template_invalid", reason="situação")
    numbers = sorted({int(n) for n in _PLACEHOLDER.findall(spec.body)})
    if numbers != list(range(1, len(numbers) + 1)) or len(numbers) != len(spec.variables):
        raise TemplateError("whatsapp.template_invalid", reason="variáveis")
    if len(spec.buttons) > MAX_TEMPLATE_BUTTONS or any(not b.strip() or len(b) > 25 for b in spec.buttons):
        raise TemplateError("whatsapp.template_invalid", reason="botões")


def render(template: TemplateView, values: Sequence[str]) -> dict[str, Any]:
    """The Graph API body that sends `template` with `values` for its variables."""
    if template.status != "APPROVED":
        raise TemplateError("whatsapp.template_not_approved", name=template.name)
    if len(values) != len(template.variables):
        raise TemplateError("whatsapp.template_variables", expected=len(template.variables), got=len(values))
    if any(not str(v).strip() for v in values):
        raise TemplateError("whatsapp.template_variables", expected=len(template.variables), got=len(values))
    components: list[dict[str, Any]] = []
    if values:
        components.append({"type": "body", "parameters": [{"type": "text", "text": str(v)} for v in values]})
    for i, _ in enumerate(template.buttons):
        components.append(
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": str(i),
                "parameters": [{"type": "payload", "payload": f"atende:tpl:{template.name}:{i}"}],
            }
        )
    body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        body["components"] = components
    return {"type": "template", "template": body}


def preview(template: TemplateView, values: Sequence[str]) -> str:
    """The text the citizen sees, for the conversation record."""
    return _PLACEHOLDER.sub(lambda m: str(values[int(m.group(1)) - 1]), template.body)


class Templates:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    def register(self, spec: TemplateSpec) -> TemplateView:
        """Add a template, or update the one with the same name and language."""
        validate(spec)
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.scalars(
                select(TemplateRow).where(TemplateRow.name == spec.name, TemplateRow.language == spec.language)
            ).first()
            if row is None:
                row = TemplateRow(name=spec.name, language=spec.language, created_at=now)
                session.add(row)
            row.category = spec.category
            row.body = spec.body
            row.variables = list(spec.variables)
            row.buttons = [{"type": "quick_reply", "text": b} for b in spec.buttons]
            row.status = spec.status
            row.updated_at = now
            session.flush()
            return _view(row)

    def get(self, name: str, language: str) -> TemplateView | None:
        with self._sessions() as session:
            row = session.scalars(
                select(TemplateRow).where(TemplateRow.name == name, TemplateRow.language == language)
            ).first()
            return None if row is None else _view(row)

    def get_by_id(self, template_id: int) -> TemplateView | None:
        with self._sessions() as session:
            row = session.get(TemplateRow, template_id)
            return None if row is None else _view(row)

    def all(self) -> list[TemplateView]:
        with self._sessions() as session:
            return [_view(r) for r in session.scalars(select(TemplateRow).order_by(TemplateRow.name))]

    def set_status(self, name: str, language: str | None, status: str) -> int:
        """Apply Meta's review result (template status webhook); returns the templates changed."""
        if status not in STATUSES:
            return 0
        with self._sessions.begin() as session:
            stmt = select(TemplateRow).where(TemplateRow.name == name)
            if language:
                stmt = stmt.where(TemplateRow.language == language)
            rows = list(session.scalars(stmt))
            for row in rows:
                row.status = status
                row.updated_at = self._clock()
            return len(rows)
