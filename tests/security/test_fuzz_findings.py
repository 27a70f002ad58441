"""What fuzzing the API found, pinned down as plain tests: each failed before its fix (decision 0041)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from .conftest import LiveApp

pytestmark = pytest.mark.integration

TOO_BIG = 2**70  # more than any database integer column holds
COMMON_ERRORS = {"400", "401", "403", "404", "409", "413", "422", "423", "429"}


@pytest.fixture(scope="module")
def document(live: LiveApp) -> dict[str, Any]:
    body: dict[str, Any] = live.request("GET", "/openapi.json").json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_operation_documents_the_common_error_answers_as_code_and_detail(document: dict[str, Any]) -> None:
    undocumented = {
        f"{method} {path}": sorted(COMMON_ERRORS - set(operation["responses"]))
        for method, path, operation in operations(document)
        if not set(operation["responses"]) >= COMMON_ERRORS
    }
    other_schemas = {
        f"{method} {path} {status}"
        for method, path, operation in operations(document)
        for status in COMMON_ERRORS
        if operation["responses"].get(status, {}).get("content", {}).get("application/json", {}).get("schema")
        != {"$ref": "#/components/schemas/ErrorOut"}
    }

    assert undocumented == {}
    assert other_schemas == set()


def test_an_invalid_body_is_answered_as_the_document_says(live: LiveApp, document: dict[str, Any]) -> None:
    team = live.team("atendimento")
    declared = document["paths"]["/api/teams/{team_id}"]["patch"]["responses"]["422"]["content"]["application/json"]

    answer = live.request("PATCH", f"/api/teams/{team}", headers=live.as_role("admin"), json={"nome": "Tributos"})

    assert answer.status_code == 422
    jsonschema.validate(answer.json(), {**declared["schema"], "components": document["components"]})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/users/{id}"),
        ("PATCH", "/api/teams/{id}"),
        ("DELETE", "/api/tokens/{id}"),
        ("GET", "/api/whatsapp/campaigns/{id}"),
        ("DELETE", "/api/console/saved-replies/{id}"),
    ],
)
def test_an_id_larger_than_the_database_holds_is_invalid_input_not_a_server_error(
    live: LiveApp, method: str, path: str
) -> None:
    answer = live.request(method, path.format(id=TOO_BIG), headers=live.as_role("admin"), json={})

    assert answer.status_code == 422, answer.text


def test_a_team_id_larger_than_the_database_holds_is_invalid_input_in_a_body(live: LiveApp) -> None:
    agent = live.user("agent")

    answer = live.request("PATCH", f"/api/users/{agent.id}", headers=live.as_role("admin"), json={"team_id": TOO_BIG})

    assert answer.status_code == 422, answer.text


def test_a_team_name_taken_already_is_a_conflict_even_when_it_is_not_ascii(live: LiveApp) -> None:
    headers = live.as_role("admin")

    first = live.request("POST", "/api/teams", headers=headers, json={"name": "Ärztekammer"})
    again = live.request("POST", "/api/teams", headers=headers, json={"name": "Ärztekammer"})

    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()["code"]) == (409, "team_exists")


def test_an_audit_page_after_a_sequence_beyond_64_bits_is_invalid_input(live: LiveApp) -> None:
    answer = live.request("GET", "/api/audit/events", headers=live.as_role("admin"), params={"before": str(TOO_BIG)})

    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("GET", "/api/audit/export", "text/csv"),
        ("POST", "/api/lgpd/export", "text/html"),
        ("GET", "/api/whatsapp/campaigns/{campaign_id}/report.csv", "text/csv"),
    ],
)
def test_file_exports_document_the_content_type_they_send(
    document: dict[str, Any], method: str, path: str, content_type: str
) -> None:
    assert content_type in document["paths"][path][method.lower()]["responses"]["200"]["content"]
