"""Demo data for the fictional Santa Aurora: citizens, protocols in every status, debts, appointment slots.

Deterministic and idempotent: running it again changes nothing that is already there. Dates are relative to the
day it runs (debts fall due around it, slots start the next business day). See docs/demo-data.md.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from domain.calendar import is_business_day
from domain.catalog import SERVICES
from domain.models import AppointmentSlot, Debt, Protocol, ServiceEntry
from domain.wiring import Domain


@dataclass(frozen=True)
class DemoCitizen:
    cpf: str
    name: str
    birth_date: date
    phone: str
    email: str


# Fictitious people. The CPFs only have valid check digits (tests verify them with validate-docbr).
_PEOPLE: tuple[tuple[str, str, date, str], ...] = (
    ("98369006086", "Maria Aparecida da Silva", date(1985, 3, 15), "maria.silva"),
    ("26773546834", "João Pedro Santos", date(1990, 7, 2), "joao.santos"),
    ("48745268533", "Ana Beatriz Oliveira", date(1978, 11, 23), "ana.oliveira"),
    ("96938493707", "Carlos Eduardo Souza", date(1965, 1, 9), "carlos.souza"),
    ("39640175749", "Francisca Lima Rodrigues", date(1952, 5, 30), "francisca.lima"),
    ("22846428964", "Lucas Gabriel Ferreira", date(2001, 9, 14), "lucas.ferreira"),
    ("26937195508", "Juliana Costa Almeida", date(1988, 12, 1), "juliana.almeida"),
    ("62799556051", "Antônio Carlos Pereira", date(1970, 4, 18), "antonio.pereira"),
    ("63622461446", "Fernanda Ribeiro Gomes", date(1995, 6, 27), "fernanda.gomes"),
    ("16274373209", "José Raimundo Carvalho", date(1948, 8, 8), "jose.carvalho"),
    ("62229751190", "Patrícia Martins Rocha", date(1983, 2, 11), "patricia.rocha"),
    ("96413411627", "Rafael Augusto Barbosa", date(1992, 10, 5), "rafael.barbosa"),
    ("33973592950", "Luíza Helena Araújo", date(1975, 3, 3), "luiza.araujo"),
    ("60375196684", "Marcos Vinícius Dias", date(1986, 1, 25), "marcos.dias"),
    ("40735370320", "Sebastiana Nunes Teixeira", date(1958, 12, 19), "sebastiana.teixeira"),
    ("88636999090", "Thiago Henrique Moreira", date(1999, 4, 7), "thiago.moreira"),
    ("69892900480", "Camila Fernandes Castro", date(1991, 8, 16), "camila.castro"),
    ("00610340530", "Raimunda Freitas Cardoso", date(1962, 7, 21), "raimunda.cardoso"),
    ("47730387999", "Gustavo Correia Pinto", date(1980, 10, 30), "gustavo.pinto"),
    ("50766805700", "Aline Cristina Mendes", date(1993, 5, 12), "aline.mendes"),
    ("47207378890", "Paulo Roberto Azevedo", date(1968, 9, 4), "paulo.azevedo"),
    ("36907531046", "Beatriz Vieira Monteiro", date(2003, 2, 28), "beatriz.monteiro"),
    ("31455744506", "Edson Luiz Cavalcanti", date(1957, 11, 11), "edson.cavalcanti"),
    ("96598471575", "Vitória Regina Batista", date(1997, 3, 22), "vitoria.batista"),
)
CITIZENS: tuple[DemoCitizen, ...] = tuple(
    DemoCitizen(cpf, name, birth, f"+55 11 91234-{5601 + n}", f"{mailbox}@example.com")
    for n, (cpf, name, birth, mailbox) in enumerate(_PEOPLE)
)


@dataclass(frozen=True)
class DemoProtocol:
    citizen: int  # index into CITIZENS
    service: str
    description: str
    address: str | None
    path: tuple[str, ...]  # statuses after "aberto", in order
    days_ago: int


PROTOCOLS: tuple[DemoProtocol, ...] = (
    DemoProtocol(0, "iluminacao_publica", "Poste apagado em frente ao número 120 há uma semana.",
                 "Rua das Acácias, 120 - Centro", (), 1),
    DemoProtocol(0, "tapa_buraco", "Buraco grande na pista, perto da faixa de pedestres.",
                 "Avenida Brasil, 455 - Jardim Aurora", ("em_analise",), 6),
    DemoProtocol(0, "coleta_lixo", "A coleta não passou na terça-feira.",
                 "Rua das Acácias, 120 - Centro", ("em_analise", "encaminhado", "concluido"), 30),
    DemoProtocol(1, "poda_arvore", "Galho de árvore encostando na fiação.",
                 "Rua Ipê Amarelo, 33 - Vila Nova", ("em_analise", "encaminhado"), 12),
    DemoProtocol(1, "iptu_revisao", "A área construída no carnê está maior que a real.",
                 None, ("cancelado",), 20),
    DemoProtocol(2, "alvara", "Pedido de alvará de funcionamento para padaria.",
                 "Rua do Comércio, 78 - Centro", ("em_analise",), 3),
    DemoProtocol(3, "saude_agendamento", "Preciso de consulta com cardiologista na UBS do bairro.",
                 None, (), 0),
    DemoProtocol(4, "tapa_buraco", "Buraco na esquina causando acidentes.",
                 "Rua Sete de Setembro com Rua Goiás", ("em_analise", "encaminhado", "concluido"), 45),
    DemoProtocol(5, "ouvidoria", "Elogio ao atendimento da UBS Central.", None, ("em_analise", "concluido"), 15),
)  # fmt: skip

# (kind, reference, description, amount in cents, due-date offset in days from today, paid)
DEBTS: tuple[tuple[str, str, str, int, int, bool], ...] = (
    ("IPTU", "IPTU {year} - parcela 1/3", "IPTU {year}, primeira parcela", 28_540, -60, True),
    ("IPTU", "IPTU {year} - parcela 2/3", "IPTU {year}, segunda parcela", 28_540, -20, False),
    ("IPTU", "IPTU {year} - parcela 3/3", "IPTU {year}, terceira parcela", 28_540, 10, False),
    ("taxa", "TLP {year}", "Taxa de licença e publicidade", 9_870, 25, False),
    ("multa", "AIT 2026-{n:05d}", "Multa de trânsito municipal (estacionamento irregular)", 19_523, -5, False),
)

SLOT_TIMES = (time(9, 0), time(10, 0), time(11, 0), time(14, 0), time(15, 0))
SLOT_LOCATIONS = {
    "emissao_rg": ("Poupatempo Santa Aurora - Rua XV de Novembro, 200", 1),
    "atendimento_iptu": ("Prefeitura - Setor de Tributos, térreo", 1),
    "vacinacao": ("UBS Central - Rua da Saúde, 10", 3),
    "cadastro_unico": ("CRAS Vila Nova - Rua Ipê Amarelo, 90", 1),
}
SLOT_BUSINESS_DAYS = 10

# (title, text) of the default team's saved replies in the agents' console.
SAVED_REPLIES_TEAM = "atendimento"
SAVED_REPLIES: tuple[tuple[str, str], ...] = (
    ("Saudação", "Olá! Sou da equipe de atendimento da Prefeitura de Santa Aurora. Já li a sua conversa com o "
     "assistente virtual e vou continuar daqui, sem que você precise repetir nada."),
    ("Segunda via do IPTU", "A segunda via do IPTU é gratuita e sai na hora no Portal do Contribuinte "
     "(https://www.santaaurora.sp.gov.br/contribuinte), em \"IPTU – Emitir segunda via\": basta informar a "
     "inscrição imobiliária ou o CPF/CNPJ do proprietário. O boleto já vem com o valor atualizado e QR Code Pix."),
    ("Certidão negativa de débitos", "A certidão negativa de débitos municipais é gratuita: no Portal do "
     "Contribuinte, escolha \"Certidões – Emitir certidão de débitos\", o tipo (imobiliária ou mobiliária) e "
     "informe a inscrição, o CPF ou o CNPJ. Sem pendências, o PDF sai na hora."),
    ("Acompanhar um protocolo", "Você pode acompanhar o seu protocolo por aqui mesmo: é só me dizer o número "
     "completo, com o código de acesso que veio na abertura (AAAA-NNNNNN-XXXX), que eu confiro a situação e o "
     "prazo. Se o protocolo está no seu nome, também dá para consultar confirmando sua identidade."),
    ("Documentos para a identidade (CIN)", "Para a Carteira de Identidade, agende no portal ou pelo 156 e leve ao "
     "Posto Aurora Fácil a certidão de nascimento ou de casamento e o CPF. A foto é tirada no local, e a primeira "
     "via é gratuita."),
    ("Encerramento", "Posso ajudar em mais alguma coisa? Se não, vou encerrar o atendimento: em seguida você recebe "
     "o número de protocolo deste atendimento e uma pesquisa rápida de satisfação."),
)  # fmt: skip


@dataclass
class SeedReport:
    services: int = 0
    citizens: int = 0
    protocols: int = 0
    debts: int = 0
    slots: int = 0
    saved_replies: int = 0
    created: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"seed: {self.citizens} citizens, {self.protocols} protocols, {self.debts} debts, {self.slots} slots, "
            f"{self.services} services, {self.saved_replies} saved replies "
            f"(new: {', '.join(f'{k} {v}' for k, v in self.created.items()) or 'none'})"
        )


def _count(report: SeedReport, key: str) -> None:
    report.created[key] = report.created.get(key, 0) + 1


def seed_services(domain: Domain, report: SeedReport) -> None:
    with domain.sessions.begin() as session:
        for spec in SERVICES:
            entry = session.get(ServiceEntry, spec.code)
            if entry is None:
                entry = ServiceEntry(code=spec.code)
                session.add(entry)
                _count(report, "services")
            entry.name, entry.kind, entry.team = spec.name, spec.kind, spec.team
            entry.sla_business_days, entry.aliases, entry.active = spec.sla_business_days, list(spec.aliases), True
    report.services = len(SERVICES)


# typing.Protocol in full: a Protocol here is a citizen's case (domain.models.Protocol).
class SavedReplyBook(typing.Protocol):
    """The agents' saved replies, kept by the handoff (`handoff.saved_replies.SavedReplies`)."""

    def titles(self, team: str) -> set[str]: ...

    def create(self, *, team: str, title: str, text: str, author: str) -> object: ...


