"""A follow-up is searched with the earlier question; a standalone question is searched as it is."""

from __future__ import annotations

from assistant.rewrite import is_followup, rewrite_query


def test_a_question_that_names_only_the_kind_of_fact_it_wants_continues_the_earlier_topic() -> None:
    earlier = "Quero tirar a identidade nova no posto."
    assert rewrite_query("precisa marcar horário?", [earlier]) == f"{earlier} precisa marcar horário?"


def test_an_opener_or_a_pronoun_makes_a_follow_up() -> None:
    assert is_followup("e quanto custa?")
    assert is_followup("ela abre no sábado?")


def test_a_question_with_its_own_topic_stands_alone() -> None:
    assert not is_followup("Quanto custa o alvará de funcionamento?")
    assert rewrite_query("Como emito a segunda via do IPTU?", ["onde fica a farmácia?"]) == (
        "Como emito a segunda via do IPTU?"
    )
