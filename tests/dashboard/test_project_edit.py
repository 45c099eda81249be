"""Editing a project from the dashboard: name and origins, with errors beside their fields."""

from typing import Any

from conftest import Admin
from dashboard.conftest import field_error
from factories import Seed


def test_operator_renames_a_project_and_replaces_its_origins(
    operator: Any, admin: Admin, seed: Seed
) -> None:
    seed.project("realtyos")
    operator.post(
        "/projects/realtyos",
        {
            "name": "RealtyOS Cloud",
            "origins": "https://app.realtyos.com\nhttps://beta.realtyos.com",
        },
    )
    project = admin.call("GET", "/admin/api/projects/realtyos")
    assert project["name"] == "RealtyOS Cloud"
    assert project["origins"] == ["https://app.realtyos.com", "https://beta.realtyos.com"]
    page = operator.page("/projects/realtyos")
    assert "https://beta.realtyos.com" in page
    assert "Project realtyos saved." in page


def test_a_bad_origin_is_shown_beside_its_field_and_nothing_changes(
    operator: Any, admin: Admin, seed: Seed
) -> None:
    seed.project("realtyos")
    response = operator.post(
        "/projects/realtyos", {"name": "X", "origins": "not a url"}, expect=422
    )
    assert field_error(response.text, "project-origins")
    assert admin.call("GET", "/admin/api/projects/realtyos")["name"] == "Realtyos"
