"""Cheap, deterministic routing of a message before any retrieval or model call.

Three readings live here because every later step needs them: whether the citizen asks for a person (in any
register: "quero falar com um atendente", "me transfere pra alguém", "ATENDENTE!!!", "umano por favor"),
whether the message is only small talk once politeness is set aside ("obrigada, era só isso, tenha um bom
dia"), and whether it carries the marks of a frustrated citizen (a complaint repeated, nothing done, shouting,
anger words), which the action dialogue answers with empathy and the offer of a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from rag.text import fold

Route = Literal["human", "smalltalk", "knowledge", "action"]
SmallTalk = Literal["greeting", "thanks", "goodbye", "farewell", "howareyou", "who", "ack"]


def normalise(text: str) -> str:
    """Folded (lowercase, no accents), letters repeated for emphasis squeezed ("obrigadaaa", "oiii"), one space."""
    folded = re.sub(r"([a-z])\1{2,}", r"\1", fold(text))
    return re.sub(r"\s+", " ", folded).strip()


def _lexicon(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Asking for a person

# Who the citizen may ask for. Typos are forgiven by `_near_person` below.
_NOUN = (
    r"(atendentes?|atendimento humano|humanos?|ser humano|seres humanos|pessoas?( de verdade| real| fisica)?|"
    r"operador(a|es|as)?|funcionari[oa]s?|servidor(a|es|as)?|agentes? (humanos?|de atendimento)|"
    r"gente de verdade|carne e osso|supervisor(a)?|responsavel)"
)
# "alguém" names a person only after a preposition: "me passa pra alguém", not "coloca alguém pra limpar".
_PERSON = rf"({_NOUN}|alguem)"
# A team or department stands for its people after "falar com" or "me passa pro": "o pessoal da saúde", "o setor
# de obras", "a equipe de tributos".
_STAFF = r"(pessoal|equipe|setor|departamento|secretaria|responsaveis|alguem) (d[aoe]s?|que)\b"
_PERSON_RE = re.compile(rf"\b{_NOUN}\b")
# Words a typo of which still names a person ("atendemte", "umano", "pesoa", "funcinario").
_PERSON_WORDS = ("atendente", "atendentes", "humano", "humana", "pessoa", "operador", "funcionario", "servidor")
_NOT_PERSON = frozenset({"pessoal", "pessoais", "servido", "servida", "servidao", "atendendo", "operado"})
_ARTICLE = r"(um |uma |o |a |os |as |algum |alguma |outro |outra |seu |sua |)"
# What may stand between the verb and whom: pronouns and adverbs, never an object ("passar o imóvel pra...").
_BETWEEN = r"(\s+(me|nos|eu|logo|agora|ja|urgente|rapido|rapidinho|entao|ai|direto|diretamente|so|somente))*"
# "falar com ...", "conversar com ..."; "falei com um atendente ontem" is a report, not a request.
_TALK = re.compile(
    r"\b(falar|fala|falo|converso|conversar|conversa|trocar uma ideia|contato|contatar|contactar)\b"
    rf"{_BETWEEN}\s+(com|cm|co|c/|c)\s+{_ARTICLE}((\w+ )?{_PERSON}\b|{_STAFF})"
)
# "me transfere pra alguém", "passa pra um atendente", "chama um humano", "encaminha para um servidor".
_TRANSFER_VERB = (
    r"\b(transfer(e|a|ir|ira)|pass(a|e|ar)|encaminh(a|e|ar)|cham(a|e|ar)|coloc(a|ar|que)|direcion(a|e|ar)|"
    rf"conect(a|e|ar)|redireciona(r)?)\b{_BETWEEN}\s+"
)
_TRANSFER = re.compile(
    rf"{_TRANSFER_VERB}((pra|para|pro|pros|pras|com|cm|a|ao|em contato com)\s+{_ARTICLE}({_PERSON}\b|{_STAFF})"
    rf"|{_ARTICLE}{_NOUN}\b)"
)
# "quero um atendente", "cadê o atendente?", "preciso de um humano", "prefiro uma pessoa".
_WANT = re.compile(
    r"\b(quero|queria|qro|kero|gostaria de|gostaria|preciso de|precisava de|necessito de|desejo|solicito|peco|"
    rf"prefiro|preferia|cade|kd)\s+{_ARTICLE}{_NOUN}\b"
    r"|\b(tem|ha|cade|kd)\s+alguem\s+(ai|ae|de verdade|real|vivo|humano|ouvindo|lendo)\b"
    r"|\b(tem|existe|ha)\s+(um |uma |algum |alguma )?(atendente|atendimento humano|humano|pessoa|ser humano)"
    r"( de verdade| real| online| disponivel| agora| ai| ae)*( pra (me )?(atender|ajudar))?\s*(\?|\W*$)"
    # "quero que alguém do meio ambiente me atenda", "preciso que um atendente me ligue".
    rf"|\b(quero|queria|gostaria|preciso|precisava)\s+que\s+{_ARTICLE}({_NOUN}|alguem)\b[\w ]{{0,40}}?\s+me\s+"
    r"(atend\w*|ajud\w*|lig\w*|respond\w*|retorn\w*)\b"
)
_BY = re.compile(rf"\bser atendid[oa]\s+(por|pela|pelo|com)\s+{_ARTICLE}(\w+ )?{_PERSON}\b")
# Words that may surround a bare request: "ATENDENTE!!!", "um humano por favor", "atendente agora".
_AROUND = _lexicon(
    "um uma o a quero queria preciso de por favor pfv pf pls agora ja logo urgente rapido ai aqui e eu "
    "cade kd so sim oi ola alo bom dia boa tarde noite me"
)
_BARE_PERSON = re.compile(rf"\b(?!responsavel){_NOUN}\b")
_NEGATED = re.compile(r"\b(nao|nem|sem|nunca)\s+(\w+\s+){0,2}$")


def _edits_at_most_one(a: str, b: str) -> bool:
    """Whether `a` becomes `b` by one insertion, deletion, substitution or swap of neighbours."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[i:] == long_[i + 1 :]


