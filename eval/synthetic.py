"""Generate a pt-BR retrieval benchmark in the data-set format, for measuring `atende eval retrieval`.

    python -m eval.synthetic --out var/bench-kb   # writes kb.jsonl and questions.jsonl (~250 docs, ~1,000 questions)

The knowledge base is the public articles of knowledge/ plus service pages built from
eval/data/synthetic_topics.txt (two related pages, "request" and "renew or cancel", for some services, so
near-duplicates compete). Questions are colloquial, written from how citizens describe a need rather
than from titles, and some carry typos and chat abbreviations. The generator is seeded: the same
command gives the same files. A small sample is committed in eval/data/sample_kb.jsonl.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rag.loaders import load_directory

DATA = Path(__file__).parent / "data"
KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"

AREAS = {
    "Secretaria de Saúde": ("Centro de Especialidades, Rua Sete de Setembro, 410", "(19) 3555-0300"),
    "Secretaria de Assistência Social": ("CRAS Centro, Rua das Acácias, 95", "(19) 3555-0420"),
    "Secretaria de Obras e Urbanismo": ("Paço Municipal, 2º andar, Av. Brasil, 1000", "(19) 3555-0510"),
    "Secretaria da Fazenda": ("Praça de Atendimento, Praça da Matriz, 45", "(19) 3555-0156"),
    "Secretaria de Meio Ambiente": ("Parque Ecológico, Estrada do Horto, km 2", "(19) 3555-0630"),
    "Secretaria de Educação": ("Central de Matrículas, Rua Padre Anchieta, 180", "(19) 3555-0700"),
    "Secretaria de Mobilidade": ("Terminal Central, Av. Rio Branco, 77", "(19) 3555-0820"),
    "Secretaria de Cultura, Esporte e Lazer": ("Centro Cultural, Rua XV de Novembro, 321", "(19) 3555-0910"),
    "Secretaria de Desenvolvimento Econômico": ("Sala do Empreendedor, Rua do Comércio, 60", "(19) 3555-0990"),
    "Secretaria de Agricultura": ("Casa da Agricultura, Rodovia SP-191, km 12", "(19) 3555-0880"),
}
DOCUMENTS = [
    "documento de identidade com foto",
    "CPF",
    "comprovante de residência recente",
    "Cartão SUS",
    "certidão de nascimento ou casamento",
    "comprovante de renda da família",
    "número do cadastro no CadÚnico",
    "procuração, se for representante",
    "fotos do local",
    "croqui ou planta simples",
    "laudo ou relatório do profissional",
    "matrícula atualizada do imóvel",
]
HOURS = ["de segunda a sexta, das 8h às 17h", "de segunda a sexta, das 9h às 16h", "de segunda a sábado, das 7h às 13h"]
CHANNELS = ["pelo Portal de Serviços", "pelo telefone 156", "pelo aplicativo Aurora Cidadã", "presencialmente"]
INTENTS = ("cost", "deadline", "documents", "where", "hours", "validity", "how")
ASK = {
    "cost": ["quanto custa {n}?", "tem que pagar alguma coisa pra {n}?", "qual o valor pra {n}", "é de graça {n}?"],
    "deadline": ["quanto tempo demora {n}?", "em quantos dias sai {n}", "qual o prazo pra {n}?", "demora muito {n}?"],
    "documents": [
        "que papéis preciso levar pra {n}?",
        "quais documentos pede pra {n}",
        "o que tenho que apresentar pra {n}?",
    ],
    "where": ["onde eu vou pra {n}?", "qual o endereço pra {n}", "aonde fica o lugar de {n}?"],
    "hours": ["que horas funciona o atendimento de {n}?", "qual o horário pra {n}", "abre sábado pra {n}?"],
    "validity": ["por quanto tempo vale {n}?", "tem validade {n}?", "depois de quanto tempo tenho que renovar {n}"],
    "how": ["como faço pra {n}?", "por onde peço {n}", "tem como pedir {n} pela internet?"],
}
VARIANT_ASK = ["quero renovar ou cancelar: {n}", "como cancelo {n}?", "preciso renovar {n}, como faz?"]


@dataclass(frozen=True)
class Topic:
    slug: str
    title: str
    needs: tuple[str, ...]


def load_topics(path: Path = DATA / "synthetic_topics.txt") -> list[Topic]:
    topics = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        slug, title, needs = (p.strip() for p in line.split("|"))
        topics.append(Topic(slug, title, tuple(n.strip() for n in needs.split(";"))))
    return topics


def _facts(rng: random.Random) -> dict[str, str]:
    area = rng.choice(list(AREAS))
    address, phone = AREAS[area]
    free = rng.random() < 0.35
    return {
        "area": area,
        "address": address,
        "phone": phone,
        "cost": "gratuito"
        if free
        else f"R$ {rng.choice([12, 25, 38, 45, 60, 87, 120, 150, 230])},{rng.choice(['00', '50', '90'])}",
        "deadline": f"{rng.choice([2, 5, 7, 10, 15, 20, 30, 45, 60])} dias úteis",
        "validity": rng.choice(["6 meses", "1 ano", "2 anos", "5 anos", "90 dias"]),
        "hours": rng.choice(HOURS),
        "channel": rng.choice(CHANNELS),
        "documents": ", ".join(rng.sample(DOCUMENTS, 3)),
    }


def _page(topic: Topic, facts: dict[str, str], rng: random.Random, variant: bool) -> str:
    # A page words the need once, in its own way; questions use any of the wordings.
    need = topic.needs[0]
    action = "A renovação ou o cancelamento" if variant else "O pedido"
    intro = (
        f"Este serviço da {facts['area']} atende quem precisa de {need}. "
        if rng.random() < 0.5
        else f"{topic.title}: serviço oferecido pela {facts['area']} da Prefeitura de Santa Aurora, "
        f"para casos como {need}. "
    )
    cost = (
        "O serviço é gratuito."
        if facts["cost"] == "gratuito"
        else f"A taxa é de {facts['cost']}, paga por boleto ou Pix."
    )
    blocks = [
        intro + f"{action} pode ser feito {facts['channel']} ou no atendimento presencial.",
        f"## Documentos\n\nApresente {facts['documents']}.",
        f"## Prazo e valor\n\n{cost} O prazo de resposta é de {facts['deadline']}. "
        f"O documento emitido tem validade de {facts['validity']}.",
        f"## Onde ir\n\n{facts['address']}, {facts['hours']}. Telefone {facts['phone']}.",
    ]
    if rng.random() < 0.5:
        blocks[1:3] = blocks[2:0:-1]
    return "\n\n".join(blocks)


def _typos(text: str, rng: random.Random) -> str:
    if rng.random() < 0.25:
        from unidecode import unidecode

        text = unidecode(text)
    if rng.random() < 0.25:
        for a, b in (("que ", "q "), ("você", "vc"), ("para ", "pra "), ("quanto", "qnto"), ("quais", "qais")):
            text = text.replace(a, b)
    return text.lower() if rng.random() < 0.5 else text


def _answer(intent: str, facts: dict[str, str]) -> list[str]:
    return {
        "cost": [facts["cost"]],
        "deadline": [facts["deadline"]],
        "documents": facts["documents"].split(", "),
        "where": [facts["address"]],
        "hours": [facts["hours"]],
        "validity": [facts["validity"]],
        "how": [facts["channel"].removeprefix("pelo ").removeprefix("pela ")],
    }[intent]


def generate(seed: int = 7, per_doc: int = 5, variants: int = 50) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    kb: list[dict[str, Any]] = []
    questions: list[dict[str, Any]] = []
    for doc in load_directory(KNOWLEDGE):
        if doc.audience == "public":
            kb.append({"id": doc.id, "title": doc.title, "text": doc.text, "source": doc.url})
    foundation = yaml.safe_load((Path(__file__).parent / "suites" / "foundation.yaml").read_text(encoding="utf-8"))
    for case in foundation["cases"]:
        last = case["turns"][-1]
        cites = (last.get("expect") or {}).get("cites", {}).get("any")
        if len(case["turns"]) == 1 and cites:
            facts = (last.get("expect") or {}).get("contains_any", [])
            questions.append({"id": f"k-{case['id']}", "question": last["user"], "answers": facts, "doc_id": cites[0]})
    for i, topic in enumerate(load_topics()):
        for variant in (False, True) if i < variants else (False,):
            facts = _facts(rng)
            doc_id = f"{topic.slug}-{'renovacao' if variant else 'pedido'}"
            title = f"Renovação ou cancelamento – {topic.title}" if variant else topic.title
            kb.append(
                {
                    "id": doc_id,
                    "title": title,
                    "text": _page(topic, facts, rng, variant),
                    "source": f"https://servicos.santaaurora.sp.gov.br/{doc_id}",
                }
            )
            for j in range(per_doc if not variant else 2):
                need = rng.choice(topic.needs)
                if variant:
                    text = rng.choice(VARIANT_ASK).format(n=need)
                    intent = "how"
                else:
                    intent = INTENTS[(j + rng.randrange(len(INTENTS))) % len(INTENTS)]
                    text = rng.choice(ASK[intent]).format(n=need)
                questions.append(
                    {
                        "id": f"{doc_id}-{j}",
                        "question": _typos(text, rng),
                        "answers": _answer(intent, facts),
                        "doc_id": doc_id,
                    }
                )
    return kb, questions


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("var/bench-kb"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    kb, questions = generate(args.seed)
    write_jsonl(kb, args.out / "kb.jsonl")
    write_jsonl(questions, args.out / "questions.jsonl")
    print(f"{len(kb)} documents, {len(questions)} questions in {args.out}")


if __name__ == "__main__":
    main()