def seed(domain: Domain, replies: SavedReplyBook | None = None) -> SeedReport:
    """Create (or complete) the demo data set, and with `replies` the default team's saved replies; the database
    must already be migrated."""
    report = SeedReport()
    seed_services(domain, report)
    ids: list[int] = []
    with domain.sessions.begin() as session:
        for person in CITIZENS:
            existed = domain.citizens.find_in(session, person.cpf) is not None
            citizen = domain.citizens.upsert(
                session,
                cpf=person.cpf,
                name=person.name,
                birth_date=person.birth_date,
                phone=person.phone,
                email=person.email,
                consent_whatsapp=True,
                consent_email=True,
            )
            ids.append(citizen.id)
            if not existed:
                _count(report, "citizens")
    report.citizens = len(ids)
    _seed_protocols(domain, ids, report)
    _seed_debts(domain, ids, report)
    _seed_slots(domain, report)
    if replies is not None:
        _seed_saved_replies(replies, report)
    return report


def _seed_protocols(domain: Domain, ids: list[int], report: SeedReport) -> None:
    for spec in PROTOCOLS:
        citizen_id = ids[spec.citizen]
        with domain.sessions() as session:
            exists = session.scalar(
                select(Protocol.id).where(Protocol.citizen_id == citizen_id, Protocol.description == spec.description)
            )
        if exists is None:
            view = domain.protocols.open(
                service=spec.service,
                description=spec.description,
                address=spec.address,
                citizen_id=citizen_id,
                anonymous=False,
                actor="system:seed",
                channel="seed",
            )
            for status in spec.path:
                domain.protocols.transition(view.protocol.number, status, actor="system:seed", note=_note(status))
            _backdate(domain, view.protocol.id, spec.days_ago)
            _count(report, "protocols")
    report.protocols = len(PROTOCOLS)


