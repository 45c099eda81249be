"""Webhooks to apps survive what real apps and servers do, on a real clock, against real
`billplane serve` processes: an app that answers 500, then keeps the sender waiting past its
timeout, then is down for a while gets every event once it is back, each once; and a server
killed (SIGKILL) in the middle of deliveries loses none: another sends what it held once its
claims run out (at least once: repeats are allowed, told apart by `webhook-id`).

Retries and claims are shortened by settings (BILLPLANE_APP_WEBHOOKS_FIRST_RETRY, _TIMEOUT) so
that this takes seconds, not the minutes of the defaults.
"""

import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from standardwebhooks import Webhook

from app_receiver import Receiver, receiving
from conftest import ADMIN_TOKEN, fresh_database
from servers import free_port, running_server

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
QUICK = {
    "BILLPLANE_APP_WEBHOOKS_TIMEOUT": "0.6",  # a claim lasts 4.8 s
    "BILLPLANE_APP_WEBHOOKS_FIRST_RETRY": "0.2",  # then 0.6 s, 1.8 s, 5.4 s...
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@dataclass
class Setup:
    base_url: str
    project: str
    endpoint: str  # its id
    secret: str
    tenants: list[str]

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = httpx.request(
            method, f"{self.base_url}{path}", headers=ADMIN, timeout=30, **kwargs
        )
        assert answer.is_success, answer.text
        return answer.json()

    def change_each(self, times: int) -> None:
        """Archive and restore each tenant in turn: each change is one event for it."""
        for n in range(times):
            for tenant in self.tenants:
                status = "archived" if n % 2 == 0 else "active"
                path = f"/admin/api/projects/{self.project}/tenants/{tenant}"
                self.admin("PATCH", path, json={"status": status})

    def deliveries(self) -> list[dict[str, Any]]:
        path = f"/admin/api/projects/{self.project}/webhook-endpoints/{self.endpoint}/deliveries"
        return list(self.admin("GET", path, params={"limit": 100})["data"])


def set_up(base_url: str, receiver: Receiver, tenants: int) -> Setup:
    project = f"p{secrets.token_hex(4)}"
    setup = Setup(base_url, project, "", "", [f"t{n}" for n in range(tenants)])
    setup.admin("POST", "/admin/api/projects", json={"key": project, "name": project})
    for tenant in setup.tenants:
        setup.admin("POST", f"/admin/api/projects/{project}/tenants", json={"key": tenant})
    created = setup.admin(
        "POST",
        f"/admin/api/projects/{project}/webhook-endpoints",
        json={"url": receiver.url, "events": ["tenant.entitlements.updated"]},
    )
    setup.endpoint, setup.secret = created["id"], created["secret"]
    return setup


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.1)


def attempt_logs(setup: Setup) -> list[list[dict[str, Any]]]:
    """Each delivery's attempts, as the admin API lists them."""
    path = f"/admin/api/projects/{setup.project}/webhook-endpoints/{setup.endpoint}/deliveries"
    return [setup.admin("GET", f"{path}/{d['id']}")["attempt_log"] for d in setup.deliveries()]


def first_arrivals(setup: Setup, receiver: Receiver) -> dict[str, list[int]]:
    """Each tenant's sequence numbers in the order they first arrived (repeats left out), every
    body verified with the endpoint's secret."""
    seen: set[str] = set()
    order: dict[str, list[int]] = {}
    for received in receiver.accepted():
        data = Webhook(setup.secret).verify(received.body, received.headers)["data"]
        if received.headers["webhook-id"] not in seen:
            seen.add(received.headers["webhook-id"])
            order.setdefault(data["tenant"], []).append(data["sequence"])
    return order