def _near_person(text: str) -> str:
    """The text with near-misses of person words replaced by the word ("atendemte" -> "atendente")."""

    def fix(match: re.Match[str]) -> str:
        word = match[0]
        if len(word) < 5 or word in _NOT_PERSON:
            return word
        for target in _PERSON_WORDS:
            if _edits_at_most_one(word, target):
                return target
        return word

    return re.sub(r"[a-z]+", fix, text)


def asks_for_person(text: str) -> bool:
    """Whether the citizen asks to be served by a person, in whatever words, capitals or spelling."""
    norm = _near_person(normalise(text))
    for pattern in (_TALK, _TRANSFER, _WANT, _BY):
        for match in pattern.finditer(norm):
            if not _NEGATED.search(norm[: match.start()]):
                return True
    # A bare request: the person, and around it only politeness ("ATENDENTE!!!", "atendimento humano pfv").
    rest, persons = _BARE_PERSON.subn(" ", norm)
    words = re.findall(r"[a-z]+", rest)
    if persons > 0 and len(words) <= 6 and all(w in _AROUND for w in words):
        return True
    return any(_contact_with_person(sentence) for sentence in re.split(r"[.!?;]+", norm))


_PERSON_CUE = re.compile(rf"\b({_NOUN}|alguem|gente|atend\w*)\b")


def mentions_person(text: str) -> bool:
    """Whether the message names a person at all ("gente", "alguém", "atendente", "atender"), asked for or not."""
    return bool(_PERSON_CUE.search(_near_person(normalise(text))))


# Words of contact anywhere in a sentence that also names a person: "gostaria de ser transferido para um
# atendente", "há possibilidade de atendimento com um funcionário?", "queria falar com a ouvidoria, com uma pessoa".
# Past forms ("me transferiram", "falei") report what happened; they ask for nothing.
_CONTACT = re.compile(
    r"\b(falar|fala|falo|conversar|converse|conversa|papo|contato|transfer(e|a|ir|ira|ido|ida|encia)|"
    r"encaminh(a|e|ar|ado|ada)|pass(a|e|ar) (pra|para|pro)|cham(a|e|ar)|atendimento (com|por|de|humano)|"
    r"ser atendid[oa]|me atend(a|er|e|am))\b"
)
_MENTION = re.compile(
    r"\b(atendentes?|humanos?|ser humano|pessoas?|operador(a|es|as)?|funcionari[oa]s?|servidor(a|es|as)?|"
    r"agentes? humanos?|gente de verdade|carne e osso|supervisor(a)?|"
    r"alguem (pra|para|que) (me )?(falar|conversar|atender|ajudar|atenda|ajude)|alguem (de verdade|real|humano))\b"
)
# A person who is someone else's business ("passar o imóvel pra outra pessoa") or the subject of a report
# ("o atendente falou que...", "o servidor caiu").
_OTHER = re.compile(r"\b(outr[oa]s?|terceir[oa]s?|qualquer|uma|essa|esta) $")
_DOES = re.compile(
    r"\s+(me|nos|nao|foi|e|eh|esta|ta|estava|era|fala|disse|mandou|pediu|tratou|informou|sabe|tem|pode|"
    r"com deficiencia|idos[oa]|\w+(ou|eu|iu|aram|eram|iram|ava|avam))\b"
)


