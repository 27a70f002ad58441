"""Extractive answers: the parts of an article that answer the question, in the article's own words.

A small model on two CPU cores neither carries facts reliably nor knows when it has them
(docs/decisions/0045-extractive-answers.md). So the answer is composed from the source text:
the article's sentences, list items and table rows are scored against the question, the best ones are
kept with their structure (a numbered step stays numbered, a list keeps its lead-in), and the answer is
cut to a word budget. How much of the question the kept parts cover is the evidence that decides between
answering and abstaining.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from rag.chunking import split_sentences
from rag.text import content_terms, fold
from rag.types import Chunk

COMPOSE_VERSION = "extract-v1"
UnitKind = Literal["sentence", "item", "row"]

_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
# "Leve:", "peça o reparo pelos canais abaixo.", "nos seguintes casos:": a sentence that introduces a list.
_LEAD = re.compile(r":\s*$|\b(abaixo|a seguir|seguintes?)\s*[.:]?\s*$", re.I)
_STEP = re.compile(r"^\s*\d{1,2}[.)]\s+")
# "**Pelo portal:** acesse …" loses its markup in the index; "Pelo portal: acesse …" keeps the label.
_LABEL = re.compile(r"^(\s*(?:[-*+•]|\d{1,2}[.)])\s+)([^:]{2,60}:)\s+(.*)$")

# Words that say how a question is asked, not what it is about: they must not decide which sentence answers.
_GENERIC_WORDS = (
    "como faço fazer faz posso pode podem preciso precisa precisamos quero queria gostaria saber sei consigo "
    "conseguir consegue tem tenho ter onde quando qual quais quanto quanta quantos quantas pra para dá existe "
    "informação informações ajuda favor olá oi bom dia tarde noite alguém vocês você prefeitura cidade "
    "município aqui isso esse essa coisa algum alguma hoje agora ainda sobre também mesmo então aí"
)

Cue = Literal["cost", "when", "where", "contact", "documents", "how", "who"]

# What kind of fact a question asks for, and what a sentence carrying that kind of fact looks like.
_CUES: dict[Cue, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "cost": (
        re.compile(
            r"\b(quanto (custa|e|eh|sai|fica|pago|vou pagar)|valor|preco|custa|custo|gratis|gratuit\w*|"
            r"taxa|tarifa|cobrad\w*|(?<!preciso )(?<!tenho que )(?<!tenho de )(?<!devo )pagar|pago|paga|desconto)\b"
        ),
        re.compile(r"r\$|\bgratuit\w*|\bgratis\b|sem custo|\bisent\w*|\bnao (e )?cobrad\w*|\bvalor\b|\d+ ?%"),
    ),
    "when": (
        re.compile(
            r"\b(quando|prazo|ate quando|que dia|qual dia|data|vence|vencimento|horario|que horas|"
            r"quanto tempo|demora|dias?)\b"
        ),
        re.compile(
            r"\b\d{1,2}h\d{0,2}\b|\b\d{1,2}/\d{1,2}\b|\bdias? (uteis|corridos)\b|\b(janeiro|fevereiro|marco|"
            r"abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro)\b|\b(segunda|terca|quarta|"
            r"quinta|sexta|sabado|domingo)\b|\bprazo\b|\bate o dia\b|\bdia \d"
        ),
    ),
    "where": (
        re.compile(r"\b(onde|endereco|local|lugar|fica|site|portal|link)\b"),
        re.compile(
            r"\b(rua|avenida|av|praca|travessa|alameda|rodovia|estrada|endereco|bairro|centro|posto|"
            r"unidade|sede|portal|site)\b|https?://|\bn[oº] ?\d"
        ),
    ),
    "contact": (
        re.compile(r"\b(telefone|fone|ligar|ligo|contato|whatsapp|zap|e-?mail|numero)\b"),
        re.compile(r"\(\d{2}\)\s?\d{4,5}-?\d{4}|\b\d{3}\b|@\w|whatsapp|\btelefone\b"),
    ),
    "documents": (
        re.compile(
            r"\b(documentos?|(o que|preciso|precisa|tenho que|devo) levar|levo|apresentar|necessari\w*|exig\w*|"
            r"requisitos?|papeis|comprovantes?)\b"
        ),
        re.compile(r"\b(documento|rg|cpf|comprovante|certidao|carteira|cartao|foto|original|copia|laudo|receita)\b"),
    ),
    "how": (
        re.compile(
            r"\b(como|passo|passos|procedimento|solicitar|pedir|emitir|tirar|fazer|agendar|marcar|"
            r"cadastrar|inscrever|renovar|consultar)\b"
        ),
        re.compile(
            r"\b(acesse|clique|informe|envie|compareca|procure|ligue|agende|preencha|leve|escolha|"
            r"solicite|pelo portal|pelo whatsapp|pelo telefone|presencialmente)\b"
        ),
    ),
    "who": (
        re.compile(
            r"\b(quem|tenho direito|tem direito|posso pedir|posso solicitar|pode pedir|beneficiari\w*|"
            r"(preciso|tenho que|tenho de|devo) pagar|sou obrigad\w*|e obrigatori\w*|preciso de (autorizacao|"
            r"alvara|licenca|permissao))\b"
        ),
        re.compile(r"\b(quem|tem direito|podem|pode solicitar|beneficiari\w*|requisito|desde que|renda)\b"),
    ),
}
# Section headings that say which kind of fact a section holds ("Valor", "Prazo", "Documentos", …).
_CUE_HEADINGS: dict[Cue, re.Pattern[str]] = {
    "cost": re.compile(r"\b(valor|valores|custo|preco|taxa|tarifa|gratuidade|pagamento|quanto custa|aliquota)"),
    "when": re.compile(r"\b(prazo|prazos|horario|horarios|calendario|vencimento|quando|datas?|funcionamento)"),
    # "Onde reclamo?" asks for the channel: the section on how to ask answers it.
    "where": re.compile(
        r"\b(onde|endereco|enderecos|locais|local|unidades|postos|canais|como (pedir|solicitar|denunciar|"
        r"reclamar|registrar|apresentar))"
    ),
    "contact": re.compile(r"\b(contato|contatos|telefone|canais|duvidas)"),
    "documents": re.compile(r"\b(documento|documentos|documentacao|o que levar|requisitos)"),
    "how": re.compile(r"\b(como|passo a passo|etapas|solicitar|pedir|inscricao|agendamento|procedimento)"),
    "who": re.compile(r"\b(quem|direito|beneficiarios|requisitos|publico|obrigatori\w*)"),
}
_CUE_BONUS = 0.4
_HEADING_WEIGHT = 1.0
_PRIOR_WEIGHT = 0.3
_TITLE_WEIGHT = 0.3
_STORY_WEIGHT = 0.5
_ASKED_SECTION_SHARE = 0.8
_CUE_PART_SHARE = 0.5


@dataclass(frozen=True)
class Unit:
    """One sentence, list item or table row of an article, in reading order."""

    position: int
    chunk: Chunk
    kind: UnitKind
    text: str
    block: int  # units of one paragraph, list or table share a block
    lead: bool = False  # a sentence ending in ":" that introduces the list after it
    folded: str = ""  # lower case, no accents: what the cue patterns read
    terms: frozenset[str] = frozenset()
    heading_terms: frozenset[str] = frozenset()

    @property
    def words(self) -> int:
        return len(self.text.split())

    @property
    def own_heading(self) -> str:
        """The nearest heading above the unit, folded ("Prazo" of "Taxa > Prazo")."""
        return fold(self.chunk.section.split(" > ")[-1])


@dataclass(frozen=True)
class Selection:
    """The parts chosen to answer a question, and how well they cover it."""

    units: tuple[Unit, ...]
    evidence: float  # idf-weighted share of the question's topic words found in the parts or their headings
    key_coverage: float = 0.0  # share of the question's two rarest topic words found in the parts or headings

    @property
    def text(self) -> str:
        return render(self.units)

    @property
    def quotes(self) -> tuple[str, ...]:
        return tuple(u.text for u in self.units)


def focus_of(question: str) -> str:
    """The sentences of a message that ask (those ending in "?", else the last one); all of it when it is one."""
    sentences = [s for s in split_sentences(question) if s.strip()]
    if len(sentences) < 2:
        return question
    asking = [s for s in sentences if s.rstrip().endswith("?")]
    return " ".join(asking or sentences[-1:])


@lru_cache(maxsize=1)
def _generic_terms() -> frozenset[str]:
    return frozenset(content_terms(_GENERIC_WORDS))


def question_terms(text: str) -> list[str]:
    generic = _generic_terms()
    return [t for t in dict.fromkeys(content_terms(text)) if t not in generic]


def question_cues(text: str) -> tuple[Cue, ...]:
    folded = fold(text)
    return tuple(cue for cue, (asks, _) in _CUES.items() if asks.search(folded))


def cue_words(text: str) -> list[str]:
    """The words (folded) that made a question ask for a kind of fact: "quanto custa", "o que levar"."""
    folded = fold(text)
    return [w for asks, _ in _CUES.values() for m in asks.finditer(folded) for w in m.group(0).split()]


def cue_terms(text: str) -> frozenset[str]:
    """The stems of `cue_words`."""
    return frozenset(content_terms(" ".join(cue_words(text))))


def units_of(chunks: Sequence[Chunk]) -> list[Unit]:
    """Split an article's chunks back into sentences, list items and table rows (overlaps kept once)."""
    units: list[Unit] = []
    seen: set[str] = set()
    block = 0
    for chunk in chunks:
        heading = content_terms(f"{chunk.title} {chunk.section}")
        for raw_block in re.split(r"\n\s*\n", chunk.text):
            lines = [line for line in raw_block.split("\n") if line.strip()]
            if not lines:
                continue
            block += 1
            rows = len(lines) > 1 and all(" | " in line for line in lines)
            pieces: list[tuple[UnitKind, str]] = []
            for line in lines:
                if rows:
                    pieces.append(("row", line.strip()))
                elif _ITEM.match(line) or (pieces and pieces[-1][0] == "item" and line.startswith(" ")):
                    pieces.append(("item", line.rstrip()))
                else:
                    pieces.extend(("sentence", s) for s in split_sentences(line))
            for kind, text in pieces:
                key = fold(text).strip()
                if key in seen:
                    continue
                seen.add(key)
                units.append(
                    Unit(
                        position=len(units),
                        chunk=chunk,
                        kind=kind,
                        text=text,
                        block=block,
                        folded=fold(text),
                        terms=frozenset(content_terms(text)),
                        heading_terms=frozenset(heading),
                    )
                )
    # A sentence ending in ":" right before a list introduces it ("Leve os documentos abaixo:").
    out: list[Unit] = []
    for i, u in enumerate(units):
        nxt = units[i + 1] if i + 1 < len(units) else None
        is_lead = u.kind == "sentence" and bool(_LEAD.search(u.text)) and nxt is not None and nxt.kind != "sentence"
        out.append(replace(u, lead=is_lead))
    return out


