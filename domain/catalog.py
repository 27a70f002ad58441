"""The service catalogue and teams the demo body uses, and how free text finds a service."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from unidecode import unidecode

TEAMS: dict[str, str] = {
    "atendimento": "Atendimento geral",
    "obras": "Obras e infraestrutura",
    "limpeza_urbana": "Limpeza urbana",
    "meio_ambiente": "Meio ambiente",
    "tributos": "Tributos",
    "saude": "Saúde",
    "ouvidoria": "Ouvidoria",
}
DEFAULT_TEAM = "atendimento"


@dataclass(frozen=True)
class ServiceSpec:
    code: str
    name: str
    kind: str  # "protocol", "appointment" or "contact"
    team: str
    sla_business_days: int = 10
    aliases: tuple[str, ...] = field(default_factory=tuple)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("iluminacao_publica", "Iluminação pública", "protocol", "obras", 5,
                ("poste apagado", "lampada queimada", "luz do poste", "iluminacao")),
    ServiceSpec("tapa_buraco", "Tapa-buraco", "protocol", "obras", 10,
                ("buraco", "buraco na rua", "pavimentacao", "asfalto")),
    ServiceSpec("coleta_lixo", "Coleta de lixo", "protocol", "limpeza_urbana", 3,
                ("lixo", "coleta", "entulho", "coleta de lixo")),
    ServiceSpec("poda_arvore", "Poda de árvore", "protocol", "meio_ambiente", 15,
                ("poda", "arvore", "galho", "corte de arvore")),
    ServiceSpec("iptu_revisao", "Revisão de IPTU", "protocol", "tributos", 20,
                ("revisao de iptu", "iptu", "contestar iptu")),
    ServiceSpec("alvara", "Alvará", "protocol", "tributos", 15,
                ("alvara de funcionamento", "alvara de construcao", "licenca")),
    ServiceSpec("saude_agendamento", "Saúde: pedido de agendamento", "protocol", "saude", 5,
                ("consulta", "posto de saude", "ubs")),
    ServiceSpec("ouvidoria", "Ouvidoria: reclamação, denúncia ou elogio", "protocol", "ouvidoria", 10,
                ("reclamacao", "denuncia", "elogio", "sugestao")),
    ServiceSpec("emissao_rg", "Emissão de RG", "appointment", "atendimento", 0,
                ("rg", "carteira de identidade", "identidade", "cin")),
    ServiceSpec("atendimento_iptu", "Atendimento presencial de IPTU", "appointment", "tributos", 0,
                ("iptu presencial", "atendimento iptu")),
    ServiceSpec("vacinacao", "Vacinação", "appointment", "saude", 0, ("vacina", "vacinas")),
    ServiceSpec("cadastro_unico", "Cadastro Único (CadÚnico)", "appointment", "atendimento", 0,
                ("cadunico", "cad unico", "bolsa familia")),
)  # fmt: skip


# Not a service citizens ask for: the record of a finished service by a person, a protocol of kind "contact"
# that closing a handoff opens and the protocol_open tool cannot (decision 0033).
CONTACT_SERVICE = ServiceSpec("atendimento_humano", "Atendimento humano", "contact", DEFAULT_TEAM, 0)


def normalize_key(text: str) -> str:
    """Lower-case ASCII words joined by underscores: "Iluminação Pública" → "iluminacao_publica"."""
    return re.sub(r"[^a-z0-9]+", "_", unidecode(text).lower()).strip("_")
