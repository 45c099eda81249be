"""What an operator's tools ask: `/healthz` (alive), `/readyz` (the database answers and is at
the migrations' head, else 503 with the reason) and `/metrics` (behind a token when one is set)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from billplane.app import create_app
from billplane.db import Database
from billplane.migrate import upgrade
from billplane.settings import Settings
from conftest import ADMIN_TOKEN

METRICS_TOKEN = "metrics-" + "m" * 24


@contextmanager
def serving(database_url: str, metrics_token: str | None = None) -> Iterator[TestClient]:
    """The app on its own database (not the tests' shared, rolled-back one)."""
    configured = Settings(
        database_url=database_url,
        billplane_admin_token=ADMIN_TOKEN,
        billplane_metrics_token=metrics_token,
    )
    db = Database(configured.sqlalchemy_url)
    try:
        with TestClient(create_app(configured, db=db)) as client:
            yield client
    finally:
        db.dispose()


def test_healthz_answers_without_a_database() -> None:
    with serving("postgresql://nobody@127.0.0.1:1/nothing") as client:
        assert client.get("/healthz").json()["status"] == "ok"


def test_readyz_is_ready_on_a_migrated_database(client: TestClient) -> None:
    answer = client.get("/readyz")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ready"


def test_readyz_is_503_on_a_database_never_migrated(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'empty.db'}") as client:
        answer = client.get("/readyz")

    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "database_not_migrated"
    assert "no billplane schema" in error["message"]
    assert "billplane db upgrade" in error["message"]


def test_readyz_is_503_on_a_database_behind_the_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    upgrade(url)
    db = Database(url)
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '919f8ab422ba'"))
    db.dispose()
    with serving(url) as client:
        answer = client.get("/readyz")

    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "database_not_migrated"
    assert "behind the migrations' head" in answer.json()["error"]["message"]


def test_readyz_is_503_when_the_database_does_not_answer() -> None:
    with serving("postgresql://nobody@127.0.0.1:1/nothing") as client:
        answer = client.get("/readyz")

    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "database_unreachable"
    assert "127.0.0.1" not in error["message"]  # the driver's words stay in the log


def test_metrics_are_open_without_a_token(client: TestClient) -> None:
    client.get("/healthz")
    answer = client.get("/metrics")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert 'billplane_http_request_duration_seconds_count{method="GET",route="/healthz"' in (
        answer.text
    )


@pytest.mark.parametrize("sent", [None, "wrong-" + "w" * 24])
def test_metrics_behind_a_token_refuse_any_other(tmp_path: Path, sent: str | None) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    headers = {"Authorization": f"Bearer {sent}"} if sent else {}
    with serving(url, metrics_token=METRICS_TOKEN) as client:
        refused = client.get("/metrics", headers=headers)
        allowed = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert allowed.status_code == 200