def select(
    question: str,
    chunks: Sequence[Chunk],
    weights: Callable[[str], float],
    *,
    max_words: int = 80,
    context: str = "",
    prior: Mapping[str, float] | None = None,
) -> Selection:
    """Choose the parts of one article that answer `question`, within `max_words`.

    `context` is the earlier question a follow-up depends on ("e quanto custa?"): its words help find the
    topic but count for less than the follow-up's own. `prior` maps chunk ids to the retriever's relevance in
    [0, 1]: the retriever also reads meaning (embeddings), which word overlap alone misses.
    """
    units = units_of(chunks)
    cues = question_cues(question)
    # "levar", "que horas", "quanto custa" say which kind of fact is asked (the cues score that), not what about.
    asking = cue_terms(question)
    own = question_terms(question)
    focus = set(question_terms(focus_of(question)))
    earlier = [t for t in question_terms(context) if t not in own]
    weight = {t: weights(t) for t in own} | {t: 0.4 * weights(t) for t in earlier}
    if not units or sum(weight.values()) <= 0:
        return Selection((), 0.0)
    # "Emiti uma nota com valor errado. Ainda dá pra cancelar?": the sentence that asks says what is wanted;
    # the sentences around it tell the story, and their words count for less.
    weight = {t: w * (1.0 if t in focus or t not in own else _STORY_WEIGHT) for t, w in weight.items()}
    total = sum(weight.values())

    def coverage(terms: frozenset[str], heading: frozenset[str]) -> float:
        body = sum(w for t, w in weight.items() if t in terms)
        head = sum(w for t, w in weight.items() if t in heading and t not in terms)
        return (body + _HEADING_WEIGHT * head) / total

    # Words of the article's title name the article, not the part of it that answers: they count less here.
    title = set(content_terms(units[0].chunk.title))
    local = {
        t: w * (_TITLE_WEIGHT if t in title else 1.0)
        for t, w in weight.items()
        if t not in asking or asking >= set(own)
    }
    local_total = sum(local.values()) or 1.0

    def section_bonus(u: Unit) -> float:
        # A section's own heading ("Prazo", "Documentos necessários") says which kind of fact its parts hold.
        return sum(_CUE_BONUS for c in cues if _CUE_HEADINGS[c].search(u.own_heading)) / max(len(cues), 1)

    def score(u: Unit) -> float:
        body = sum(w for t, w in local.items() if t in u.terms)
        head = sum(w for t, w in local.items() if t in u.heading_terms and t not in u.terms)
        s = (body + _HEADING_WEIGHT * head) / local_total
        s += sum(_CUE_BONUS for c in cues if _CUES[c][1].search(u.folded)) / max(len(cues), 1)
        s += section_bonus(u)
        if "how" in cues and _STEP.match(u.text):
            s += _CUE_BONUS / 2
        if prior:
            s += _PRIOR_WEIGHT * prior.get(u.chunk.id, 0.0)
        return s

    scores = {u.position: score(u) for u in units}
    has_cue = {u.position: any(_CUES[c][1].search(u.folded) for c in cues) for u in units}
    best = max(units, key=lambda u: (scores[u.position], -u.position))
    # A section headed by the kind of fact asked for ("Prazo" for "quanto tempo", "Documentos necessários" for
    # "o que levar") answers it unless another part is far closer to the question's words.
    asked = [u for u in units if any(_CUE_HEADINGS[c].search(u.own_heading) for c in cues)]
    if asked:
        best_asked = max(asked, key=lambda u: (scores[u.position], -u.position))
        if scores[best_asked.position] >= _ASKED_SECTION_SHARE * scores[best.position]:
            best = best_asked
    if best.kind == "sentence" and not best.lead:
        # A section headed by what was asked ("Documentos necessários" for "que documentos…") answers with its
        # list, even when a sentence next to the list shares more words with the question.
        section = fold(best.chunk.section)
        if any(_CUE_HEADINGS[c].search(section) for c in cues):
            listed = [u for u in units if u.chunk.section == best.chunk.section and u.kind == "item"]
            if listed:
                best = max(listed, key=lambda u: (scores[u.position], -u.position))
    chosen: dict[int, Unit] = {}

    def words() -> int:
        return sum(u.words for u in chosen.values())

    def add(u: Unit) -> bool:
        if u.position in chosen:
            return True
        if chosen and words() + u.words > max_words:
            return False
        chosen[u.position] = u
        return True

    add(best)
    # "Preciso de licença? Quanto custa?": each kind of fact asked gets its best part, from a section headed by it
    # or a part that carries it, when none of the chosen parts does.
    for c in cues if len(cues) > 1 else ():
        if any(_carries(u, c) for u in chosen.values()):
            continue
        floor = _CUE_PART_SHARE * scores[best.position]
        carriers = [u for u in units if _carries(u, c) and scores[u.position] >= floor]
        if carriers:
            add(max(carriers, key=lambda u: (scores[u.position], -u.position)))
    if best.lead:
        # The lead-in scored best, so the list it introduces is the answer.
        nxt = units[best.position + 1]
        _add_list(nxt, units, scores, add, whole=True)
    elif best.kind == "sentence":
        paragraph = [u for u in units if u.block == best.block]
        short = sum(u.words for u in paragraph) <= max_words // 2
        for u in paragraph:
            if short or scores[u.position] >= 0.6 * scores[best.position]:
                add(u)
    if best.kind in ("item", "row"):
        # A list answers as a whole when it is introduced ("Leve:"), when its heading is what was asked
        # ("documentos", "como solicitar"), or when the question asks for steps or documents.
        first = min(u.position for u in units if u.block == best.block)
        introduced = first > 0 and units[first - 1].lead
        section_hit = bool(set(own) & set(content_terms(best.chunk.section.split(" > ")[-1])))
        whole = introduced or section_hit or bool({"how", "documents"} & set(cues))
        _add_list(best, units, scores, add, whole)
    # The passage the retriever ranked first reads the question's meaning, not only its words: when nothing
    # was taken from it, its best part joins the answer.
    if prior:
        top_chunk = max(prior, key=lambda cid: prior[cid])
        if not any(u.chunk.id == top_chunk for u in chosen.values()):
            in_top = [u for u in units if u.chunk.id == top_chunk and not u.lead]
            if in_top:
                add(max(in_top, key=lambda u: (scores[u.position], -u.position)))
    # Further parts only when they cover words of the question the chosen ones do not.
    covered = set().union(*(u.terms | u.heading_terms for u in chosen.values()))
    for u in sorted(units, key=lambda u: (-scores[u.position], u.position)):
        if scores[u.position] < 0.6 * scores[best.position]:
            break
        gain = {t for t in weight if t in u.terms and t not in covered}
        cue_gain = has_cue[u.position] and not any(has_cue[p] for p in chosen)
        if (gain or cue_gain) and add(u):
            covered |= u.terms | u.heading_terms
    picked = tuple(sorted(chosen.values(), key=lambda u: u.position))
    all_terms = frozenset().union(*(u.terms for u in picked))
    all_heading = frozenset().union(*(u.heading_terms for u in picked))
    rare = sorted(own or weight, key=lambda t: -weight[t])[:2]
    return Selection(
        picked,
        evidence=min(1.0, coverage(all_terms, all_heading)),
        key_coverage=sum(1 for t in rare if t in all_terms | all_heading) / max(len(rare), 1),
    )


