"""The dashboard's door: login with the admin token, a signed HttpOnly session cookie, CSRF on
every form, logout, and nothing shown or changed without a session."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billplane.db import Database
from billplane.models import Project
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, Clock
from dashboard.conftest import Operator, app_client, csrf_of, field_error

PAGES = [
    "/",
    "/projects",
    "/projects/realtyos",
    "/projects/realtyos/plans",
    "/projects/realtyos/plans/pro",
    "/projects/realtyos/tenants",
    "/projects/realtyos/tenants/acme",
    "/plans",
    "/tenants",
    "/builder",
    "/webhook",
    "/signing-keys",
]

FORMS = [
    ("/projects", {"key": "newco", "name": "NewCo"}),
    ("/projects/realtyos", {"name": "Renamed"}),
    ("/projects/realtyos/features", {"key": "f2", "name": "F2", "type": "boolean"}),
    ("/projects/realtyos/features/exports", {"name": "Renamed"}),
    ("/projects/realtyos/features/exports/archive", {}),
    ("/projects/realtyos/features/exports/restore", {}),
    ("/projects/realtyos/tokens", {"name": "app"}),
    ("/projects/realtyos/plans", {"key": "gold", "name": "Gold", "stripe_price_id": "price_g"}),
    ("/projects/realtyos/plans/pro", {"name": "Renamed"}),
    ("/projects/realtyos/plans/pro/archive", {}),
    ("/projects/realtyos/plans/pro/restore", {}),
    ("/projects/realtyos/tenants", {"key": "globex"}),
    ("/projects/realtyos/tenants/acme", {"name": "Renamed"}),
    ("/projects/realtyos/tenants/acme/archive", {}),
    ("/projects/realtyos/tenants/acme/restore", {}),
    ("/signing-keys/rotate", {}),
    ("/logout", {}),
]


def projects(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Project)) or 0


@pytest.mark.parametrize("path", PAGES)
def test_every_page_without_a_session_redirects_to_login(
    client: TestClient, realtyos: object, path: str
) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(("path", "data"), FORMS, ids=[p for p, _ in FORMS])
def test_every_form_without_a_session_is_refused_403(
    client: TestClient, realtyos: object, session: Session, path: str, data: dict[str, str]
) -> None:
    before = projects(session)
    response = client.post(path, data=data, follow_redirects=False)
    assert response.status_code == 403
    assert "Form refused" in response.text
    assert projects(session) == before


@pytest.mark.parametrize(("path", "data"), FORMS, ids=[p for p, _ in FORMS])
def test_every_form_with_a_wrong_csrf_token_is_refused_403(
    operator: Operator, realtyos: object, path: str, data: dict[str, str]
) -> None:
    response = operator.client.post(path, data={**data, "csrf": "forged"}, follow_redirects=False)
    assert response.status_code == 403
    # Without the token at all, too; and the session survives both.
    assert operator.client.post(path, data=data, follow_redirects=False).status_code == 403
    operator.page("/")


def test_csrf_token_of_another_session_is_refused(
    operator: Operator, client: TestClient, session: Session
) -> None:
    stolen = operator.csrf
    client.cookies.clear()
    page = client.get("/login").text
    client.post("/login", data={"csrf": csrf_of(page), "token": ADMIN_TOKEN, "next": "/"})
    response = client.post(
        "/projects", data={"csrf": stolen, "key": "x", "name": "X"}, follow_redirects=False
    )
    assert response.status_code == 403
    assert projects(session) == 0


def test_login_with_the_admin_token_opens_the_overview(client: TestClient) -> None:
    operator = Operator(client)
    response = operator.log_in()
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert "What to do next" in operator.page("/")


def test_login_with_a_wrong_token_says_so_beside_the_field(client: TestClient) -> None:
    page = client.get("/login").text
    response = client.post(
        "/login", data={"csrf": csrf_of(page), "token": "wrong-" + "y" * 20, "next": "/"}
    )
    assert response.status_code == 401
    assert "not the admin token" in (field_error(response.text, "login-token") or "")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_form_itself_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_returns_to_the_page_asked_for_but_never_off_site(client: TestClient) -> None:
    for asked, landed in [
        ("/projects", "/projects"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
    ]:
        client.cookies.clear()
        page = client.get("/login").text
        response = client.post(
            "/login",
            data={"csrf": csrf_of(page), "token": ADMIN_TOKEN, "next": asked},
            follow_redirects=False,
        )
        assert response.headers["location"] == landed, asked


def test_session_cookie_is_httponly_samesite_lax_and_not_secure_over_http(
    client: TestClient,
) -> None:
    response = Operator(client).log_in()
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("billplane_session=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie.replace("samesite", "")


def test_session_cookie_is_secure_when_the_public_url_is_https(
    database_url: str, database: Database, session: Session, clock: Clock
) -> None:
    settings = Settings(
        database_url=database_url,
        billplane_admin_token=ADMIN_TOKEN,
        billplane_public_url="https://billing.example.com",
    )
    with app_client(settings, database, session, clock) as client:
        page = client.get("/login")
        cookie = page.headers["set-cookie"].lower()
    assert "; secure" in cookie
    assert "httponly" in cookie


def test_a_tampered_session_cookie_is_no_session(operator: Operator) -> None:
    value = operator.client.cookies["billplane_session"]
    payload, signature = value.rsplit(".", 1)[0], value.rsplit(".", 1)[1]
    operator.client.cookies.clear()
    operator.client.cookies.set("billplane_session", f"{payload}.{'A' * len(signature)}")
    assert operator.client.get("/", follow_redirects=False).status_code == 303
    # The untouched cookie still works: it was the forgery that was refused.
    operator.client.cookies.clear()
    operator.client.cookies.set("billplane_session", value)
    assert operator.client.get("/", follow_redirects=False).status_code == 200


def test_changing_the_admin_token_logs_every_operator_out(
    operator: Operator, database_url: str, database: Database, session: Session, clock: Clock
) -> None:
    cookie = operator.client.cookies["billplane_session"]
    settings = Settings(database_url=database_url, billplane_admin_token="another-" + "z" * 20)
    with app_client(settings, database, session, clock) as other:
        other.cookies.set("billplane_session", cookie)
        assert other.cookies["billplane_session"] == cookie
        assert other.get("/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(operator: Operator) -> None:
    response = operator.post("/logout", {})
    assert response.headers["location"] == "/login"
    assert operator.client.get("/", follow_redirects=False).status_code == 303


def test_a_saved_cookie_opens_nothing_after_logout(operator: Operator, realtyos: object) -> None:
    """The issue's case: a copy of the cookie kept working (and issuing tokens) for 12 hours."""
    saved = operator.client.cookies["billplane_session"]
    operator.post("/logout", {})

    operator.client.cookies.clear()
    operator.client.cookies.set("billplane_session", saved)

    assert operator.client.get("/", follow_redirects=False).status_code == 303
    issued = operator.client.post(
        "/projects/realtyos/tokens",
        data={"csrf": operator.csrf, "name": "stolen"},
        follow_redirects=False,
    )
    assert issued.status_code == 403


