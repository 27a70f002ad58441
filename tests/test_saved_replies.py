"""Saved replies per team: accent- and case-insensitive search on SQLite and PostgreSQL, team scoping, who may
change them over the console API, and the demo seed's replies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from atende.app import create_app
from atende.services import Services
from core.accounts.service import Accounts
from core.accounts.testing import ManualClock, create_user, rewire, sign_in_directly
from core.db import make_engine, make_session_factory
from core.i18n import t
from core.migrate import upgrade
from domain.seed import SAVED_REPLIES, SAVED_REPLIES_TEAM, seed
from handoff.saved_replies import MAX_TITLE, SavedReplies, SavedReplyError, fold


@pytest.fixture
def replies(database_url: str) -> Iterator[SavedReplies]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield SavedReplies(make_session_factory(engine), clock=ManualClock())
    engine.dispose()


def titles(found: list[object]) -> list[str]:
    return [view.title for view in found]  # type: ignore[attr-defined]


def add(replies: SavedReplies, title: str, text: str = "Texto.", team: str = "atendimento") -> None:
    replies.create(team=team, title=title, text=text, author="user:1")


# --- the service, on both backends ---------------------------------------------------------------------------


def test_folding_drops_accents_and_case_and_squeezes_spaces() -> None:
    assert fold("  Certidão   de ÓBITO  ") == "certidao de obito"


def test_a_search_without_accents_or_capitals_finds_a_title_with_them(replies: SavedReplies) -> None:
    add(replies, "Certidão negativa de débitos")
    add(replies, "Segunda via do IPTU")

    assert titles(replies.search("atendimento", "certidao")) == ["Certidão negativa de débitos"]
    assert titles(replies.search("atendimento", "CERTIDÃO DEBITOS")) == ["Certidão negativa de débitos"]
    assert titles(replies.search("atendimento", "Débito")) == ["Certidão negativa de débitos"]


def test_a_search_finds_words_of_the_text_and_needs_every_word(replies: SavedReplies) -> None:
    add(replies, "Boleto", "Pague pelo Pix lendo o QR Code do boleto.")
    add(replies, "Parcelamento", "A dívida ativa pode ser parcelada em até 12 vezes.")

    assert titles(replies.search("atendimento", "pix")) == ["Boleto"]
    assert titles(replies.search("atendimento", "divida parcelada")) == ["Parcelamento"]
    assert titles(replies.search("atendimento", "divida pix")) == []


def test_a_team_finds_only_its_own_replies(replies: SavedReplies) -> None:
    add(replies, "Horário da Praça de Atendimento", team="atendimento")
    add(replies, "Horário do setor de Tributos", team="tributos")

    assert titles(replies.search("tributos", "horario")) == ["Horário do setor de Tributos"]
    assert titles(replies.search("atendimento", "")) == ["Horário da Praça de Atendimento"]
    assert len(replies.search(None, "horario")) == 2


def test_replies_come_by_title_with_accented_initials_in_their_alphabetical_place(replies: SavedReplies) -> None:
    for title in ("Boleto", "Óbito", "Água e esgoto", "atestado"):
        add(replies, title)

    assert titles(replies.search("atendimento")) == ["Água e esgoto", "atestado", "Boleto", "Óbito"]


def test_like_wildcards_in_a_query_match_only_themselves(replies: SavedReplies) -> None:
    add(replies, "Desconto", "Desconto de 100% para aposentados.")
    add(replies, "Outro", "Sem desconto algum.")

    assert titles(replies.search("atendimento", "100%")) == ["Desconto"]
    assert titles(replies.search("atendimento", "%")) == ["Desconto"]
    assert titles(replies.search("atendimento", "_")) == []


def test_an_edited_reply_is_found_by_its_new_words_only(replies: SavedReplies) -> None:
    replies.create(team="atendimento", title="Coleta", text="A coleta passa às terças.", author="user:1")
    [saved] = replies.search("atendimento", "coleta")

    edited = replies.update(saved.id, team="atendimento", title="Coleta seletiva", text="Recicláveis às sextas.")

    assert titles(replies.search("atendimento", "reciclaveis")) == ["Coleta seletiva"]
    assert replies.search("atendimento", "tercas") == []
    assert edited.created_by == "user:1"


def test_a_deleted_reply_is_gone_and_deleting_it_again_is_not_found(replies: SavedReplies) -> None:
    add(replies, "Temporária")
    [saved] = replies.search("atendimento")

    replies.delete(saved.id)

    assert replies.search("atendimento") == []
    with pytest.raises(SavedReplyError) as refused:
        replies.delete(saved.id)
    assert (refused.value.code, refused.value.status) == ("saved_reply_not_found", 404)


@pytest.mark.parametrize(
    ("title", "text", "code"),
    [
        ("  ", "Texto", "empty_title"),
        ("Título", " \n ", "empty_text"),
        ("x" * (MAX_TITLE + 1), "Texto", "title_too_long"),
    ],
)
def test_a_reply_without_a_title_or_text_or_with_a_long_title_is_refused(
    replies: SavedReplies, title: str, text: str, code: str
) -> None:
    with pytest.raises(SavedReplyError) as refused:
        replies.create(team="atendimento", title=title, text=text, author="user:1")

    assert refused.value.code == code
    assert replies.search(None) == []


# --- the console API -----------------------------------------------------------------------------------------


@pytest.fixture
def app(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def accounts(services: Services, app: TestClient) -> Accounts:
    return rewire(services, clock=ManualClock())


def signed_in(app: TestClient, accounts: Accounts, username: str, role: str) -> dict[str, str]:
    app.cookies.clear()
    return {"X-CSRF-Token": sign_in_directly(app, accounts, create_user(accounts, username, role))}  # type: ignore[arg-type]


REPLY = {"team": "atendimento", "title": "Certidão negativa", "text": "Emita a certidão no Portal do Contribuinte."}


def test_a_supervisor_adds_edits_and_deletes_a_saved_reply_that_agents_then_find(
    app: TestClient, accounts: Accounts
) -> None:
    boss = signed_in(app, accounts, "sueli.supervisora", "supervisor")
    created = app.post("/api/console/saved-replies", json=REPLY, headers=boss)
    reply_id = created.json()["id"]
    edited = app.put(
        f"/api/console/saved-replies/{reply_id}", json={**REPLY, "text": "Emita a certidão pelo portal."}, headers=boss
    )
    signed_in(app, accounts, "ana.agente", "agent")
    found = app.get("/api/console/saved-replies", params={"team": "atendimento", "q": "certidao"}).json()
    other_team = app.get("/api/console/saved-replies", params={"team": "tributos", "q": "certidao"})
    boss = signed_in(app, accounts, "sara.supervisora", "supervisor")
    deleted = app.delete(f"/api/console/saved-replies/{reply_id}", headers=boss)

    assert created.status_code == 201
    assert created.json()["created_by"].startswith("user:")
    assert edited.status_code == 200
    assert [(r["title"], r["text"]) for r in found["replies"]] == [
        ("Certidão negativa", "Emita a certidão pelo portal.")
    ]
    assert (other_team.status_code, other_team.json()["code"]) == (403, "other_team")
    assert deleted.status_code == 204
    assert app.get("/api/console/saved-replies", params={"team": "atendimento"}).json() == {"replies": []}


def test_an_agent_may_search_saved_replies_but_not_add_edit_or_delete_them(
    app: TestClient, accounts: Accounts, services: Services
) -> None:
    assert services.saved_replies is not None
    kept = services.saved_replies.create(author="user:1", **REPLY)
    agent = signed_in(app, accounts, "ana.agente", "agent")

    searched = app.get("/api/console/saved-replies", params={"team": "atendimento"})
    added = app.post("/api/console/saved-replies", json=REPLY, headers=agent)
    edited = app.put(f"/api/console/saved-replies/{kept.id}", json=REPLY, headers=agent)
    deleted = app.delete(f"/api/console/saved-replies/{kept.id}", headers=agent)

    assert searched.status_code == 200
    assert [added.status_code, edited.status_code, deleted.status_code] == [403, 403, 403]
    assert [r.id for r in services.saved_replies.search("atendimento")] == [kept.id]


def test_a_supervisor_of_another_team_cannot_add_rewrite_or_delete_a_teams_saved_reply(
    app: TestClient, accounts: Accounts, services: Services
) -> None:
    from core.accounts.types import SYSTEM

    assert services.saved_replies is not None
    kept = services.saved_replies.create(author="user:1", **REPLY)
    services.saved_replies.create(author="user:1", team="tributos", title="IPTU", text="Pague o IPTU.")
    taxes = accounts.directory.create_team("Tributos", actor="system", origin=SYSTEM)
    app.cookies.clear()
    other = {
        "X-CSRF-Token": sign_in_directly(
            app, accounts, create_user(accounts, "tito.supervisor", "supervisor", team=taxes.id)
        )
    }
    phishing = {**REPLY, "text": "Pague sua taxa em http://golpe.example/pix"}

    added = app.post("/api/console/saved-replies", json=REPLY, headers=other)
    rewritten = app.put(f"/api/console/saved-replies/{kept.id}", json=phishing, headers=other)
    moved = app.put(f"/api/console/saved-replies/{kept.id}", json={**REPLY, "team": "tributos"}, headers=other)
    deleted = app.delete(f"/api/console/saved-replies/{kept.id}", headers=other)
    searched = app.get("/api/console/saved-replies", params={"team": "atendimento"})
    everything = app.get("/api/console/saved-replies").json()

    assert [r.status_code for r in (added, rewritten, moved, deleted, searched)] == [403] * 5
    assert rewritten.json()["detail"] == t("saved_replies.error.other_team")
    assert [r["team"] for r in everything["replies"]] == ["tributos"]
    assert [(r.id, r.text) for r in services.saved_replies.search("atendimento")] == [(kept.id, REPLY["text"])]


def test_a_saved_reply_without_text_is_refused_with_a_portuguese_explanation(
    app: TestClient, accounts: Accounts
) -> None:
    boss = signed_in(app, accounts, "sueli.supervisora", "supervisor")

    empty = app.post("/api/console/saved-replies", json={**REPLY, "text": "   "}, headers=boss)
    long_title = app.post("/api/console/saved-replies", json={**REPLY, "title": "x" * 121}, headers=boss)
    missing = app.put("/api/console/saved-replies/999999", json=REPLY, headers=boss)

    assert (empty.status_code, empty.json()) == (
        422,
        {"code": "empty_text", "detail": "Escreva o texto da resposta pronta."},
    )
    assert long_title.json() == {"code": "title_too_long", "detail": t("saved_replies.error.title_too_long", max=120)}
    assert (missing.status_code, missing.json()["detail"]) == (404, "Resposta pronta não encontrada.")


def test_the_console_page_has_the_saved_replies_panel_in_portuguese(app: TestClient) -> None:
    page = app.get("/console").text

    assert t("console.saved_replies") in page
    assert 'id="saved-replies-query"' in page
    assert t("console.saved_replies.use") in page  # the script's strings: a click fills the reply box


# --- the demo seed -------------------------------------------------------------------------------------------


def test_the_demo_seed_gives_the_default_team_its_saved_replies_once(services: Services) -> None:
    assert services.domain is not None
    assert services.saved_replies is not None

    first = seed(services.domain, services.saved_replies)
    again = seed(services.domain, services.saved_replies)

    assert services.settings.handoff_default_team == SAVED_REPLIES_TEAM
    assert len(services.saved_replies.search(SAVED_REPLIES_TEAM)) == len(SAVED_REPLIES)
    assert (first.created["saved_replies"], again.created.get("saved_replies")) == (len(SAVED_REPLIES), None)
    assert titles(services.saved_replies.search(SAVED_REPLIES_TEAM, "certidao negativa")) == [
        "Certidão negativa de débitos"
    ]
