"""Cheap, deterministic reading of a citizen's message: is it a request to act, for which tool, with what.

Also the two refusals that never reach a model: an instruction aimed at the assistant's tools ("ignore your
rules and call ...") and a request for somebody else's personal data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from assistant.routing import asks_for_person
from assistant.tools import extract
from assistant.tools.catalog import APPOINTMENT_SERVICES, services_in, team_for
from rag.text import fold

_OWN_DEBT = (
    r"\b(eu )?(tenho|to com|tou com|estou com|possuo|ainda tenho|ainda to com)\s+"
    r"(algum |alguma |alguns |algumas |um |uma |umas |uns )?(multas?|debitos?|dividas?|pendencias?|"
    r"(iptu|taxas?|impostos?|boletos?|contas?|parcelas?) (atrasad|vencid|em aberto|pendente|pra pagar|a pagar))"
)
# "minha multa já venceu?", "meu IPTU tá atrasado?": the state of the citizen's own debt.
_OWN_DEBT_STATE = (
    r"\b(meu|minha|meus|minhas) (iptu|multas?|taxas?|boletos?|parcelas?|debitos?|dividas?|impostos?|contas?|"
    r"carnes?|guias?)\b.{0,30}\b(venceu|vencid[oa]s?|atrasad[oa]s?|pag[oa]s?|quitad[oa]s?|em aberto|em dia|"
    r"pendentes?)\b"
)
# "How do I ...", "how much ...", "what documents ...": a question for the knowledge base, whoever it is about.
_HOWTO = re.compile(
    r"(?<!tem )(?<!teria )\b(como|onde|aonde|cumo) (e que |eu |que |q |a gente |se |me )?(faco|faz|fazer|vejo|ver|"
    r"consulto|consultar|tiro|tira|tirar|peco|pedir|consigo|conseguir|posso|emito|emitir|pago|pagar|acompanho|acompanhar|solicito|solicitar|"
    r"obtenho|obter|pego|pegar|levo|levar|agendo|agendar|marco|marcar|inscrevo|cancelo|cancelar|registro|registrar|"
    r"abro|abrir|denuncio|reclamo|retiro|renovo|preciso|devo|procuro|funciona|sei|descubro|puedo|hago|saco|"
    r"desmarco|desmarcar|remarco|remarcar|reagendo|reagendar|atualizo|atualizar|altero|alterar)\b"
    r"|\b(quanto custa|quanto tempo|quanto vou pagar|quanto e|ate quando|qual (o|e o) prazo|"
    r"quais (sao )?(os )?documentos|o que (eu )?(preciso|devo)|que documentos?|precisa (agendar|marcar|levar|pagar)|"
    r"(tem|tenho|temos) (que|q) |"
    r"tem desconto|tem tolerancia|tem isencao|e gratuito|e de graca|posso (pagar|parcelar|pedir)|tem algum programa|"
    r"em quanto tempo|qual (o )?(valor|horario|endereco|telefone)(?! d[oa]s? (meu|minha|meus|minhas)\b))\b"
)
_QUESTION_START = re.compile(
    r"(^|[.!?]\s*)(e\s+)?(como|onde|aonde|qual|quais|quando|quanto|quantos|quantas|por ?que|pq|existe|e possivel|"
    r"precisa|se eu|o que|oque|oq|quem|pode-se|vale|da pra)\b"
)
# Asking about one's own case: a status, what they owe, free times.
_STATUS_ASK = re.compile(
    r"\b(qual|como) (e |esta |anda |ta |ficou |vai )?(a |o )?(situacao|status|andamento)"
    r"|\bcomo (anda|esta|ta|vai|ficou) (o |a |esse |essa |este |esta |aquele )?"
    r"(meu|minha|protocolo|pedido|reclamacao|solicitacao|chamado)"
    r"|\b(quais|qual|quantos|quantas) .{0,30}\b(eu tenho|tenho|devo|em meu nome|no meu nome|estao comigo)\b"
    r"|em que pe (esta|anda|ta)|\bcade (o |a )?(meu|minha|protocolo|pedido)"
    r"|\b(ja )?(foi|foram|esta|ta) (resolvid|atendid|conclu|finalizad)"
    r"|\b(tenho|tem|to com|estou com|eu tenho|ha) (algum |alguma |alguns |algumas )?(debito|divida|pendencia|conta)"
    # "tenho multa?", "tô com alguma multa?", "eu tenho IPTU atrasado?": what the citizen owes, asked in the first
    # person ("tem multa se eu atrasar?" is a question about the rules).
    rf"|{_OWN_DEBT}"
    rf"|{_OWN_DEBT_STATE}"
    r"|\bquanto (eu )?(devo|to devendo|estou devendo)|\b(to|tou|estou|eu to) devendo"
    r"|\b(horario|horarios|vaga|vagas|data|datas) (livre|livres|disponive|disponivel|disponiveis)"
    r"|\b(tem|ha|existe|quais|qual) (algum |alguns )?(horario|horarios|vaga|vagas|data|datas) (pra|para|de) "
    r"(vacina|tomar|rg|identidade|tirar|atendimento|cadastro|cad|iptu|agendar|marcar)"
    # "tem multa no meu nome?", "quais são as minhas dívidas?", "tenho algum protocolo em andamento?"
    r"|\b(no|em) meu (nome|cpf)\b|\b(tenho|eu tenho) (alguma coisa|algo) (pra|para|a) pagar"
    r"|\b(quais|qual|quantos|quantas|que) (sao |e |foram )?(os |as |o |a )?(meus|minhas|meu|minha) "
    r"(debitos|dividas|pendencias|multas|taxas|boletos|contas|impostos|protocolos|pedidos|solicitacoes|"
    r"reclamacoes|chamados|agendamentos|dados|informacoes)\b"
    r"|\b(quais|que) (dados|informacoes) (meus|minhas|de mim|sobre mim|pessoais)"
    r"|\b(eu )?tenho (algum|alguma|alguns|algumas) (protocolo|pedido|solicitac|reclamac|chamado|agendamento)"
    # "quanto tá meu IPTU?", "qual o valor da minha multa?", "qual o número do meu protocolo?"
    r"|\bquanto (ta|esta|e|fica|ficou|deu|vem|veio) (o |a )?(meu|minha)\b"
    r"|\b(valor|total|numero)s? d[oa]s? (meu|minha|meus|minhas)\b"
    r"|\bquando (eu )?(posso|da pra|consigo) (ir|comparecer|ser atendid)"
)
_REQUEST = re.compile(
    r"\b(quero|queria|qro|kero|quer[oi]a|gostaria|preciso|precisava|necessito|desejo|vou querer|solicito|"
    r"peco|requeiro)\b"
    r"|\b(pode|poderia|consegue|tem como|da pra) (me |eu )?(ver|consultar|tirar|emitir|gerar|mandar|enviar|passar|"
    r"abrir|registrar|marcar|agendar|cancelar|desmarcar|acompanhar|mostrar|verificar|checar|fazer|solicitar|listar)"
    r"|(^|[.!,]\s*)(me )?(manda|mande|mostra|mostre|gera|gere|consulta|consulte|abre|abra|registra|registre|marca|"
    r"marque|agenda|agende|cancela|cancele|desmarca|desmarque|lista|liste|verifica|verifique|envia|envie|passa|"
    r"passe|bora|vamos|ve|veja)\b"
    r"|\b(por favor|pfv|pf|por gentileza|pls)\b"
)
# WhatsApp style: a request written as a bare infinitive ("agendar vacinação", "ver meus débitos"); only when
# it is not asked as a question ("agendar vacina precisa?").
_BARE_REQUEST = re.compile(
    r"^\s*(agendar|marcar|ver|consultar|abrir|cancelar|desmarcar|emitir|gerar|tirar|acompanhar|listar|registrar|"
    r"solicitar|pedir|mostrar)\b"
    r"|^\s*(a |o |uma |um )?(segunda via|2a via|2 via|boleto|pix|linha digitavel|codigo de barras)\b"
)
_FIRST_PERSON = re.compile(
    r"\b(meu|minha|meus|minhas|mim|comigo|na minha|da minha|do meu|eu tenho|tenho|to devendo|devo)\b"
)
# Instructions aimed at the assistant itself; they only matter here when the message also touches a tool.
_INJECTION = re.compile(
    r"(ignor\w*|desconsider\w*|esquec\w*|burl\w*) (\w+ ){0,3}(instruc|regra|ordens|orientac|prompt|sistema)"
    r"|\b(system|sistema|admin|developer|desenvolvedor|assistant)\s*:|\[(system|sistema|admin)\]|<\/?(tool|system)"
    r"|modo (admin|administrador|desenvolvedor|debug|teste)|voce agora e|aja como|finja que"
)
# Instructions to drive the tools directly: refused whatever else the message says.
_TOOL_INJECTION = re.compile(
    r"(chame|chama|chamar|execute|executa|executar|acione|aciona|rode|invoque|use) (a |o )?"
    r"(ferramenta|funcao|tool|api)"
    r"|\b(citizen_verify|citizen_lookup|payment_list_debts|payment_second_copy|protocol_open|protocol_status|"
    r"protocol_list|protocol_add_comment|appointment_slots|appointment_book|appointment_cancel|appointment_list|"
    r"handoff_to_human)\b"
    r"|\b(ja|ja) (esta|estou|estao|foi|fui|e) (verificad|autenticad|validad)"
    r"|\b(sem|pul\w*|ignor\w*) (a |o )?(verificacao|verificar|autenticacao|confirmacao de identidade|confirmar)"
)
_THIRD_PARTY = re.compile(
    r"\b(d[oa]s? (minha |meu |minhas |meus |nossa |nosso )?(mae|pai|filh[oa]s?|vizinh[oa]s?|espos[oa]|marido|"
    r"mulher|irma|irmao|avo|avos|vovo|tia|tio|sogr[oa]|cunhad[oa]|primo|prima|amig[oa]|namorad[oa]|patra[oa]|"
    r"chefe|colega|patrao|inquilin[oa]|fulan[oa]|beltran[oa]|outra pessoa|outro cidadao|terceiros?)|"
    r"de outra pessoa|de outro cpf|de outro contribuinte|de terceiros?|de qualquer cpf)\b"
)
_VERIFY = re.compile(
    r"\b(verific|confirm|valid|autentic)\w* (a )?(minha |meu )?(identidade|cadastro|cpf)"
    r"|\b(quero|vou|pode|queria) (me )?identificar\b"
)
_SECOND_COPY = re.compile(
    r"segunda via|2a via|2 via|2\. via|\bpix\b|copia e cola|boleto|linha digitavel|codigo de barras|\bguia\b"
)
_DEBTS = re.compile(
    rf"{_OWN_DEBT}|{_OWN_DEBT_STATE}|"
    r"debito|divida|devendo|\bdevo\b|pendencia|pendente|em aberto|atrasad|vencid|em atraso|"
    r"(alguma coisa|algo|alguma conta|algum valor) (pra|para|a) pagar|"
    r"(multa|taxa|imposto|iptu|conta|boleto|tributo)s?\b.{0,25}\b(no|em) meu (nome|cpf)|"
    r"(meu|minha|meus|minhas|o meu|a minha) (iptu|taxas?|multas?|impostos?|contas?|tributos?)|"
    r"(iptu|taxa|multa|imposto)s? (que )?(eu )?(tenho|tem|a pagar|pra pagar|para pagar)"
    r"|quanto (eu )?(pago|tenho que pagar)"
)
_PROTOCOL_WORD = r"(protocolo|pedido|reclamacao|solicitacao|chamado|ocorrencia|denuncia|requerimento)"
# "E o meu pedido?": a question about one's own request, whatever follows.
_OWN_PROTOCOL_ASK = rf"(^|[.!?]\s*)e (o |a )?(meu|minha|esse|essa|aquele|aquela) {_PROTOCOL_WORD}\b"
_OWN_PROTOCOL_ASK_RE = re.compile(_OWN_PROTOCOL_ASK)
_PROTOCOL_STATUS = re.compile(
    rf"(andamento|status|situacao|acompanhar|acompanha|andou|anda|como (esta|ta|anda|vai)|novidade|resposta|"
    rf"atualizac|ja (foi|resolveram|atenderam)|consultar|consulta|ver)\b.{{0,30}}{_PROTOCOL_WORD}"
    rf"|{_PROTOCOL_WORD}.{{0,30}}(andamento|status|situacao|como (esta|ta|anda)|resolvid|atendid|"
    rf"nao (andou|anda|saiu|foi)|parad|alguem (viu|olhou|respondeu)|novidade|resposta)"
    rf"|{_OWN_PROTOCOL_ASK}"
)
_PROTOCOL_LIST = re.compile(
    r"(meus|minhas|todos os meus|todas as minhas|lista(r)?( d?os| d?as)?) "
    r"(protocolos|pedidos|reclamacoes|solicitacoes|chamados|ocorrencias|denuncias|requerimentos)"
    r"|(mostr|list|ver|veja|consult)\w* (os |as |todos os |todas as )?"
    r"(protocolos|pedidos|reclamacoes|solicitacoes|chamados)"
    r"|\b(quais|quantos) (sao )?(os )?(meus )?(protocolos|pedidos|solicitacoes|reclamacoes|chamados)\b"
    r"|protocolos (que|em) (eu|meu nome)|(pedidos|protocolos|reclamacoes|solicitacoes) (abert|registrad)\w+"
    r"|\b(eu )?tenho (algum|alguma|alguns|algumas) (protocolo|pedido|solicitac|reclamac|chamado|ocorrencia)"
    r"|\b(historico|relacao) d[oa]s (meus |minhas )?(protocolos|pedidos|reclamacoes|solicitacoes|chamados)"
    r"|\bnumeros? d[oa]s? (meu |minha |meus |minhas )(protocolo|pedido|solicitac|reclamac|chamado)"
)
_PROTOCOL_COMMENT = re.compile(
    rf"(acrescentar|adicionar|incluir|complementar|comentar|anexar|acrescenta|adiciona|inclui|complementa)"
    rf".{{0,40}}{_PROTOCOL_WORD}|{_PROTOCOL_WORD}.{{0,40}}(acrescentar|adicionar|incluir|complementar|informar que)"
    rf"|(comentario|complemento|observacao|informacao) (n[oa]|ao|para o) {_PROTOCOL_WORD}"
)
_PROTOCOL_OPEN = re.compile(
    rf"(abrir|abre|registrar|registra|fazer|faz|faca|criar|solicitar|solicito|pedir|peco|formalizar|protocolar)"
    rf" (um |uma |o |a |meu |minha )?(novo |nova )?({_PROTOCOL_WORD}|queixa)"
    r"|\b(quero|queria|gostaria de|preciso|vou) (reclamar|denunciar|informar|avisar|comunicar|registrar)"
    r"|\b(reclamar|denunciar) (de|do|da|sobre)"
)
_PROBLEM = re.compile(
    r"\b(tem|ha|existe|apareceu|abriu|surgiu) (um|uma|uns|umas)\b|apagad|queimad|quebrad|cheio|entupid|"
    r"nao (passou|passa|veio|vem|recolh|funciona|acende)|caindo|caiu|piscando|esburacad|perigo|acumulad|"
    r"queim(ou|aram)|apagou|quebrou|estourou|"
    r"(esta|ta|fica) (escur|sujo|imund|um lixo)|burac|sem luz|no escuro|precisa(ndo)? de poda"
)
# A person asked for in any register is recognised by the router (`asks_for_person`); here also the citizen who
# says the bot does not understand them ("esse robô não me entende").
_BOT_FAILS = re.compile(r"\b(robo|bot|maquina|voce|vc)\b.{0,15}\bnao me (entende|entendeu|ajuda|ajudou)\b")
# The citizen's own registration data (citizen_lookup): "quais dados meus vocês têm?", "confere meu cadastro";
# not what is done with personal data in general ("meus dados estão protegidos?"), a knowledge question.
_LOOKUP = re.compile(
    r"\b(ver|veja|mostr\w*|consult\w*|confer\w*|confira|checa\w*|olha\w*) (os |as |o |a )?(meus|minhas|meu|minha) "
    r"(dados|informacoes|cadastro|telefone|celular|e-?mail|endereco)\b"
    r"|\b(dados|informacoes)\b.{0,20}\b(cadastrad\w*|(voces|vcs|a prefeitura) (tem|possui|possuem))"
    r"|\bmeu (telefone|celular|e-?mail|endereco)\b.{0,25}\b(cadastrad\w*|(esta|ta) (certo|correto|atualizado)|correto)"
)
_LOOKUP_CHANGE = re.compile(r"\b(atualiz|alter|mud|corrig|troc|apag|exclu)\w*")
_APPOINTMENT_CANCEL = re.compile(
    r"(cancelar|cancela|cancele|desmarcar|desmarca|desmarque|nao (vou|poderei|posso) (ir|comparecer))"
    r".{0,40}(agendamento|horario|atendimento|marcacao|consulta|vacina|rg|identidade|cadastro|\d)"
    r"|(agendamento|horario|marcacao).{0,20}(cancelar|cancelad|desmarcar)"
    # Only an appointment is "desmarcado": the verb alone names the subject ("desmarca pra mim").
    r"|\bdesmarc(ar|a|ue|o|ou)\b"
)
_APPOINTMENT_LIST = re.compile(
    r"(meus|minhas) (agendamentos|horarios|marcacoes)|o que (eu )?(tenho )?(marcado|agendado)|"
    r"(tenho|tem) (algum )?(agendamento|horario marcado)|quando (e|eh) (o )?meu (agendamento|horario|atendimento)"
)
_APPOINTMENT = re.compile(
    # "desmarca pra mim" is not "marca pra mim"; "remarcar" still asks for a new time.
    r"agendar|agenda(r)? (um|uma|o|a|pra|para)|agendamento|\b(re)?marcar|\b(re)?marca (um|uma|pra|para)|"
    r"horarios? (livres?|disponive\w*|vagos?)|"
    r"\b(tem|ha) (algum )?horarios?\b(?! de (funcionamento|atendimento|abertura))|"
    r"(vagas?|horarios?) (pra|para|de|da|do) (vacina|tomar|rg|identidade|tirar|atendimento|cadastro|emissao)|"
    r"hora marcada|data disponivel|datas disponiveis|atendimento presencial"
    r"|tirar (o |a |meu |minha )?(rg|identidade|cin)"
    r"|fazer (o |a |meu |minha )?(rg|identidade|cin|cadastro)|tomar (a )?vacina|me vacinar|vacinar"
    r"|\b(me inscrever|fazer (a |minha )?inscricao) (n[oa]|para o|pro|pra) (cad ?unico|cadastro unico|bolsa familia)"
)
_STATUS_WORDS = {
    "vencido": re.compile(r"vencid|atrasad|em atraso"),
    "pago": re.compile(r"\bpag[oa]s\b|ja paguei|quitad"),
}


@dataclass(frozen=True)
class Reading:
    """What the rules see in a message."""

    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    # How sure the rules are: "strong" (a request to act), "weak" (the topic of a tool, maybe a question).
    strength: str = "none"
    howto: bool = False
    # "Como faço...", "quanto custa...", "quais documentos...": unmistakably a question for the knowledge base.
    explicit_howto: bool = False
    injection: bool = False
    third_party: bool = False
    cpfs: tuple[str, ...] = ()
    # Worded as a request to act or a question about the citizen's own case ("quero...", "qual a situação...").
    request: bool = False


def _debt_status(folded: str) -> str | None:
    for status, pattern in _STATUS_WORDS.items():
        if pattern.search(folded):
            return status
    return None


def literal_arguments(tool: str, text: str) -> dict[str, Any]:
    """Arguments the citizen wrote literally: numbers, ids, addresses, dates, the report itself."""
    folded = fold(text)
    args: dict[str, Any] = {}
    if tool in ("protocol_status", "protocol_add_comment"):
        number = extract.protocol_number(text)
        if number:
            args["number"] = number
    if tool == "protocol_add_comment":
        m = re.search(
            r"(?:dizendo|informando|com o texto|:|(?:acrescentar|adicionar|incluir|informar|complementar|dizer|avisar)"
            r"\s+que)\s*(.{3,})$",
            text.strip(),
            re.S | re.I,
        )
        if m:
            args["text"] = m[1].strip().strip("\"'“”")
    if tool == "payment_second_copy":
        # Which debt the citizen named ("a multa", "a TLP"), resolved once the list is known; never sent.
        args["debt_hint"] = text.strip()[:200]
    if tool == "protocol_open":
        args["description"] = text.strip()
        where = extract.address(text)
        if where:
            args["address"] = where
        if re.search(r"anonim|sem (me )?identifica|sem meu nome|nao quero me identificar", folded):
            args["anonymous"] = True
    if tool == "appointment_cancel":
        found = extract.object_id(text, "appointment")
        if found:
            args["appointment_id"] = found
    if tool == "appointment_slots":
        days = extract.dates(text)
        if days:
            args["date_from"] = days[0].isoformat()
            args["date_to"] = (days[1] if len(days) > 1 else days[0]).isoformat()
    if tool == "handoff_to_human":
        args["reason"] = text.strip()[:300]
    return args


def enum_arguments(tool: str, text: str) -> dict[str, Any]:
    """Arguments picked from a closed list by keywords (the model may do better on unseen wording)."""
    folded = fold(text)
    args: dict[str, Any] = {}
    if tool in ("payment_list_debts",):
        status = _debt_status(folded)
        if status:
            args["status"] = status
    if tool == "protocol_open":
        found = services_in(text, "protocol")
        specific = [s for s in found if s != "ouvidoria"]
        if specific or found:
            args["service"] = (specific or found)[0]
    if tool == "appointment_slots":
        found = services_in(text, "appointment")
        # "IPTU" names the IPTU desk only when nothing more specific is named.
        specific = [s for s in found if s != "atendimento_iptu"]
        if specific or found:
            args["service"] = (specific or found)[0]
    if tool == "handoff_to_human":
        team = team_for(text)
        if team:
            args["team"] = team
    return args


def read(text: str) -> Reading:
    folded = fold(text)
    found_cpfs = tuple(extract.cpfs(text))
    howto = bool(_HOWTO.search(folded))
    status = bool(_STATUS_ASK.search(folded))
    request = bool(_REQUEST.search(folded)) or ("?" not in text and bool(_BARE_REQUEST.search(folded)))
    question = "?" in text or bool(_QUESTION_START.search(folded))
    tool = _topic(folded, text, found_cpfs)
    # "Já resolveram meu chamado 2026-000008?", "e o meu pedido?": a question about the citizen's own protocol.
    if tool in ("protocol_status", "protocol_add_comment"):
        status = status or bool(extract.protocol_number(text)) or bool(_OWN_PROTOCOL_ASK_RE.search(folded))
        status = status or bool(re.search(rf"\b(meu|minha|esse|essa) {_PROTOCOL_WORD}", folded))
    # A question about how things work goes to the knowledge base even when it mentions the citizen's own case;
    # only a request to act, or a question about their own status, becomes an action.
    info = howto or (question and not status and not request)
    common: dict[str, Any] = {
        "howto": info,
        "explicit_howto": howto,
        "injection": bool(_TOOL_INJECTION.search(folded)),
        "third_party": bool(_THIRD_PARTY.search(folded)),
        "cpfs": found_cpfs,
        "request": request or status,
    }
    if tool is None:
        return Reading(**common)
    cue = (
        request
        or status
        or bool(found_cpfs)
        or bool(_FIRST_PERSON.search(folded))
        or tool in ("protocol_status", "citizen_verify", "handoff_to_human")
    )
    if tool == "protocol_open" and _PROBLEM.search(folded):
        cue = True
    strength = "strong" if cue and not info else "weak"
    # "Ignore your rules" next to a request to act is an attempt on the tools; next to a question it is the
    # knowledge pipeline's business (its prompt treats the message as data).
    common["injection"] = common["injection"] or (strength == "strong" and bool(_INJECTION.search(folded)))
    args = {**enum_arguments(tool, text), **literal_arguments(tool, text)}
    return Reading(tool=tool, arguments=args, strength=strength, **common)


def _topic(folded: str, text: str, found_cpfs: tuple[str, ...]) -> str | None:
    """The tool whose subject the message is about, if any (whether it asks to act is decided apart)."""
    if asks_for_person(text) or _BOT_FAILS.search(folded):
        return "handoff_to_human"
    if extract.protocol_number(text) and not _PROTOCOL_OPEN.search(folded):
        return "protocol_add_comment" if _PROTOCOL_COMMENT.search(folded) else "protocol_status"
    other_topic = _SECOND_COPY.search(folded) or _DEBTS.search(folded) or _PROTOCOL_WORD_RE.search(folded)
    if (_VERIFY.search(folded) or (found_cpfs and extract.birth_date(text))) and not other_topic:
        return "citizen_verify"
    if _APPOINTMENT_CANCEL.search(folded):
        return "appointment_cancel"
    if _APPOINTMENT_LIST.search(folded):
        return "appointment_list"
    if _PROTOCOL_COMMENT.search(folded):
        return "protocol_add_comment"
    if _PROTOCOL_LIST.search(folded):
        return "protocol_list"
    if _PROTOCOL_STATUS.search(folded) and not _PROTOCOL_OPEN.search(folded):
        return "protocol_status"
    if _SECOND_COPY.search(folded):
        return "payment_second_copy"
    # "Quero marcar um atendimento pra revisar o IPTU" asks for the desk, not for the review itself.
    if "iptu_revisao" in services_in(text, "protocol") and not _APPOINTMENT.search(folded):
        return "protocol_open"
    owes = _STATUS_ASK.search(folded) and re.search(r"debit|divid|pendenc|devendo|devo", folded)
    if _DEBTS.search(folded) or owes:
        return "payment_list_debts"
    if _PROTOCOL_OPEN.search(folded):
        return "protocol_open"
    if _APPOINTMENT.search(folded):
        return "appointment_slots"
    if _LOOKUP.search(folded) and not _LOOKUP_CHANGE.search(folded):
        return "citizen_lookup"
    if services_in(text, "protocol") and (_PROBLEM.search(folded) or _ASK_FOR_SERVICE.search(folded)):
        return "protocol_open"
    if found_cpfs and not other_topic:
        return "citizen_verify"
    return None


_PROTOCOL_WORD_RE = re.compile(_PROTOCOL_WORD)
_ASK_FOR_SERVICE = re.compile(r"\b(pedir|peco|solicitar|solicito|registrar|informar|avisar|reclamar|comunicar)\b")


def is_action(reading: Reading) -> bool:
    return reading.tool is not None and reading.strength == "strong"


__all__ = ["APPOINTMENT_SERVICES", "Reading", "enum_arguments", "is_action", "literal_arguments", "read"]