def _contact_with_person(sentence: str) -> bool:
    contact = [m for m in _CONTACT.finditer(sentence) if not _NEGATED.search(sentence[: m.start()])]
    if not contact:
        return False
    for mention in _MENTION.finditer(sentence):
        before = sentence[: mention.start()]
        if _DOES.match(sentence, mention.end()):
            continue
        if _OTHER.search(before) and not re.search(r"\b(com|pra|para|por) (uma|essa) $", before):
            continue
        return True
    return False


# Small talk

_SMALLTALK: list[tuple[SmallTalk, re.Pattern[str]]] = [
    (
        "howareyou",
        re.compile(
            r"\b((tudo|td) (bem|bom|certo|joia|tranquilo|blz|beleza|em paz)|"
            r"como (vai|voce esta|vc esta|vc ta|voce ta))\b"
        ),
    ),
    (
        "who",
        re.compile(r"\b(quem (e|eh) voce|quem e vc|voce e (um )?(robo|bot|humano)|vc e (um )?(robo|bot))\b"),
    ),
    (
        "thanks",
        re.compile(
            r"\b(obrigad\w*|obg|obgd[oa]?|brigad\w*|valeu|vlw|vlww+|agradec\w*|grat[oa]|thanks|gracias|tmj|"
            r"tamo junto|tamos juntos)\b"
        ),
    ),
    (
        "goodbye",
        re.compile(
            r"\b(tchau|xau|ate (logo|mais|breve|a proxima|amanha|outra hora)|falou|flw|fui|abracos?|abs|bjs|"
            r"(tenha|tenham|e|desejo) (um|uma) (bom|boa|otimo|otima|excelente|feliz|lindo|linda) "
            r"(dia|tarde|noite|semana|fim de semana|final de semana|feriado|descanso)|"
            # "um ótimo dia" is never a greeting, whatever comes before it.
            r"(um|uma) (otimo|otima|excelente|feliz) (dia|tarde|noite|semana|fim de semana|final de semana|feriado)|"
            # "era isso (que eu precisava saber)": the citizen has what they came for.
            r"(era|e|foi) (so |exatamente |justamente )?(isso|isto)( mesmo| ai)?"
            r"( que eu (precisava|queria)( saber)?)?|"
            r"(e|era|foi|seria) (so|somente|apenas) (isso|isto)|so isso|por (hoje|enquanto|agora) (e )?so|"
            r"(mais )?nada mais|nao preciso de mais nada|pode encerrar|encerrar( o atendimento)?|"
            r"fique com deus|fica com deus|deus (te |lhe |vos )?abencoe)\b"
        ),
    ),
    (
        "greeting",
        # A bare call for help is answered like a greeting: what the assistant can do.
        re.compile(
            r"\b(oi+|ola|opa|eai|e ai|eae|e ae|iae|salve|bom dia|boa tarde|boa noite|hello|hi|hey|saudacoes|alo|"
            r"(me )?ajud(a|e)|preciso de (uma )?ajuda|socorro)\b"
        ),
    ),
]
# Words that carry no request in a message of small talk, once its phrases are set aside: politeness,
# filler, praise, who is addressed. Stopwords count too, except those that ask or object.
_LIGHT = _lexicon(
    """
    oi ola opa ai ae bom boa dia tarde noite tudo bem certo voce vc vcs voces muito muita mto muitissimo demais
    ajuda ajudou atencao informacao informacoes resposta respostas explicacao atendimento paciencia carinho
    por favor pfv ok okay blz beleza entendi entendido certinho show top legal perfeito otimo otima excelente
    maravilha maravilhoso isso sim nada mesmo prefeitura pessoal gente amigo amiga senhor senhora moca moco
    querido querida assistente robo bot viu ta bom entao combinado resolvido resolveu tranquilo hoje agora
    bastante super tanto mil coracao pra pro pras pros ce tb fim final semana feriado descanso
    problema problemas duvida duvidas questao util uteis ajudaram ajudando bem demais tirou esclareceu esclarecida
    esclarecido
    """
)
_ACK = re.compile(
    r"\b(ok|okay|blz|beleza|entendi|entendido|certo|certinho|show|top|legal|perfeito|otimo|otima|combinado|sim|"
    r"nao|isso|ta bom|tranquilo|resolvido|resolveu|maravilha)\b"
)
_NOT_LIGHT = frozenset({"qual", "quais", "quando", "como", "quem", "onde", "mas", "porem", "sem", "nem"})


