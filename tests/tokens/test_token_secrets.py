"""A token's secret: shown once, stored only as a hash, recognisable by its prefix."""

import hashlib

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from billplane.models import Token
from conftest import Admin, Setup
from factories import Seed


def _all_token_cells(session: Session) -> list[str]:
    """Every value of every column of every row of `tokens`, as text."""
    rows = session.execute(text("SELECT * FROM tokens")).all()
    return [str(value) for row in rows for value in row]


def _token_ids(admin: Admin, *, tenant: str | None) -> list[str]:
    listed = admin.call("GET", "/admin/api/projects/realtyos/tokens")["data"]
    return [str(t["id"]) for t in listed if t["tenant"] == tenant]


def test_project_token_is_returned_once_when_the_project_is_created(admin: Admin) -> None:
    created = admin.project("realtyos")

    assert created["token"].startswith("bp_")
    assert created["token_id"].startswith("tok_")
    assert created["token"].startswith(created["token_prefix"])


def test_project_token_never_appears_in_later_admin_answers(admin: Admin, seed: Seed) -> None:
    secret = seed.project("realtyos").token.secret
    seed.tenant("realtyos", "acme")

    for path in [
        "/admin/api/projects",
        "/admin/api/projects/realtyos",
        "/admin/api/projects/realtyos/tokens",
        "/admin/api/projects/realtyos/tenants",
        "/admin/api/projects/realtyos/tenants/acme",
        "/admin/api/audit",
    ]:
        response = admin.client.get(path, headers=admin.headers)
        assert response.status_code == 200, (path, response.text)
        assert secret not in response.text, path
        assert secret[len("bp_") + 8 :] not in response.text, path


def test_token_list_shows_no_secret_field(admin: Admin, seed: Seed) -> None:
    seed.project("realtyos")
    seed.tenant("realtyos", "acme")
    admin.call(
        "POST",
        "/admin/api/projects/realtyos/tokens",
        201,
        json={"name": "acme app", "tenant": "acme"},
    )

    listed = admin.call("GET", "/admin/api/projects/realtyos/tokens")["data"]

    assert len(listed) == 2
    for token in listed:
        assert "token" not in token
        assert set(token) == {
            "id",
            "name",
            "prefix",
            "tenant",
            "created_at",
            "rotated_at",
            "revoked_at",
        }


def test_tenant_scoped_token_is_issued_for_that_tenant(realtyos: Setup) -> None:
    issued = realtyos.admin.call(
        "POST",
        "/admin/api/projects/realtyos/tokens",
        201,
        json={"name": "acme app", "tenant": "acme"},
    )

    assert issued["tenant"] == "acme"
    assert issued["token"].startswith("bp_")
    assert issued["token"] != realtyos.token
    listed = realtyos.admin.call("GET", "/admin/api/projects/realtyos/tokens")["data"]
    assert {t["id"]: t["tenant"] for t in listed}[issued["id"]] == "acme"


def test_token_scoped_to_an_unknown_tenant_is_refused(realtyos: Setup) -> None:
    response = realtyos.admin.client.post(
        "/admin/api/projects/realtyos/tokens",
        json={"name": "ghost", "tenant": "nobody"},
        headers=realtyos.admin.headers,
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "tenant_not_found"


def test_tokens_table_holds_hashes_never_plain_tokens(realtyos: Setup, session: Session) -> None:
    scoped = realtyos.admin.call(
        "POST",
        "/admin/api/projects/realtyos/tokens",
        201,
        json={"name": "acme app", "tenant": "acme"},
    )["token"]
    project_token_id = _token_ids(realtyos.admin, tenant=None)[0]
    rotated = realtyos.admin.call("POST", f"/admin/api/tokens/{project_token_id}/rotate")["token"]

    cells = _all_token_cells(session)
    assert cells, "the tokens table should not be empty"
    for secret in (realtyos.token, scoped, rotated):
        assert all(secret not in cell for cell in cells)
    hashes = set(session.scalars(select(Token.token_hash)).all())
    assert hashlib.sha256(scoped.encode()).hexdigest() in hashes
    assert hashlib.sha256(rotated.encode()).hexdigest() in hashes


def test_listed_prefix_is_the_start_of_the_token_and_reveals_little(
    admin: Admin, seed: Seed
) -> None:
    secret = seed.project("realtyos").token.secret

    (listed,) = admin.call("GET", "/admin/api/projects/realtyos/tokens")["data"]

    assert listed["prefix"].startswith("bp_")
    assert secret.startswith(listed["prefix"])
    assert len(listed["prefix"]) <= 16 < len(secret)


def test_each_issued_token_has_its_own_secret(realtyos: Setup) -> None:
    secrets_seen = {realtyos.token}
    for n in range(3):
        issued = realtyos.admin.call(
            "POST", "/admin/api/projects/realtyos/tokens", 201, json={"name": f"app {n}"}
        )
        secrets_seen.add(issued["token"])

    assert len(secrets_seen) == 4