def _carries(u: Unit, cue: Cue) -> bool:
    """The part holds the kind of fact `cue` names, in its words or its section's heading."""
    return bool(_CUE_HEADINGS[cue].search(u.own_heading) or _CUES[cue][1].search(u.folded))


def _add_list(
    best: Unit, units: Sequence[Unit], scores: dict[int, float], add: Callable[[Unit], bool], whole: bool
) -> None:
    """A list answers as a whole when the question asks for one; otherwise only its best items."""
    siblings = [u for u in units if u.block == best.block]
    lead = next((u for u in units if u.lead and u.position == siblings[0].position - 1), None)
    if lead is not None:
        add(lead)
    if best.kind == "row" and siblings[0] is not best:
        add(siblings[0])  # the header row names the columns
    for u in siblings:
        wanted = whole or scores[u.position] >= 0.5 * scores[best.position]
        if wanted and not add(u) and u.kind == "item":
            short = _shorten(u)
            if short is not None:
                add(short)


def _shorten(u: Unit) -> Unit | None:
    """An item cut to its label and first sentence, so a long list still shows every option."""
    m = _LABEL.match(u.text)
    if m is None:
        return None
    first = split_sentences(m.group(3))[:1]
    text = f"{m.group(1)}{m.group(2)} {first[0]}" if first else f"{m.group(1)}{m.group(2)}"
    if text == u.text:
        return None
    return replace(u, text=text)


def render(units: Sequence[Unit], marker: str = "") -> str:
    """Units back into text: a paragraph's sentences on one line, each item and row on its own line."""
    lines: list[str] = []
    previous: Unit | None = None
    for u in units:
        same_paragraph = previous is not None and previous.block == u.block and u.kind == previous.kind == "sentence"
        if same_paragraph and lines:
            lines[-1] += " " + u.text
        else:
            lines.append(u.text.strip() if u.kind != "item" else u.text.rstrip())
        previous = u
    text = "\n".join(lines)
    return f"{text} {marker}".rstrip() if marker else text


def evidence_of(retrieval_confidence: float, selection: Selection) -> float:
    """How well the answer is supported: the retriever's confidence in the article and how much of the
    question the selected parts cover, with a bonus when they hold the question's rarest words.

    The weights were chosen on one half of the foundation suite and checked on the other (decision 0045).
    """
    return 0.5 * retrieval_confidence + 0.5 * selection.evidence + 0.15 * selection.key_coverage