@lru_cache(maxsize=1)
def _light() -> frozenset[str]:
    from rag.text import _stopwords

    return _LIGHT | (_stopwords() - _NOT_LIGHT)


def small_talk(text: str) -> SmallTalk | None:
    """The kind of small talk when the message is nothing else: thanks, a goodbye, both, a greeting, "ok"."""
    norm = normalise(text)
    # A message of bare numbers ("983.690.060-86 15/03/1985", "2026-000123") is data, not small talk.
    if re.search(r"\d{3}", norm):
        return None
    rest = norm
    for _, pattern in _SMALLTALK:
        rest = pattern.sub(" ", rest)
    words = re.findall(r"[a-z]+", rest)
    if any(w not in _light() for w in words):
        return None
    kind = _kind(norm)
    if kind is not None:
        return kind
    if not words:  # an emoji, "1": nothing to answer but an acknowledgement
        return "ack" if text.strip(" !.?") else None
    return "ack" if _ACK.search(rest) else None


def small_talk_kind(text: str) -> SmallTalk:
    """The kind of small talk whose phrases the message holds, whatever else it says; "ack" when it holds none.

    For a message already known to be small talk by other means ("show de bola, obrigadão", "Bão? Boa tarde")."""
    return _kind(normalise(text)) or "ack"


def _kind(norm: str) -> SmallTalk | None:
    kinds = [kind for kind, pattern in _SMALLTALK if pattern.search(norm)]
    if "thanks" in kinds and "goodbye" in kinds:
        return "farewell"
    if "goodbye" in kinds:
        return "goodbye"  # "tenha um bom dia" is a goodbye, not a greeting
    return kinds[0] if kinds else None


# Frustration

