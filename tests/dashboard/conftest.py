"""Fixtures for dashboard pages in-process: an operator logged in through the login form, on the
same app (and rolled-back test transaction) as the `admin`, `seed` and `realtyos` fixtures."""

import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from apps import lend_app
from billplane.db import Database
from billplane.http import get_transactions
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, Clock, SavepointTransactions
from factories import Seed
from stripe_double import StripeDouble, running_double

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
WEBHOOK_SECRET = "whsec_dashboard_tests"


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no CSRF field"
    return found.group(1)


class _Fields(HTMLParser):
    """Each field's container (`div.field`, `div.grant`): its inputs and its error message."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[dict[str, Any] | None] = []  # one entry per open <div>
        self.fields: list[dict[str, Any]] = []
        self.in_error: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        classes = (attr.get("class") or "").split()
        if tag == "div":
            field: dict[str, Any] | None = None
            if "field" in classes or "grant" in classes:
                field = {"inputs": {}, "errors": {}}
                self.fields.append(field)
            self.open.append(field)
        current = next((f for f in reversed(self.open) if f is not None), None)
        if current is None:
            return
        if tag in {"input", "select", "textarea"} and attr.get("id"):
            current["inputs"][attr["id"]] = attr
        if tag == "p" and "field-error" in classes:
            self.in_error = current
            self.error_id = attr.get("id") or ""
            current["errors"][self.error_id] = ""

    def handle_data(self, data: str) -> None:
        if self.in_error is not None:
            self.in_error["errors"][self.error_id] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.in_error = None
        if tag == "div" and self.open:
            self.open.pop()


def field_error(page: str, input_id: str) -> str | None:
    """The error shown beside the input with this id: in the same field container, and named by
    the input's aria-describedby (so a screen reader reads it with the field)."""
    parser = _Fields()
    parser.feed(page)
    for field in parser.fields:
        if input_id in field["inputs"]:
            described = (field["inputs"][input_id].get("aria-describedby") or "").split()
            found = [text for eid, text in field["errors"].items() if eid in described]
            if found:
                assert field["inputs"][input_id].get("aria-invalid") == "true"
            return found[0].strip() if found else None
    raise AssertionError(f"no input #{input_id} on the page")


def errors_on(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'class="field-error"[^>]*>([^<]*)<', page)]


class Operator:
    """A person using the dashboard: logs in through the form, sends forms with the CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def log_in(self, token: str = ADMIN_TOKEN) -> httpx2.Response:
        page = self.client.get("/login")
        response = self.client.post(
            "/login",
            data={"csrf": csrf_of(page.text), "token": token, "next": "/"},
            follow_redirects=False,
        )
        self.refresh_csrf()
        return response

    def refresh_csrf(self) -> None:
        page = self.client.get("/projects")
        if page.status_code == 200:
            self.csrf = csrf_of(page.text)

    def page(self, path: str, expect: int = 200) -> str:
        response = self.client.get(path, follow_redirects=False)
        assert response.status_code == expect, (path, response.status_code, response.text[:500])
        return response.text

    def post(self, path: str, data: dict[str, Any], expect: int = 303) -> httpx2.Response:
        response = self.client.post(path, data={"csrf": self.csrf, **data}, follow_redirects=False)
        assert response.status_code == expect, (path, response.status_code, response.text[:800])
        return response

    def follow(self, response: httpx2.Response) -> str:
        """The page a POST redirected to (where a one-time secret is shown)."""
        return self.page(response.headers["location"])


@pytest.fixture
def operator(client: TestClient) -> Operator:
    person = Operator(client)
    assert person.log_in().status_code == 303
    return person


def one_time_secret(page: str) -> str:
    found = re.search(r'id="one-time-secret">(bp_[^<]+)<', page)
    assert found, "no one-time secret on the page"
    return found.group(1)


# --- Stripe: the project's Stripe double, reached through the real gateway --------------------


@pytest.fixture(scope="session")
def stripe_double() -> Iterator[StripeDouble]:
    with running_double(webhook_secret=WEBHOOK_SECRET) as double:
        yield double


@pytest.fixture
def double(stripe_double: StripeDouble) -> StripeDouble:
    stripe_double.reset()
    return stripe_double


def app_client(
    settings: Settings,
    database: Database,
    session: Session,
    clock: Clock,
    base_url: str | None = None,
) -> TestClient:
    app = lend_app(settings, database, clock).app
    app.dependency_overrides[get_transactions] = lambda: SavepointTransactions(session)
    # A Secure cookie (public URL on https) comes back only over https.
    scheme = "https" if settings.billplane_public_url.startswith("https") else "http"
    base_url = base_url or f"{scheme}://testserver"
    return TestClient(app, base_url=base_url, raise_server_exceptions=False)


@pytest.fixture
def stripe_settings(database_url: str, double: StripeDouble) -> Settings:
    return Settings(
        database_url=database_url,
        billplane_admin_token=ADMIN_TOKEN,
        billplane_public_url="https://billing.example.com",
        stripe_secret_key="sk_test_dashboard",
        stripe_api_base=double.base_url,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )


@pytest.fixture
def stripe_operator(
    stripe_settings: Settings, database: Database, session: Session, clock: Clock
) -> Iterator[Operator]:
    """An operator of a billplane whose Stripe is the double (test-mode key, webhook secret)."""
    with app_client(stripe_settings, database, session, clock) as client:
        person = Operator(client)
        assert person.log_in().status_code == 303
        yield person


@pytest.fixture
def stripe_seed(stripe_settings: Settings, session: Session, clock: Clock) -> Seed:
    """`seed` for the `stripe_operator`'s app: plans ask the double for their price."""
    return Seed(session, stripe_settings, clock)


def in_stripe(double: StripeDouble, path: str, data: dict[str, str]) -> dict[str, Any]:
    """Create something in the Stripe double, as an operator would in Stripe's dashboard."""
    response = httpx.post(
        double.base_url + path, data=data, headers={"Authorization": "Bearer sk_test_dashboard"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stripe_price(double: StripeDouble, amount: int = 2000, **extra: str) -> str:
    product = in_stripe(double, "/v1/products", {"name": "Pro"})
    fields = {"product": product["id"], "unit_amount": str(amount), "currency": "usd"}
    price = in_stripe(double, "/v1/prices", {**fields, "recurring[interval]": "month", **extra})
    return str(price["id"])


def status_of(page: str, which: str) -> str:
    """The text of the header's Stripe or Webhook status pill."""
    found = re.search(
        rf'data-testid="{which}-status">.*?<span class="pill[^"]*"[^>]*>([^<]*)<', page, re.S
    )
    assert found, f"no {which} status in the header"
    return html.unescape(found.group(1)).strip()


def snippet_of(page: str, call: str) -> str:
    """The text a Copy button copies: the snippet for `call` (check, usage, checkout, portal)."""
    found = re.search(
        rf'<pre id="snippet-{call}" tabindex="0"><code>(.*?)</code></pre>', page, re.S
    )
    assert found, f"no {call} snippet on the page"
    return html.unescape(found.group(1))
