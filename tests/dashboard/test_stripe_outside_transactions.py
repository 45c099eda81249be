"""Stripe is never asked while a database transaction is open: a slow or unreachable Stripe must
not hold a connection (PostgreSQL's pool) or a lock (SQLite's writer) for seconds.

The app's transactions are the test's savepoints, counted as they open and close; the Stripe
double tells each API request as it arrives, and the test notes how many were open then."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from billplane.app import create_app
from billplane.db import Database
from billplane.http import get_transactions
from billplane.settings import Settings
from conftest import Admin, Clock, SavepointTransactions
from dashboard.conftest import Operator, in_stripe, stripe_price
from factories import Seed
from stripe_double import StripeDouble


class CountedTransactions(SavepointTransactions):
    open = 0  # shared by every request's instance: the app's transactions open right now

    @contextmanager
    def _counted(self) -> Iterator[Session]:
        with super()._savepoint() as session:
            CountedTransactions.open += 1
            try:
                yield session
            finally:
                CountedTransactions.open -= 1

    read = write = _counted


@pytest.fixture
def watched(
    stripe_settings: Settings,
    database: Database,
    session: Session,
    clock: Clock,
    double: StripeDouble,
) -> Iterator[tuple[Operator, list[tuple[str, int]]]]:
    app = create_app(stripe_settings, db=database, clock=clock)
    app.dependency_overrides[get_transactions] = lambda: CountedTransactions(session)
    calls: list[tuple[str, int]] = []
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        person = Operator(client)
        assert person.log_in().status_code == 303
        seed = Seed(session, stripe_settings, clock)
        seed.project("realtyos")
        seed.plan("realtyos", "pro", stripe_price_id=stripe_price(double))
        in_stripe(
            double,
            "/v1/webhook_endpoints",
            {"url": "https://billing.example.com/webhooks/stripe", "enabled_events[0]": "*"},
        )

        def note(method: str, path: str) -> None:
            calls.append((f"{method} {path}", CountedTransactions.open))

        with double.watching(note):
            yield person, calls


@pytest.mark.parametrize(
    "path",
    ["/", "/projects/realtyos/plans", "/webhook", "/admin/api/status", "/admin/api/stripe/check"],
)
def test_pages_ask_stripe_with_no_transaction_open(
    watched: tuple[Operator, list[tuple[str, int]]], path: str
) -> None:
    person, calls = watched
    headers: dict[str, Any] = {}
    if path.startswith("/admin/api"):
        headers = Admin(person.client).headers
    response = person.client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert calls, "the page shows what Stripe says, so it must have asked"
    during = [call for call, open_ in calls if open_]
    assert during == [], f"asked Stripe inside a transaction: {during}"