def test_an_app_that_errs_then_times_out_then_is_down_gets_every_event_once_back(
    database_url: str,
) -> None:
    # A time-out well above what a loaded machine takes to answer: an answer that merely came
    # late would be sent again (rightly: at least once), and this test counts each event once.
    patient = QUICK | {"BILLPLANE_APP_WEBHOOKS_TIMEOUT": "2"}
    with (
        receiving(slow_seconds=3.0) as receiver,
        running_server(database_url, ADMIN_TOKEN, extra_env=patient) as base_url,
    ):
        setup = set_up(base_url, receiver, tenants=2)
        receiver.script = [500, "slow"]
        setup.change_each(3)
        wait_for(lambda: len(receiver.received) >= 2, 20, "a 500 and a time-out")
        receiver.close()  # the app goes down until a delivery has found it down
        wait_for(lambda: "ConnectError" in str(attempt_logs(setup)), 30, "an attempt while down")
        receiver.open()
        wait_for(lambda: len(receiver.accepted()) >= 6, 40, "every event delivered")
        time.sleep(0.5)  # a repeat, were there one, would come by now
        deliveries = setup.deliveries()
        logs = attempt_logs(setup)

    ids = Counter(r.headers["webhook-id"] for r in receiver.accepted())
    assert len(ids) == 6
    assert set(ids.values()) == {1}  # each event once
    assert ids.keys() == {d["message_id"] for d in deliveries}
    assert {d["status"] for d in deliveries} == {"delivered"}
    assert first_arrivals(setup, receiver) == {"t0": [1, 2, 3], "t1": [1, 2, 3]}
    errors = {a["error"] for log in logs for a in log if a["error"]}
    assert {"answered 500", "no answer in time"} <= errors
    assert any(e.startswith("ConnectError") for e in errors), errors  # while it was down


def test_a_server_killed_mid_delivery_loses_nothing_another_sends_it_all(
    database_url: str,
) -> None:
    killed: list[subprocess.Popen[str]] = []
    # A time-out long enough that a delivery held at the app is still in flight when the test,
    # having seen it arrive, kills its sender (its claim then lasts 8 times this).
    patient = QUICK | {"BILLPLANE_APP_WEBHOOKS_TIMEOUT": "1.5"}
    with receiving(latency=0.2) as receiver:  # an app that takes its time to answer
        with running_server(
            database_url, ADMIN_TOKEN, extra_env=patient, started=killed, port=free_port()
        ) as first:
            setup = set_up(first, receiver, tenants=4)
            setup.change_each(5)
            wait_for(lambda: len(receiver.received) >= 4, 20, "the first deliveries")
            receiver.hold()  # what is sent from now on stays in flight
            wait_for(lambda: receiver.waiting > 0, 20, "a delivery in flight")
            killed[0].send_signal(signal.SIGKILL)  # mid-way: no chance to record anything
            killed[0].wait(timeout=10)
            held = _claimed_and_pending(database_url)
            total = len(setup.tenants) * 5
            receiver.let_go()  # the held requests end unanswered: their sender is gone
        with running_server(database_url, ADMIN_TOKEN, extra_env=patient) as second:
            setup.base_url = second
            wait_for(
                lambda: {d["status"] for d in setup.deliveries()} == {"delivered"},
                60,
                "every delivery delivered by the second server",
            )
            deliveries = setup.deliveries()

    assert held >= 1  # the killed server held deliveries it had not recorded
    assert len(deliveries) == total
    received = {r.headers["webhook-id"] for r in receiver.accepted()}
    assert received == {d["message_id"] for d in deliveries}  # none lost
    assert first_arrivals(setup, receiver) == {t: [1, 2, 3, 4, 5] for t in setup.tenants}


def _claimed_and_pending(database_url: str) -> int:
    """Deliveries a sender claimed and had not recorded, as the database holds them now."""
    from billplane.settings import Settings

    engine = create_engine(Settings(database_url=database_url).sqlalchemy_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.scalar(
                    text(
                        "SELECT count(*) FROM app_deliveries"
                        " WHERE status = 'pending' AND claim IS NOT NULL"
                    )
                )
                or 0
            )
    finally:
        engine.dispose()
