"""`GET /metrics` of a real two-worker server, after traffic: whichever worker answers a scrape,
its sums are both workers' (prometheus-client's multiprocess mode, which `serve` sets up)."""

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from billplane import metrics
from billplane.webhooks import WEBHOOK_PATH
from conftest import ADMIN_TOKEN, fresh_database
from servers import running_server
from stripe_double.events import signature_header
from stripe_shop import closed_port_url

WEBHOOK_SECRET = "whsec_metrics_" + "w" * 16
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Served:
    base_url: str
    checks: int  # checks sent, each answered 200
    workers: set[str]  # the workers that answered them (our request ids' per-process prefix)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for every test here (they only read its metrics), and its traffic."""
    env = {
        "STRIPE_SECRET_KEY": "sk_test_" + "k" * 24,
        "STRIPE_API_BASE": closed_port_url(),  # every Stripe call fails: counted as errors
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    with (
        fresh_database("sqlite", tmp_path_factory.mktemp("metrics")) as url,
        running_server(url, ADMIN_TOKEN, workers=2, extra_env=env) as base_url,
        httpx.Client(base_url=base_url, timeout=60) as http,
    ):
        token = _seed(http)
        checks, workers = asyncio.run(_checks_until_both_workers_answer(base_url, token))
        _usage(http, token)
        _webhooks(http)
        _app_webhooks_waiting(http)
        yield Served(base_url, checks, workers)


def _seed(http: httpx.Client) -> str:
    project = http.post("/admin/api/projects", json={"key": "p", "name": "P"}, headers=ADMIN)
    base = "/admin/api/projects/p"
    steps = [
        ("features", {"key": "reports", "name": "Reports", "type": "limit"}),
        ("plans", {"key": "free", "name": "Free", "is_default": True,
                   "features": {"reports": {"limit": 5}}}),
        ("tenants", {"key": "acme"}),
        # Stripe is asked about the price, and does not answer: a Stripe API error.
        ("plans", {"key": "pro", "name": "Pro", "stripe_price_id": "price_pro"}),
    ]  # fmt: skip
    for path, body in steps:
        assert http.post(f"{base}/{path}", json=body, headers=ADMIN).status_code == 201
    return str(project.json()["token"])


async def _checks_until_both_workers_answer(base_url: str, token: str) -> tuple[int, set[str]]:
    """Rounds of concurrent checks, each on a connection of its own (so the kernel hands them
    to either worker), until both workers answered some."""
    body = {"tenant": "acme", "feature": "reports"}
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_keepalive_connections=0)
    sent, workers = 0, set[str]()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        while len(workers) < 2 and sent < 1000:
            answers = await asyncio.gather(
                *(client.post("/v1/check", json=body, headers=headers) for _ in range(25))
            )
            sent += len(answers)
            assert {a.status_code for a in answers} == {200}
            workers |= {_worker(a) for a in answers}
    return sent, workers


def _worker(answer: httpx.Response) -> str:
    return answer.headers["x-request-id"].split("-")[0]


def _usage(http: httpx.Client, token: str) -> None:
    client = {"Authorization": f"Bearer {token}"}

    def usage(key: str, feature: str = "reports", **extra: object) -> int:
        body = {"tenant": "acme", "feature": feature, "idempotency_key": key, **extra}
        return http.post("/v1/usage", json=body, headers=client).status_code

    statuses = [usage(f"u{i}") for i in range(4)]
    statuses += [usage("u0"), usage("big", quantity=10, enforce=True), usage("x", "typo")]
    assert statuses == [201, 201, 201, 201, 200, 402, 404]
    events = [
        {"tenant": "acme", "feature": "reports", "idempotency_key": "b1"},
        {"tenant": "acme", "feature": "reports", "idempotency_key": "u1"},
        {"tenant": "acme", "feature": "typo", "idempotency_key": "b2"},
    ]
    batch = http.post("/v1/usage/batch", json={"events": events}, headers=client).json()
    assert [r["status"] for r in batch["data"]] == [201, 200, 404]


def _webhooks(http: httpx.Client) -> None:
    """A customer that is none of billplane's (ignored), its repeat, and a forged delivery."""
    event = {
        "id": "evt_metrics_1",
        "object": "event",
        "type": "customer.created",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": "cus_other", "object": "customer", "metadata": {}}},
    }
    payload = json.dumps(event).encode()
    signed = {"Stripe-Signature": signature_header(payload, WEBHOOK_SECRET)}
    for _ in range(2):
        assert http.post(WEBHOOK_PATH, content=payload, headers=signed).status_code == 200
    forged = {"Stripe-Signature": signature_header(payload, "whsec_" + "f" * 24)}
    assert http.post(WEBHOOK_PATH, content=payload, headers=forged).status_code == 400


# Deliveries waiting for an app that is down (`_app_webhooks_waiting`).
WAITING = 2


def _app_webhooks_waiting(http: httpx.Client) -> None:
    """An app endpoint that never answers, and two changes it is to hear of: both wait."""
    base = "/admin/api/projects/p"
    endpoint = {"url": closed_port_url(), "events": ["tenant.entitlements.updated"]}
    assert http.post(f"{base}/webhook-endpoints", json=endpoint, headers=ADMIN).status_code == 201
    assert http.post(f"{base}/tenants", json={"key": "globex"}, headers=ADMIN).status_code == 201
    for tenant in ("acme", "globex"):
        body = {"overrides": {"reports": {"limit": 50}}}
        changed = http.patch(f"{base}/tenants/{tenant}", json=body, headers=ADMIN)
        assert changed.status_code == 200


