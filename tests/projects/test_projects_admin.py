"""The admin API for projects: create with origins, list with paging, conflicts."""

from typing import Any

from conftest import Admin

PROJECTS = "/admin/api/projects"


def _error(admin: Admin, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
    response = admin.client.request(method, path, headers=admin.headers, **kwargs)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_project_is_created_with_its_origins(admin: Admin) -> None:
    created = admin.call(
        "POST",
        PROJECTS,
        201,
        json={
            "key": "realtyos",
            "name": "RealtyOS",
            "origins": ["https://app.realtyos.test/", "http://localhost:5173"],
        },
    )

    assert created["key"] == "realtyos"
    assert created["name"] == "RealtyOS"
    assert created["origins"] == ["https://app.realtyos.test", "http://localhost:5173"]
    assert created["created_at"]


def test_created_project_can_be_fetched_by_key(admin: Admin) -> None:
    admin.project("realtyos", name="RealtyOS")

    fetched = admin.call("GET", f"{PROJECTS}/realtyos")

    assert fetched["key"] == "realtyos"
    assert fetched["name"] == "RealtyOS"
    assert fetched["origins"] == ["https://app.realtyos.test"]
    assert "token" not in fetched


def test_project_without_origins_has_an_empty_list(admin: Admin) -> None:
    created = admin.call("POST", PROJECTS, 201, json={"key": "bare", "name": "Bare"})

    assert created["origins"] == []


def test_duplicate_project_key_is_409_and_keeps_the_first(admin: Admin) -> None:
    admin.project("realtyos", name="First")

    error = _error(admin, "POST", PROJECTS, 409, json={"key": "realtyos", "name": "Second"})

    assert error["code"] == "already_exists"
    assert error["param"] == "key"
    assert admin.call("GET", f"{PROJECTS}/realtyos")["name"] == "First"


def test_project_key_with_a_slash_is_422(admin: Admin) -> None:
    error = _error(admin, "POST", PROJECTS, 422, json={"key": "real/tyos", "name": "x"})

    assert error["code"] == "validation_error"
    assert error["param"] == "key"


def test_project_key_longer_than_64_characters_is_422(admin: Admin) -> None:
    error = _error(admin, "POST", PROJECTS, 422, json={"key": "k" * 65, "name": "x"})

    assert error["param"] == "key"


def test_origin_that_is_not_a_url_is_422(admin: Admin) -> None:
    error = _error(
        admin, "POST", PROJECTS, 422, json={"key": "p", "name": "p", "origins": ["not a url"]}
    )

    assert error["param"].startswith("origins")


def test_origin_with_a_query_is_422(admin: Admin) -> None:
    error = _error(
        admin,
        "POST",
        PROJECTS,
        422,
        json={"key": "p", "name": "p", "origins": ["https://a.test/?next=x"]},
    )

    assert error["param"].startswith("origins")


def test_unknown_field_in_project_body_is_422(admin: Admin) -> None:
    error = _error(
        admin, "POST", PROJECTS, 422, json={"key": "p", "name": "p", "origin": ["https://a.test"]}
    )

    assert error["param"] == "origin"


def test_unknown_project_is_404(admin: Admin) -> None:
    error = _error(admin, "GET", f"{PROJECTS}/nowhere", 404)

    assert error["code"] == "project_not_found"


def test_project_list_contains_created_projects_without_tokens(admin: Admin) -> None:
    admin.project("realtyos")
    admin.project("reeltours")

    listed = admin.call("GET", PROJECTS)

    keys = [p["key"] for p in listed["data"]]
    assert {"realtyos", "reeltours"} <= set(keys)
    assert keys == sorted(keys)
    assert all("token" not in p for p in listed["data"])
    assert listed["has_more"] is False


def test_project_list_pages_with_limit_and_starting_after(admin: Admin) -> None:
    # Keys sort after anything other tests leave behind, so the last page is ours alone.
    for key in ("zzpage-1", "zzpage-2", "zzpage-3"):
        admin.project(key)

    first = admin.call("GET", PROJECTS, params={"limit": 2, "starting_after": "zzpage-0"})
    second = admin.call("GET", PROJECTS, params={"limit": 2, "starting_after": "zzpage-2"})

    assert [p["key"] for p in first["data"]] == ["zzpage-1", "zzpage-2"]
    assert first["has_more"] is True
    assert [p["key"] for p in second["data"]] == ["zzpage-3"]
    assert second["has_more"] is False


def test_project_list_limit_above_100_is_422(admin: Admin) -> None:
    error = _error(admin, "GET", PROJECTS, 422, params={"limit": 101})

    assert error["param"] == "limit"


def test_patch_renames_a_project_and_replaces_its_origins(admin: Admin) -> None:
    admin.project("editme")
    patched = admin.call(
        "PATCH",
        "/admin/api/projects/editme",
        json={"name": "Edited", "origins": ["https://a.example.com/", "https://b.example.com"]},
    )
    assert (patched["name"], patched["origins"]) == (
        "Edited",
        ["https://a.example.com", "https://b.example.com"],
    )
    assert admin.call("GET", "/admin/api/projects/editme")["name"] == "Edited"
    entry = admin.call("GET", "/admin/api/audit", params={"project": "editme"})["data"][0]
    assert entry["action"] == "project.update"
    assert entry["before"]["name"] == "Editme"
    assert entry["after"]["name"] == "Edited"


def test_patch_with_an_origin_that_has_a_query_is_422_and_changes_nothing(admin: Admin) -> None:
    admin.project("editme")
    error = admin.call(
        "PATCH", "/admin/api/projects/editme", 422, json={"origins": ["https://a.example.com/?x=1"]}
    )["error"]
    assert error["param"].startswith("origins")
    assert admin.call("GET", "/admin/api/projects/editme")["origins"] == [
        "https://app.realtyos.test"
    ]


def test_patch_of_an_unknown_project_is_404(admin: Admin) -> None:
    assert (
        admin.call("PATCH", "/admin/api/projects/nope", 404, json={"name": "X"})["error"]["code"]
        == "project_not_found"
    )
