"""What the assistant knows about the tools it may use: policies, services, teams, and their pt-BR words.

The server is the authority on what a call may do; this only decides how the assistant talks about a tool
(whether it needs a verified identity first, whether the citizen must confirm, which words name a service).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import fold


@dataclass(frozen=True)
class ToolPolicy:
    name: str
    # Reveals or changes the citizen's own data: a verified identity is needed before the call.
    needs_identity: bool = False
    # Changes something the citizen cannot undo alone: an explicit "sim" before the call.
    confirm: bool = False
    # Short English description for the model's prompt (the small models follow English best).
    summary: str = ""


POLICIES: dict[str, ToolPolicy] = {
    p.name: p
    for p in (
        ToolPolicy("citizen_verify", summary="confirm the citizen's identity (CPF and birth date) when they offer to"),
        ToolPolicy("citizen_lookup", needs_identity=True, summary="show the citizen's own registration data"),
        ToolPolicy(
            "payment_list_debts",
            needs_identity=True,
            summary="list the citizen's own debts: IPTU, taxas, multas, what they owe (débitos, dívidas)",
        ),
        ToolPolicy(
            "payment_second_copy",
            needs_identity=True,
            summary="second copy of a debt to pay it now: Pix copia e cola or boleto (segunda via)",
        ),
        ToolPolicy(
            "protocol_open",
            needs_identity=True,
            confirm=True,
            summary="open a service request or complaint: street light out, pothole, garbage, tree, "
            "IPTU review, permit, health, ombudsman (abrir protocolo, reclamação, solicitação)",
        ),
        ToolPolicy("protocol_status", summary="status of a protocol the citizen gives the number of (acompanhar)"),
        ToolPolicy("protocol_list", needs_identity=True, summary="list the citizen's own protocols"),
        ToolPolicy(
            "protocol_add_comment",
            needs_identity=True,
            summary="add information or a comment to an existing protocol",
        ),
        ToolPolicy(
            "appointment_slots",
            summary="free in-person appointment times: RG, IPTU desk, vaccination, CadÚnico (horários)",
        ),
        ToolPolicy(
            "appointment_book", needs_identity=True, confirm=True, summary="book one of the offered times (agendar)"
        ),
        ToolPolicy(
            "appointment_cancel",
            needs_identity=True,
            confirm=True,
            summary="cancel the citizen's appointment (cancelar agendamento)",
        ),
        ToolPolicy("appointment_list", needs_identity=True, summary="list the citizen's own appointments"),
        ToolPolicy("handoff_to_human", summary="hand the conversation to a human agent"),
    )
}
ASSISTANT_TOOLS: tuple[str, ...] = tuple(POLICIES)


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    kind: str  # "protocol" or "appointment"
    team: str
    # Folded (lower case, no accents) regular expressions that name the service in a citizen's words.
    words: str
    needs_address: bool = False


SERVICES: tuple[Service, ...] = (
    Service(
        "iluminacao_publica",
        "Iluminação pública",
        "protocol",
        "obras",
        r"poste|lampada|luz (da|de|na) (rua|praca|poste)|luz do poste|iluminacao|ilumina"
        r"|(rua|praca) (esta )?(escura|apagada)|(esta|ta) apagad|queimad"
        r"|\b(rua|praca|avenida|quadra|bairro)\b.{0,15}\bsem (luz|iluminacao)\b",
        needs_address=True,
    ),
    Service(
        "tapa_buraco",
        "Tapa-buraco",
        "protocol",
        "obras",
        r"burac|buraqu|cratera|asfalto|pavimenta|calcamento",
        needs_address=True,
    ),
    Service(
        "coleta_lixo",
        "Coleta de lixo",
        "protocol",
        "limpeza_urbana",
        r"\blixo|coleta|entulho|lixeira|caminhao do lixo|recolh",
        needs_address=True,
    ),
    Service(
        "poda_arvore",
        "Poda de árvore",
        "protocol",
        "meio_ambiente",
        r"arvore|\bpoda|podar|galho",
        needs_address=True,
    ),
    Service(
        "iptu_revisao",
        "Revisão de IPTU",
        "protocol",
        "tributos",
        r"(revis|contest|impugna|recurso)\w* (d[oa] )?(meu |o )?iptu|iptu (errado|alto|caro|incorreto|abusivo)"
        # "o IPTU veio cobrando 200 m², quero que revisem": the complaint first, the review asked after it.
        r"|iptu\b.{0,80}\b(revis\w*|contest\w*|errad[oa]|incorret[oa]|indevid[oa]|cobrando a mais|metragem)",
    ),
    Service("alvara", "Alvará", "protocol", "tributos", r"alvara|licenca de funcionamento"),
    Service(
        "saude_agendamento",
        "Saúde: pedido de agendamento",
        "protocol",
        "saude",
        r"consulta|posto de saude|\bubs\b|medic[oa]|exame",
    ),
    Service(
        "ouvidoria",
        "Ouvidoria",
        "protocol",
        "ouvidoria",
        r"ouvidoria|denuncia|elogi|sugest|reclama",
    ),
    Service("emissao_rg", "Emissão de RG", "appointment", "atendimento", r"\brg\b|identidade|\bcin\b"),
    Service(
        "atendimento_iptu",
        "Atendimento presencial de IPTU",
        "appointment",
        "tributos",
        r"iptu",
    ),
    Service("vacinacao", "Vacinação", "appointment", "saude", r"vacin"),
    Service(
        "cadastro_unico",
        "Cadastro Único (CadÚnico)",
        "appointment",
        "atendimento",
        r"cad ?unico|cadastro unico|bolsa familia",
    ),
)
SERVICE_BY_CODE: dict[str, Service] = {s.code: s for s in SERVICES}
PROTOCOL_SERVICES: tuple[str, ...] = tuple(s.code for s in SERVICES if s.kind == "protocol")
APPOINTMENT_SERVICES: tuple[str, ...] = tuple(s.code for s in SERVICES if s.kind == "appointment")
_SERVICE_PATTERNS = {s.code: re.compile(s.words) for s in SERVICES}

TEAMS: dict[str, str] = {
    "atendimento": "Atendimento geral",
    "obras": "Obras",
    "limpeza_urbana": "Limpeza urbana",
    "meio_ambiente": "Meio ambiente",
    "tributos": "Tributos",
    "saude": "Saúde",
    "ouvidoria": "Ouvidoria",
}
_TEAM_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("tributos", re.compile(r"iptu|imposto|tribut|taxa|divida|debito|boleto|alvara|\bitbi\b|\biss\b|multa")),
    ("saude", re.compile(r"saude|\bubs\b|posto|medic|vacin|consulta|exame|hospital")),
    ("obras", re.compile(r"obra|buraco|asfalto|poste|iluminacao|calcada|pavimenta")),
    ("limpeza_urbana", re.compile(r"\blixo|coleta|entulho|limpeza")),
    ("meio_ambiente", re.compile(r"arvore|poda|ambient|queimada|animal")),
    ("ouvidoria", re.compile(r"ouvidoria|denuncia|reclamacao formal")),
)


def services_in(text: str, kind: str | None = None) -> list[str]:
    """Service codes the (folded) text names, in catalogue order."""
    folded = fold(text)
    return [
        code
        for code, pattern in _SERVICE_PATTERNS.items()
        if (kind is None or SERVICE_BY_CODE[code].kind == kind) and pattern.search(folded)
    ]


def team_for(text: str) -> str | None:
    folded = fold(text)
    for team, pattern in _TEAM_WORDS:
        if pattern.search(folded):
            return team
    return None


def service_name(code: str) -> str:
    service = SERVICE_BY_CODE.get(code)
    return service.name if service else code.replace("_", " ")