def test_logging_out_ends_that_session_only(operator: Operator, client: TestClient) -> None:
    with TestClient(client.app, raise_server_exceptions=False) as other_browser:
        colleague = Operator(other_browser)
        assert colleague.log_in().status_code == 303
        operator.post("/logout", {})
        colleague.page("/")
    assert operator.client.get("/", follow_redirects=False).status_code == 303


def test_a_session_ends_twelve_hours_after_login(operator: Operator, clock: Clock) -> None:
    clock.advance(hours=11, minutes=59)
    operator.page("/")
    clock.advance(minutes=1)
    assert operator.client.get("/", follow_redirects=False).status_code == 303


def wrong_login(client: TestClient, token: str = "wrong-" + "y" * 20) -> Any:
    page = client.get("/login").text
    return client.post("/login", data={"csrf": csrf_of(page), "token": token, "next": "/"})


def test_ten_wrong_tokens_a_minute_then_even_the_right_one_waits(
    client: TestClient, clock: Clock
) -> None:
    for _ in range(10):
        assert wrong_login(client).status_code == 401
        clock.advance(seconds=3)

    refused = wrong_login(client, ADMIN_TOKEN)

    assert refused.status_code == 429
    # The first failure leaves the minute 60 s after it: 30 s have passed.
    assert refused.headers["retry-after"] == "30"
    assert "try again in 30 seconds" in (field_error(refused.text, "login-token") or "")
    assert client.get("/", follow_redirects=False).status_code == 303
    clock.advance(seconds=30)
    assert Operator(client).log_in().status_code == 303


def test_the_login_throttle_counts_per_client(client: TestClient) -> None:
    for _ in range(10):
        wrong_login(client)
    with TestClient(client.app, client=("203.0.113.9", 50000)) as elsewhere:
        assert Operator(elsewhere).log_in().status_code == 303
    assert wrong_login(client, ADMIN_TOKEN).status_code == 429


def test_without_an_admin_token_the_dashboard_is_off(
    database_url: str, database: Database, session: Session, clock: Clock
) -> None:
    settings = Settings(database_url=database_url)
    with app_client(settings, database, session, clock) as client:
        page = client.get("/login")
        assert "The dashboard is off" in page.text
        response = client.post(
            "/login",
            data={"csrf": csrf_of(page.text) if "csrf" in page.text else "", "token": ""},
            follow_redirects=False,
        )
        assert response.status_code in {401, 403}
        assert client.get("/", follow_redirects=False).status_code == 303


def test_pages_tell_browsers_not_to_cache_or_frame_them(operator: Operator) -> None:
    response = operator.client.get("/projects")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_api_keeps_its_json_errors_beside_the_dashboard(client: TestClient) -> None:
    unknown = client.get("/nope")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    wrong_method = client.get("/v1/check")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert client.get("/healthz").json()["status"] == "ok"


def test_an_unknown_dashboard_record_is_an_html_404(operator: Operator) -> None:
    page = operator.page("/projects/nobody", expect=404)
    assert "No project &#39;nobody&#39;" in page
    assert "<html" in page
