"""Appointment slots per service: list, book, cancel, reschedule, with no double booking."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from domain.errors import DomainError
from domain.models import Appointment, AppointmentSlot, ServiceEntry
from domain.protocols import resolve_service

MAX_SLOTS_LISTED = 20


def parse_id(value: str, key: str) -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise DomainError("invalid_argument", key)
    return int(text)


class AppointmentBook:
    def __init__(self, session_factory: sessionmaker[Session], clock: Clock) -> None:
        self._sessions = session_factory
        self._clock = clock

    def slot_dict(self, slot: AppointmentSlot) -> dict[str, Any]:
        return {
            "slot_id": str(slot.id),
            "service": slot.service_code,
            "starts_at": self._clock.local(slot.starts_at).isoformat(timespec="minutes"),
            "location": slot.location,
        }

    def free_slots(self, service: str, date_from: date | None, date_to: date | None) -> list[dict[str, Any]]:
        today = self._clock.today()
        start_day = max(date_from or today, today)
        end_day = date_to or start_day + timedelta(days=30)
        if end_day < start_day:
            raise DomainError("invalid_argument", "tools.error.invalid_range")
        zone = self._clock.zone
        start = max(datetime.combine(start_day, time.min, zone), self._clock.now())
        end = datetime.combine(end_day + timedelta(days=1), time.min, zone)
        with self._sessions() as session:
            entry = resolve_service(session, service, "appointment")
            slots = session.scalars(
                select(AppointmentSlot)
                .where(
                    AppointmentSlot.service_code == entry.code,
                    AppointmentSlot.starts_at >= start,
                    AppointmentSlot.starts_at < end,
                    AppointmentSlot.booked < AppointmentSlot.capacity,
                )
                .order_by(AppointmentSlot.starts_at, AppointmentSlot.id)
                .limit(MAX_SLOTS_LISTED)
            ).all()
        return [self.slot_dict(s) for s in slots]

    def _take(self, session: Session, slot_id: int) -> AppointmentSlot:
        slot = session.get(AppointmentSlot, slot_id)
        if slot is None:
            raise DomainError("not_found", "tools.error.slot_not_found")
        if slot.starts_at <= self._clock.now():
            raise DomainError("conflict", "tools.error.slot_past")
        # The WHERE makes the check and the increment one step: of any number of concurrent bookers, only
        # `capacity` see a row updated.
        taken = session.execute(
            update(AppointmentSlot)
            .where(AppointmentSlot.id == slot_id, AppointmentSlot.booked < AppointmentSlot.capacity)
            .values(booked=AppointmentSlot.booked + 1)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise DomainError("conflict", "tools.error.slot_taken")
        return slot

    def book(self, citizen_id: int, slot_id: str) -> dict[str, Any]:
        sid = parse_id(slot_id, "tools.error.invalid_slot_id")
        try:
            with self._sessions.begin() as session:
                slot = self._take(session, sid)
                appointment = Appointment(slot_id=sid, citizen_id=citizen_id, created_at=self._clock.now())
                session.add(appointment)
                session.flush()
                return {"appointment_id": str(appointment.id), **self._public(session, slot)}
        except IntegrityError as exc:
            # The partial unique index: this citizen already holds this slot.
            raise DomainError("conflict", "tools.error.already_booked") from exc

    def _public(self, session: Session, slot: AppointmentSlot) -> dict[str, Any]:
        entry = session.get(ServiceEntry, slot.service_code)
        out = self.slot_dict(slot)
        out.pop("slot_id")
        out["service_name"] = entry.name if entry else slot.service_code
        return out

    def owner_of(self, appointment_id: str) -> int:
        with self._sessions() as session:
            appointment = session.get(Appointment, parse_id(appointment_id, "tools.error.invalid_appointment_id"))
            if appointment is None:
                raise DomainError("not_found", "tools.error.appointment_not_found")
            return appointment.citizen_id

    def _release(self, session: Session, appointment: Appointment) -> None:
        released = session.execute(
            update(Appointment)
            .where(Appointment.id == appointment.id, Appointment.status == "agendado")
            .values(status="cancelado", cancelled_at=self._clock.now())
            .execution_options(synchronize_session=False)
        )
        if released.rowcount != 1:  # type: ignore[attr-defined]
            raise DomainError("conflict", "tools.error.appointment_cancelled")
        session.execute(
            update(AppointmentSlot)
            .where(AppointmentSlot.id == appointment.slot_id, AppointmentSlot.booked > 0)
            .values(booked=AppointmentSlot.booked - 1)
            .execution_options(synchronize_session=False)
        )

    def cancel(self, appointment_id: str) -> dict[str, Any]:
        aid = parse_id(appointment_id, "tools.error.invalid_appointment_id")
        with self._sessions.begin() as session:
            appointment = session.get(Appointment, aid)
            if appointment is None:
                raise DomainError("not_found", "tools.error.appointment_not_found")
            self._release(session, appointment)
        return {"appointment_id": str(aid), "status": "cancelado"}

    def reschedule(self, appointment_id: str, slot_id: str) -> dict[str, Any]:
        """Takes the new slot and releases the old one in one transaction: the citizen never holds neither."""
        aid = parse_id(appointment_id, "tools.error.invalid_appointment_id")
        sid = parse_id(slot_id, "tools.error.invalid_slot_id")
        try:
            with self._sessions.begin() as session:
                old = session.get(Appointment, aid)
                if old is None:
                    raise DomainError("not_found", "tools.error.appointment_not_found")
                slot = self._take(session, sid)
                self._release(session, old)
                new = Appointment(slot_id=sid, citizen_id=old.citizen_id, created_at=self._clock.now())
                session.add(new)
                session.flush()
                return {
                    "appointment_id": str(new.id),
                    "previous_appointment_id": str(aid),
                    **self._public(session, slot),
                }
        except IntegrityError as exc:
            raise DomainError("conflict", "tools.error.already_booked") from exc

    def list_for(self, citizen_id: int) -> list[dict[str, Any]]:
        with self._sessions() as session:
            rows = session.execute(
                select(Appointment, AppointmentSlot)
                .join(AppointmentSlot, AppointmentSlot.id == Appointment.slot_id)
                .where(Appointment.citizen_id == citizen_id)
                .order_by(AppointmentSlot.starts_at)
            ).all()
            return [{"appointment_id": str(a.id), "status": a.status, **self._public(session, s)} for a, s in rows]
