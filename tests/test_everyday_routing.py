"""Everyday first messages: a person asked for in any register, thanks and goodbyes, an angry citizen, a name with
a question about fines, identity data written freely. Each case stands for a class of wordings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import KNOWLEDGE, make_services
from helpers import respond

from assistant.routing import asks_for_person, frustration, route_message, small_talk
from assistant.service import AssistantReply
from assistant.testing import ScriptedChatModel
from assistant.tools import extract
from assistant.tools.dialogue import redact
from assistant.tools.intent import is_action, read
from atende.services import Services
from core.i18n import t
from core.settings import Settings
from domain.seed import seed
from rag.types import Document

MARIA_CPF = "983.690.060-86"

# Asking for a person


@pytest.mark.parametrize(
    "message",
    [
        "quero falar com um ser humano",
        "me transfere pra alguém",
        "gostaria de ser atendido por um servidor",
        "Prezados, solicito atendimento humano.",
        "QUERO FALAR COM UM ATENDENTE AGORA, ESSE ATENDIMENTO É UMA VERGONHA",
        "ATENDENTE!!!",
        "cadê o atendente?",
        "tem alguém aí?",
        "umano por favor",
        "quero falar com um atendemte",
        "posso conversar com uma pessoa de verdade?",
        "me passa pra um funcinario",
        "prefiro falar com uma pessoa",
        "chama alguém de carne e osso",
        "Gostaria de ser atendida por uma pessoa da Secretaria de Saúde.",
        "passa pro atendente pfv",
        "quero conversar cm um atendente",
        "atendimento humano pfv",
        "me transfere pro setor de obras",
        "posso falar com a equipe da saúde?",
        "poderia ser transferida para um humano?",
        "existe a opção de atendimento com uma pessoa?",
        "dá pra chamar alguém pra conversar comigo?",
        "tem algum atendente disponível?",
        "existe atendente online agora? queria tirar uma dúvida",
        "preciso que alguém da Saúde me responda sobre a consulta",
        "gostaria que um servidor me ligasse, por gentileza",
    ],
)
def test_a_person_asked_for_in_any_register_capitals_or_spelling_routes_to_a_person(message: str) -> None:
    assert route_message(message).route == "human"


@pytest.mark.parametrize(
    "message",
    [
        "preciso que alguém venha tapar o buraco da minha rua",
        "a prefeitura precisa colocar alguém pra limpar a praça",
        "não quero falar com atendente, só quero a segunda via",
        "fui atendido por um servidor muito educado",
        "falei com uma atendente ontem e ela não resolveu",
        "tem atendente no sábado?",
        "Você pode conversar com a gente pelo WhatsApp?",
        "quais são os dados pessoais que vocês guardam?",
        "como faço pra passar o carro pra outra pessoa?",
        "o atendente falou que eu preciso de um laudo",
        "me transferiram pra um atendente que não resolveu nada",
        "a pessoa com deficiência paga a taxa?",
    ],
)
def test_people_mentioned_without_asking_for_one_stay_with_the_assistant(message: str) -> None:
    assert not asks_for_person(message)


# Small talk


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("obrigada, era só isso, tenha um bom dia", "farewell"),
        ("valeu, é só isso mesmo", "farewell"),
        ("Muito obrigado pela atenção! Até mais.", "farewell"),
        ("OBRIGADAAAA, ERA SÓ ISSO", "farewell"),
        ("Deus abençoe, obrigada pela paciência", "farewell"),
        ("tenha uma ótima tarde", "goodbye"),
        ("obg", "thanks"),
        ("beleza, entendi", "ack"),
        ("boa tarde, tudo bem?", "howareyou"),
        ("Bom dia!", "greeting"),
        ("me ajuda por favor", "greeting"),
        ("obrigadão, valeu mesmo", "thanks"),
        ("brigadinho! um excelente fim de semana pra vc", "farewell"),
        ("ótimo, era isso mesmo que eu queria saber", "goodbye"),
        ("iae, tudo joia?", "howareyou"),
        ("👍", "ack"),
        ("td bem por aí?", "howareyou"),
        ("valeu, tamo junto", "thanks"),
        ("obg, tirou minha dúvida", "thanks"),
        ("muito obrigada, a resposta foi útil demais", "thanks"),
    ],
)
def test_thanks_goodbyes_and_greetings_with_politeness_around_them_are_small_talk(message: str, kind: str) -> None:
    assert small_talk(message) == kind
    assert route_message(message).route == "smalltalk"


@pytest.mark.parametrize(
    "message",
    [
        "obrigado, mas como tiro a segunda via?",
        "obrigado! e quando abre a UBS?",
        "valeu, me manda o boleto",
        "obrigado, ainda tenho uma dúvida sobre o IPTU",
        "983.690.060-86 15/03/1985",
        "tchau, não consegui emitir a guia",
    ],
)
def test_thanks_next_to_a_question_a_request_or_data_is_not_small_talk(message: str) -> None:
    assert small_talk(message) is None


# Frustration


@pytest.mark.parametrize(
    "message",
    [
        "Já reclamei três vezes do buraco da minha rua e ninguém resolve! Que descaso!",
        "ISSO É UM ABSURDO, NINGUÉM RESOLVE NADA NESSA PREFEITURA",
        "faz 3 meses que pedi a poda e até hoje nada",
        "pela terceira vez: o lixo não foi recolhido, vou chamar a imprensa",
        "que palhaçada, vou no Procon",
        "estou furiosa com o atendimento do posto",
        "vocês são uma piada, pedi a troca do hidrômetro e ninguém veio",
        "PELA ÚLTIMA VEZ, ARRUMEM A CALÇADA",
        "é a terceira vez que marcam e desmarcam minha consulta, ninguém avisa",
        "inacreditável, de novo sem água no posto",
    ],
)
def test_a_complaint_repeated_unsolved_shouted_or_threatened_reads_as_an_angry_citizen(message: str) -> None:
    assert frustration(message).angry


@pytest.mark.parametrize(
    "message",
    [
        "SEGUNDA VIA DO IPTU",
        "é um absurdo o preço do IPTU, como faço pra pedir revisão?",
        "quero agendar de novo a vacina",
        "tem um buraco na Rua das Flores, 45",
        "quando chega o boleto do IPTU?",
        "tem vacina contra raiva pro meu cachorro?",
        "alguém roubou a tampa do bueiro da minha rua",
    ],
)
def test_one_mark_alone_capitals_or_a_strong_word_is_not_anger(message: str) -> None:
    assert not frustration(message).angry


# Personal requests and identity data, read by rules


@pytest.mark.parametrize(
    "message",
    [
        "Sou Maria Souza, tenho multa?",
        "Me chamo João, tô com alguma multa?",
        "eu tenho IPTU atrasado?",
        "aqui é a Lúcia, meu carnê do IPTU já está quitado?",
    ],
)
def test_a_first_person_question_about_fines_or_debts_is_a_request_for_the_debts(message: str) -> None:
    reading = read(message)

    assert reading.tool == "payment_list_debts"
    assert is_action(reading)


@pytest.mark.parametrize(
    "message",
    [
        "tem multa se eu pagar o IPTU atrasado?",
        "tenho que pagar multa se atrasar o IPTU?",
        "meu boleto vence sexta, se eu pagar segunda quanto fica?",
    ],
)
def test_questions_about_the_rules_on_fines_stay_knowledge_questions(message: str) -> None:
    assert not is_action(read(message))


@pytest.mark.parametrize(
    "message",
    [
        "meu cpf é 983.690.060-86 e nasci em 15/03/1985.",
        "CPF 983.690.060-86. Data de nascimento: 15.03.1985.",
        "nasci em 15 de março de 1985",
        "data de nascimento 15 de Março de 1985",
        "nascido em 15-03-1985",
        "nasci em 15 março 1985",
        "nasci no dia 15 de março do ano de 1985",
        "nascida em 15/mar/85",
        "nasci em 15 03 1985",
        "nasci em quinze de março de 1985",
        "data de nascimento: quinze de marco de 85",
    ],
)
def test_a_birth_date_is_read_in_the_forms_people_write_it(message: str) -> None:
    assert extract.birth_date(message) == "15/03/1985"
    assert "1985" not in redact(message)


@pytest.mark.parametrize(
    "message",
    ["Rua 7 de Setembro, 120", "quero agendar dia 15 de março", "moro na rua 15 de novembro, 200", "15 03"],
)
def test_street_names_and_dates_without_a_year_are_not_birth_dates(message: str) -> None:
    assert extract.birth_date(message) is None


# Through the assistant, over the real MCP server and a seeded database


@pytest.fixture
def assistant_services(tmp_path: Path, knowledge_documents: list[Document]) -> Iterator[Services]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "var",
        knowledge_dir=KNOWLEDGE,
        vector_store="memory",
        embedding_backend="hashing",
        abstain_threshold=0.2,
        _env_file=None,  # type: ignore[call-arg]
    )
    services = make_services(settings, ScriptedChatModel([]), knowledge_documents)
    assert services.domain is not None
    seed(services.domain)
    yield services
    services.close()


@pytest.fixture
def chat(assistant_services: Services) -> Callable[..., list[AssistantReply]]:
    def run(*messages: str) -> list[AssistantReply]:
        conversation = assistant_services.store.create_conversation("web").id
        return [respond(assistant_services, conversation, m) for m in messages]

    return run


def names(reply: AssistantReply) -> list[str]:
    return [c["name"] for c in reply.tool_calls]


def test_a_thank_you_goodbye_is_answered_with_a_goodbye_not_an_abstention(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    [reply] = chat("obrigada, era só isso, tenha um bom dia")

    assert (reply.route, reply.decision) == ("smalltalk", "answered")
    assert reply.answer == t("farewell")


def test_a_person_asked_for_in_capitals_with_a_complaint_is_handed_off(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    [reply] = chat("ESSE ROBÔ NÃO RESOLVE NADA!!! ME PASSA PRA UM ATENDENTE")

    assert reply.decision == "handoff"
    assert names(reply) == ["handoff_to_human"]


def test_an_angry_repeat_complaint_gets_empathy_and_the_offer_of_a_person_and_no_tool(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    [reply] = chat("Já reclamei três vezes do buraco da minha rua e ninguém resolve! Que descaso!")

    assert reply.decision == "answered"
    assert reply.tool_calls == []
    assert reply.answer == t("action.offer_person")


def test_accepting_the_offered_person_hands_off_to_the_team_of_the_complaint(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    _, accepted = chat("Já reclamei três vezes do buraco da minha rua e ninguém resolve! Que descaso!", "sim")

    assert accepted.decision == "handoff"
    assert names(accepted) == ["handoff_to_human"]
    assert accepted.handoff_team == "obras"


def test_declining_the_offered_person_keeps_the_conversation_with_the_assistant(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    _, declined = chat("ISSO É UM ABSURDO, NINGUÉM RESOLVE NADA NESSA PREFEITURA", "não, obrigado")

    assert declined.decision == "answered"
    assert declined.tool_calls == []
    assert declined.answer == t("action.offer_person.declined")


def test_a_citizen_still_angry_after_the_offer_is_handed_off(chat: Callable[..., list[AssistantReply]]) -> None:
    _, again = chat("faz 3 meses que pedi a poda e até hoje nada", "QUE PALHAÇADA, NINGUÉM FAZ NADA")

    assert again.decision == "handoff"
    assert names(again) == ["handoff_to_human"]


def test_an_angry_citizen_with_a_clear_request_still_has_it_done(chat: Callable[..., list[AssistantReply]]) -> None:
    [reply] = chat(f"QUE DEMORA!!! quero ver meus débitos, cpf {MARIA_CPF}, nasci em 15/03/1985")

    assert names(reply) == ["citizen_verify", "payment_list_debts"]
    # Heard first, and told a person is there.
    assert reply.answer.startswith(t("action.empathy"))


def test_an_angry_outburst_that_only_touches_a_tools_subject_is_offered_a_person_not_the_tool(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    [reply] = chat("Que ódio, me cobraram a taxa de lixo duas vezes e ninguém devolve o dinheiro")

    assert reply.tool_calls == []
    assert reply.answer == t("action.offer_person")


def test_a_name_and_a_question_about_fines_is_answered_by_asking_for_the_cpf(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    [reply] = chat("Sou Maria Souza, tenho multa?")

    assert reply.route == "action"
    assert reply.tool_calls == []
    assert "CPF" in reply.answer


@pytest.mark.parametrize(
    "message",
    [
        f"meu cpf é {MARIA_CPF} e nasci em 15/03/1985.",
        f"CPF {MARIA_CPF}, data de nascimento 15 de março de 1985",
        "98369006086 nascida em 15-03-1985",
        f"nasci em 15 03 1985, cpf {MARIA_CPF}",
    ],
)
def test_a_cpf_and_a_birth_date_written_freely_in_one_message_verify_at_once(
    chat: Callable[..., list[AssistantReply]], message: str
) -> None:
    [reply] = chat(message)

    assert reply.tool_calls[0]["name"] == "citizen_verify"
    assert reply.tool_calls[0]["ok"]
    assert "nascimento" not in reply.answer


def test_a_birth_date_written_freely_after_the_cpf_was_asked_for_completes_the_request(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    _, verified = chat("tenho multa?", f"{MARIA_CPF}. Nasci em 15 de março de 1985.")

    assert names(verified) == ["citizen_verify", "payment_list_debts"]


@pytest.mark.parametrize(
    "message", ["tem algum problema no site?", "tenho uma dúvida sobre o IPTU", "obrigado, mas e o boleto?"]
)
def test_a_problem_or_a_doubt_with_something_asked_is_not_small_talk(message: str) -> None:
    assert small_talk(message) is None


@pytest.mark.parametrize(
    "message", ["quero que alguém limpe o terreno baldio", "preciso que a prefeitura tape o buraco"]
)
def test_asking_for_a_service_done_by_someone_is_not_asking_for_a_person(message: str) -> None:
    assert route_message(message).route != "human"


@pytest.mark.parametrize("written", ["529.982.247-25", "52998224725", "529.982.247.25"])
def test_a_valid_cpf_is_read_from_the_message_as_written(written: str) -> None:
    assert extract.cpfs(f"meu cpf é {written}") == [written]