def _note(status: str) -> str:
    return {
        "em_analise": "Pedido recebido pela equipe responsável.",
        "encaminhado": "Encaminhado para execução em campo.",
        "concluido": "Serviço realizado.",
        "cancelado": "Cancelado a pedido do cidadão.",
    }[status]


def _backdate(domain: Domain, protocol_id: int, days: int) -> None:
    """Spreads the demo history over the past `days` so the protocols look lived-in."""
    if days <= 0:
        return
    from domain.calendar import add_business_days
    from domain.models import ProtocolEvent, ServiceEntry

    with domain.sessions.begin() as session:
        protocol = session.get(Protocol, protocol_id)
        assert protocol is not None
        service = session.get(ServiceEntry, protocol.service_code)
        opened = protocol.opened_at - timedelta(days=days)
        protocol.opened_at = opened
        protocol.due_date = add_business_days(
            domain.clock.local(opened).date(), service.sla_business_days if service else 10
        )
        events = session.scalars(
            select(ProtocolEvent).where(ProtocolEvent.protocol_id == protocol_id).order_by(ProtocolEvent.id)
        ).all()
        step = timedelta(days=days) / max(1, len(events))
        for i, event in enumerate(events):
            event.at = opened + step * i
        protocol.updated_at = events[-1].at if events else opened
        if protocol.closed_at is not None:
            protocol.closed_at = protocol.updated_at