# Fury and insults: one of these alone says the citizen is angry ("estou revoltado", "vocês são uns inúteis").
_FURY = re.compile(
    r"\b(revoltad\w*|revoltante|indignad\w*|furios[oa]s?|odio|(que|muita|com|da|dá) raiva|nao aguento mais|"
    r"saco cheio|cansei|cansad[oa] de|farto|pqp|merda|put[oa]|humilhad\w*|incompetent\w*|inute?is|inutil|"
    r"vagabund\w*|safad\w*|ladr(ao|oes)|roubo|palhacada|escandalo|desumano|desrespeito|falta de respeito|"
    r"descaso|sacanagem|enganad[oa]s?|de brincadeira comigo|chega (disso|dessa|desse))\b|\bchega\s*!"
)
# Disappointment: a mark of its own, which needs another one (capitals, a repeated complaint) to count as anger.
_ANGER = re.compile(
    r"\b(absurd\w*|vergonh\w*|ridicul\w*|inadmissivel|inaceitavel|lamentavel|pessim\w*|horrivel|horroros\w*|"
    r"porcaria|droga|irritad\w*|decepcionad\w*|decepcao|(so pode ser|que|e|uma|sao) (piada|brincadeira)|"
    r"enrolac\w*|enrolando|descarad\w*|que (demora|atraso)|um lixo|que lixo|nunca vi|inacreditavel|"
    r"nao (acredito|da pra acreditar)|sem condicoes)\b"
)
# The same complaint again: "já reclamei", "pela terceira vez", "3 vezes", "de novo", "faz meses".
_REPEAT = re.compile(
    r"\b(ja|tb|tambem) (reclamei|liguei|pedi|abri|registrei|solicitei|avisei|mandei|escrevi|vim|estive|fui|"
    r"falei|fiz)\b"
    # A report the citizen already made: "abri protocolo mês passado", "reclamei na semana passada".
    r"|\b(abri|registrei|reclamei|liguei|solicitei|avisei|denunciei|protocolei)\b"
    r"|\b(segunda|terceira|quarta|quinta|sexta|decima|enesima|milesima|ultima|\d+a?) vez\b"
    r"|\b(\d+|duas|tres|quatro|cinco|seis|dez|varias|muitas|mil|inumeras) vezes\b"
    r"|\b(faz|ha|tem) (mais de )?(\d+ |um |uma |dois |duas |tres |varios |varias |muitos |muitas )?"
    r"(semanas|meses|mes|anos|ano)\b"
    r"|\b(de novo|outra vez|novamente|mais uma vez)\b"
)
# Nothing done: "ninguém resolve", "até hoje nada", "continua do mesmo jeito".
_INACTION = re.compile(
    r"\bninguem (resolve|resolveu|faz|fez|vem|veio|aparece|apareceu|responde|respondeu|atende|atendeu|liga|"
    r"ligou|olha|olhou|da|deu|retorna|retornou|avisa|avisou|informa|informou|explica|explicou|sabe|assume)\b"
    r"|\b(ate (hoje|agora)|ate o momento)\b.{0,20}\b(nada|ninguem|nenhum\w*)\b|\b(e|mas) nada\b"
    r"|\bnada (foi|e|esta sendo) feito\b|\bnao (fizeram|fazem|resolveram|resolvem|resolve|vieram|vem|"
    r"responderam|respondem|retornaram|deram retorno|deram resposta|tomaram providencia)\b"
    r"|\bsem (resposta|retorno|solucao|providencia)\b|\bcontinua (do mesmo jeito|igual|tudo igual|la)\b"
    r"|\b(nunca|jamais) (resolve|resolvem|resolveram|fazem|fizeram|vem|vieram|responde|respondem)\b"
)
# Threats to take it elsewhere; the ombudsman is a service of its own (protocol_open), not a threat.
_THREAT = re.compile(
    r"\b(procon|ministerio publico|justica|advogad\w*|processar|imprensa|jornal|reportagem|televisao|"
    r"redes sociais|vereador\w*|camara (de vereadores|municipal))\b"
)


@dataclass(frozen=True)
class Frustration:
    """The marks of frustration a message carries."""

    fury: bool = False  # anger said outright, or an insult
    anger: bool = False
    repeated: bool = False  # the same complaint again
    unsolved: bool = False  # nothing was done
    threat: bool = False  # the press, the courts, Procon
    shouting: bool = False  # capitals, "!!!"

    @property
    def marks(self) -> int:
        return 2 * self.fury + sum((self.anger, self.repeated, self.unsolved, self.threat, self.shouting))

    @property
    def angry(self) -> bool:
        """Fury, or two other marks: an angry citizen (one alone is too common in ordinary messages)."""
        return self.marks >= 2

    @property
    def again(self) -> bool:
        """A complaint that was already made and not solved."""
        return self.repeated or self.unsolved


def _shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    return (len(letters) >= 12 and upper / len(letters) >= 0.7) or bool(re.search(r"[!?]{3,}", text))


def frustration(text: str) -> Frustration:
    norm = normalise(text)
    return Frustration(
        fury=bool(_FURY.search(norm)),
        anger=bool(_ANGER.search(norm)),
        repeated=bool(_REPEAT.search(norm)),
        unsolved=bool(_INACTION.search(norm)),
        threat=bool(_THREAT.search(norm)),
        shouting=_shouting(text),
    )


# The route


@dataclass(frozen=True)
class Routing:
    route: Route
    smalltalk: SmallTalk | None = None
    # The learned intent that changed this routing or is handed to the action dialogue ("angry", "tool:<name>");
    # None when the rules alone decided (assistant.intents.policy).
    intent: str | None = None


def route_message(text: str) -> Routing:
    if asks_for_person(text):
        return Routing("human")
    kind = small_talk(text)
    if kind is not None:
        return Routing("smalltalk", kind)
    return Routing("knowledge")