def scrape(base_url: str) -> tuple[str, list[Sample]]:
    """Which worker answered, and the samples it gave."""
    answer = httpx.get(f"{base_url}/metrics", timeout=30, headers={"Connection": "close"})
    assert answer.status_code == 200, answer.text
    families = text_string_to_metric_families(answer.text)
    return _worker(answer), [sample for family in families for sample in family.samples]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.e2e
def test_both_workers_answer_scrapes_with_the_same_sums_of_both(served: Served) -> None:
    assert len(served.workers) == 2
    seen: dict[str, float] = {}
    for _ in range(40):
        worker, samples = scrape(served.base_url)
        seen[worker] = total(
            samples, "billplane_http_request_duration_seconds_count", route="/v1/check"
        )
        if len(seen) == 2:
            break
    assert len(seen) == 2, "one worker answered every scrape"
    assert set(seen.values()) == {served.checks}


@pytest.mark.e2e
def test_every_check_is_timed_under_its_route_and_status_and_counted_by_reason(
    served: Served,
) -> None:
    _, samples = scrape(served.base_url)
    timed = {"route": "/v1/check", "method": "POST", "status": "200"}

    assert total(samples, "billplane_http_request_duration_seconds_count", **timed) == served.checks
    assert total(samples, "billplane_check_decisions_total", reason="ok") == served.checks
    assert total(samples, "billplane_check_decisions_total") == served.checks
    # Histogram buckets are cumulative: the last one holds every check.
    buckets = [
        s for s in samples if s.name.endswith("_bucket") and s.labels.items() >= timed.items()
    ]
    assert max(s.value for s in buckets) == served.checks


@pytest.mark.e2e
def test_usage_is_counted_as_recorded_duplicate_or_refused_with_its_reason(
    served: Served,
) -> None:
    _, samples = scrape(served.base_url)
    usage = "billplane_usage_events_total"

    assert total(samples, usage, outcome="recorded") == 5
    assert total(samples, usage, outcome="duplicate") == 2
    assert total(samples, usage, outcome="refused", reason="limit_reached") == 1
    assert total(samples, usage, outcome="refused", reason="unknown_feature") == 2


@pytest.mark.e2e
def test_stripe_webhooks_and_api_calls_are_counted(served: Served) -> None:
    _, samples = scrape(served.base_url)
    webhooks = "billplane_stripe_webhook_events_total"

    assert total(samples, webhooks, type="customer.created", outcome="ignored") == 1
    assert total(samples, webhooks, type="customer.created", outcome="duplicate") == 1
    assert total(samples, webhooks, type="unverified", outcome="invalid_signature") == 1
    price = {"operation": "prices.retrieve"}
    assert total(samples, "billplane_stripe_api_duration_seconds_count", **price) == 1
    assert total(samples, "billplane_stripe_api_errors_total", error="APIConnectionError") == 1


@pytest.mark.e2e
def test_the_app_webhook_backlog_is_read_at_each_scrape_and_never_summed_over_workers(
    served: Served,
) -> None:
    pending: dict[str, float] = {}
    oldest: dict[str, float] = {}
    for _ in range(40):
        worker, samples = scrape(served.base_url)
        pending[worker] = total(samples, "billplane_app_webhook_deliveries_pending")
        oldest[worker] = total(samples, "billplane_app_webhook_oldest_pending_seconds")
        if len(pending) == 2:
            break

    assert len(pending) == 2, "one worker answered every scrape"
    assert set(pending.values()) == {WAITING}  # each worker tells the database's count
    assert all(0 < age < 600 for age in oldest.values())


@pytest.mark.e2e
def test_the_database_pool_is_shown_in_use_and_open(served: Served) -> None:
    """At rest, no request holds a connection; but each worker's app webhook sender takes one
    for a moment every second to look for due deliveries, and a scrape may catch it there. So
    the pool must be seen empty within a few scrapes (a leaked connection never would be), and
    never hold more than the two senders' at once."""
    checked_out: list[float] = []
    for _ in range(20):
        _, samples = scrape(served.base_url)
        checked_out.append(total(samples, "billplane_db_pool_checked_out"))
        if checked_out[-1] == 0:
            break

    assert checked_out[-1] == 0, f"the pool was never seen at rest: {checked_out}"
    assert max(checked_out) <= 2, checked_out  # one sender per worker, at most
    assert total(samples, "billplane_db_pool_open") >= 1  # the admin API's connections


def test_a_scrape_forgets_the_live_gauges_of_dead_workers(tmp_path: Path) -> None:
    """What prometheus-client's `mark_process_dead` does when a worker dies, done for uvicorn's
    workers (which have no exit hook) at each scrape: counters of the dead stay in the sums."""
    with subprocess.Popen(["true"]) as ended:  # a process that has ended (and been reaped)
        ended.wait()
    dead = ended.pid
    names = [f"gauge_livesum_{dead}.db", f"counter_{dead}.db", f"gauge_livesum_{os.getpid()}.db"]
    for name in names:
        (tmp_path / name).write_bytes(b"")

    metrics.forget_dead_processes(str(tmp_path))

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])