def _seed_debts(domain: Domain, ids: list[int], report: SeedReport) -> None:
    today = domain.clock.today()
    total = 0
    with domain.sessions.begin() as session:
        for n, citizen_id in enumerate(ids):
            # Every third citizen owes nothing, so "no debts" is part of the demo too.
            if n % 3 == 2:
                continue
            for i, (kind, reference, description, cents, offset, paid) in enumerate(DEBTS):
                ref = reference.format(year=today.year, n=n * 10 + i)
                total += 1
                exists = session.scalar(select(Debt.id).where(Debt.citizen_id == citizen_id, Debt.reference == ref))
                if exists is not None:
                    continue
                due = today + timedelta(days=offset)
                session.add(
                    Debt(
                        citizen_id=citizen_id,
                        kind=kind,
                        reference=ref,
                        description=description.format(year=today.year),
                        amount_cents=cents + n * 100,
                        due_date=due,
                        status="pago" if paid else "aberto",
                        paid_at=datetime.combine(due, time(12, 0), domain.clock.zone) if paid else None,
                    )
                )
                _count(report, "debts")
    report.debts = total


def _seed_slots(domain: Domain, report: SeedReport) -> None:
    zone = domain.clock.zone
    day = domain.clock.today()
    days: list[date] = []
    while len(days) < SLOT_BUSINESS_DAYS:
        day += timedelta(days=1)
        if is_business_day(day):
            days.append(day)
    total = 0
    with domain.sessions.begin() as session:
        for service, (location, capacity) in SLOT_LOCATIONS.items():
            for d in days:
                for t in SLOT_TIMES:
                    starts = datetime.combine(d, t, zone)
                    total += 1
                    exists = session.scalar(
                        select(AppointmentSlot.id).where(
                            AppointmentSlot.service_code == service,
                            AppointmentSlot.starts_at == starts,
                            AppointmentSlot.location == location,
                        )
                    )
                    if exists is None:
                        session.add(
                            AppointmentSlot(
                                service_code=service, starts_at=starts, location=location, capacity=capacity, booked=0
                            )
                        )
                        _count(report, "slots")
    report.slots = total


def _seed_saved_replies(replies: SavedReplyBook, report: SeedReport) -> None:
    titles = replies.titles(SAVED_REPLIES_TEAM)
    for title, text in SAVED_REPLIES:
        if title not in titles:
            replies.create(team=SAVED_REPLIES_TEAM, title=title, text=text, author="system:seed")
            _count(report, "saved_replies")
    report.saved_replies = len(SAVED_REPLIES)
