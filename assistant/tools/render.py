"""Tool results as short pt-BR messages: amounts in R$, dates day first, Pix copia e cola in full."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from assistant.tools.catalog import service_name
from core.i18n import t

_WEEKDAYS = ("segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo")
_DEBT_STATUS = {"aberto": "em aberto", "vencido": "vencido", "pago": "pago"}
_PROTOCOL_STATUS = {
    "aberto": "aberto",
    "em_analise": "em análise",
    "encaminhado": "encaminhado para execução",
    "concluido": "concluído",
    "cancelado": "cancelado",
}


def money(amount: Any) -> str:
    """ "1234.5" → "R$ 1.234,50"."""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(amount)
    text = f"{value:,.2f}"  # 1,234.50
    return "R$ " + text.replace(",", "_").replace(".", ",").replace("_", ".")


def day(value: Any) -> str:
    """ "2026-03-10" (or a timestamp) → "10/03/2026"."""
    text = str(value or "")
    try:
        return date.fromisoformat(text[:10]).strftime("%d/%m/%Y")
    except ValueError:
        return text


def when(value: Any) -> str:
    """ "2026-11-24T09:00:00-03:00" → "segunda-feira, 24/11/2026, às 09:00" (the slot's own local time)."""
    text = str(value or "")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return f"{_WEEKDAYS[moment.weekday()]}, {moment:%d/%m/%Y}, às {moment:%H:%M}"


def _service(data: Mapping[str, Any]) -> str:
    return str(data.get("service_name") or service_name(str(data.get("service") or "")))


def unpaid(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The debts a citizen can still pay, in the order they are listed (and numbered) to them."""
    return [d for d in items if d.get("status") != "pago"]


def debts(items: Sequence[Mapping[str, Any]], status: str | None = None, *, offer: bool = True) -> str:
    if not items:
        key = "action.debts.none_status" if status else "action.debts.none"
        return t(key, status=_DEBT_STATUS.get(status or "", ""))
    open_ = unpaid(items)
    paid = [d for d in items if d.get("status") == "pago"]
    parts = []
    if open_:
        lines = [
            t(
                "action.debts.item",
                n=i,
                reference=d.get("reference") or d.get("kind") or "",
                amount=money(d.get("amount")),
                due=day(d.get("due_date")),
                status=_DEBT_STATUS.get(str(d.get("status")), str(d.get("status"))),
            )
            for i, d in enumerate(open_, start=1)
        ]
        total = sum((Decimal(str(d.get("amount") or 0)) for d in open_), Decimal(0))
        parts.append(t("action.debts.head", count=len(open_)) + "\n" + "\n".join(lines))
        parts.append(t("action.debts.total", total=money(total)))
    else:
        parts.append(t("action.debts.none"))
    if paid:
        done = "; ".join(f"{d.get('reference') or d.get('kind')} ({money(d.get('amount'))})" for d in paid)
        parts.append(t("action.debts.paid", items=done))
    text = "\n".join(parts)
    if offer and open_:
        text += "\n\n" + t("action.debts.offer")
    return text


def second_copy(data: Mapping[str, Any], debt: Mapping[str, Any] | None = None) -> str:
    label = str(debt.get("reference")) if debt else t("action.second_copy.debt", debt_id=data.get("debt_id", ""))
    return t(
        "action.second_copy.done",
        label=label,
        amount=money(data.get("amount")),
        due=day(data.get("due_date")),
        pix=data.get("pix_copia_e_cola", ""),
        boleto=data.get("boleto_linha_digitavel", ""),
    )


def protocol_opened(data: Mapping[str, Any]) -> str:
    return t(
        "action.protocol.opened",
        number=data.get("reference") or data.get("number", ""),
        service=_service(data),
        team=data.get("team", ""),
        due=day(data.get("due_date")),
    )


def protocol_status(data: Mapping[str, Any]) -> str:
    status = str(data.get("status", ""))
    text = t(
        "action.protocol.status",
        number=data.get("number", ""),
        status=_PROTOCOL_STATUS.get(status, status),
        service=_service(data),
        opened=day(data.get("opened_at")),
        due=day(data.get("due_date")),
        updated=day(data.get("updated_at")),
    )
    history = [h for h in data.get("history") or [] if isinstance(h, Mapping)]
    if history and history[-1].get("note"):
        text += "\n" + t("action.protocol.last_note", note=history[-1]["note"])
    return text


def protocol_list(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return t("action.protocol.none")
    lines = [
        t(
            "action.protocol.item",
            number=p.get("number", ""),
            service=_service(p),
            status=_PROTOCOL_STATUS.get(str(p.get("status")), str(p.get("status"))),
            due=day(p.get("due_date")),
        )
        for p in items
    ]
    return t("action.protocol.list_head", count=len(items)) + "\n" + "\n".join(lines)


def comment_added(data: Mapping[str, Any]) -> str:
    return t("action.protocol.comment_added", number=data.get("number", ""))


def slots(items: Sequence[Mapping[str, Any]], service: str) -> str:
    if not items:
        return t("action.slots.none", service=service_name(service))
    lines = [
        t("action.slots.item", n=i, when=when(s.get("starts_at")), location=s.get("location", ""))
        for i, s in enumerate(items, start=1)
    ]
    return (
        t("action.slots.head", service=service_name(service))
        + "\n"
        + "\n".join(lines)
        + "\n\n"
        + t("action.slots.offer")
    )


def booked(data: Mapping[str, Any]) -> str:
    return t(
        "action.appointment.booked",
        service=_service(data),
        when=when(data.get("starts_at")),
        location=data.get("location", ""),
        appointment_id=data.get("appointment_id", ""),
    )


def cancelled(data: Mapping[str, Any]) -> str:
    return t("action.appointment.cancelled", appointment_id=data.get("appointment_id", ""))


def appointments(items: Sequence[Mapping[str, Any]]) -> str:
    active = [a for a in items if a.get("status", "agendado") == "agendado"]
    if not active:
        return t("action.appointment.none")
    lines = [
        t(
            "action.appointment.item",
            n=i,
            appointment_id=a.get("appointment_id", ""),
            service=_service(a),
            when=when(a.get("starts_at")),
            location=a.get("location", ""),
        )
        for i, a in enumerate(active, start=1)
    ]
    return t("action.appointment.list_head", count=len(active)) + "\n" + "\n".join(lines)


def citizen(data: Mapping[str, Any]) -> str:
    return t(
        "action.citizen.profile",
        name=data.get("name", ""),
        cpf=data.get("cpf_masked", ""),
        phone=data.get("phone_masked") or "—",
        email=data.get("email_masked") or "—",
    )


def handoff(data: Mapping[str, Any], team_label: str) -> str:
    position = data.get("queue_position")
    key = "action.handoff.queued" if isinstance(position, int) else "action.handoff.done"
    return t(key, team=team_label, position=position)
