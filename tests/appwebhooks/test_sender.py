"""The sender delivers the outbox to a real HTTP receiver: signed as `standardwebhooks` verifies,
retried with backoff on the test clock, in each tenant's order, once per sender fleet, and an
endpoint that failed for three days is disabled with the operator told."""

import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from app_receiver import Receiver, receiving
from billplane.appwebhooks import outbox
from billplane.appwebhooks.sender import Sender
from billplane.db import Database, Transactions
from billplane.models import AppDelivery, AppDeliveryAttempt, AuditEntry, Project
from billplane.projects.service import get_project
from billplane.tenants.repository import get_tenant
from conftest import Clock, SavepointTransactions, Setup
from factories import SECRET_KEY, project, tenant, webhook_endpoint

ENDPOINTS = "/admin/api/projects/realtyos/webhook-endpoints"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving(slow_seconds=1.5) as listening:
        yield listening


@pytest.fixture
def sender(session: Session, clock: Clock) -> Iterator[Sender]:
    """A sender in the test's transaction, quick to give up on a slow app."""
    quick = Sender(
        SavepointTransactions(session),
        secret_key=SECRET_KEY,
        clock=clock,
        http=httpx.Client(timeout=1.0),
    )
    yield quick
    quick.close()


def emit(session: Session, tenant: str, count: int, now_of: Clock) -> None:
    """`count` events for the tenant, as a change would write them."""
    project = get_project(session, "realtyos")
    found = get_tenant(session, project.id, tenant)
    assert found is not None
    for n in range(count):
        outbox.emit_in(
            session,
            project=(project.id, project.key),
            tenant=(found.id, found.key),
            event_type=outbox.ENTITLEMENTS_UPDATED,
            data={"n": n},
            now=now_of(),
        )


def deliveries(session: Session) -> list[AppDelivery]:
    session.expire_all()
    return list(session.scalars(select(AppDelivery).order_by(AppDelivery.id)))


def test_a_delivery_is_signed_as_standard_webhooks_verify_it_and_its_attempt_kept(
    realtyos: Setup, session: Session, clock: Clock, receiver: Receiver, sender: Sender
) -> None:
    endpoint = realtyos.seed.webhook_endpoint("realtyos", receiver.url)
    emit(session, "acme", 1, clock)

    assert sender.run_once() == 1

    [received] = receiver.accepted()
    body = received.verified(endpoint.secret)
    assert body["type"] == "tenant.entitlements.updated"
    assert body["data"] == {"project": "realtyos", "tenant": "acme", "sequence": 1, "n": 0}
    assert received.headers["webhook-id"].startswith("msg_")
    [delivery] = deliveries(session)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    [attempt] = session.scalars(select(AppDeliveryAttempt)).all()
    assert (attempt.status_code, attempt.response_excerpt) == (200, "ok")
    assert attempt.duration_ms >= 0


def test_a_failed_delivery_is_retried_with_backoff_on_the_clock(
    realtyos: Setup, session: Session, clock: Clock, receiver: Receiver, sender: Sender
) -> None:
    realtyos.seed.webhook_endpoint("realtyos", receiver.url)
    emit(session, "acme", 1, clock)
    receiver.script = [500, 500]

    assert sender.run_once() == 1  # 500
    assert sender.run_once() == 0  # the next attempt is 5 s away
    clock.advance(seconds=5)
    assert sender.run_once() == 1  # 500 again: 15 s to wait now
    clock.advance(seconds=14)
    assert sender.run_once() == 0
    clock.advance(seconds=1)
    assert sender.run_once() == 1

    assert [r.status for r in receiver.received] == [500, 500, 200]
    [delivery] = deliveries(session)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    codes = session.scalars(select(AppDeliveryAttempt.status_code).order_by(AppDeliveryAttempt.id))
    assert list(codes) == [500, 500, 200]


def test_each_tenants_events_arrive_once_and_in_order_through_errors_a_timeout_and_an_outage(
    realtyos: Setup, session: Session, clock: Clock, receiver: Receiver, sender: Sender
) -> None:
    realtyos.seed.tenant("realtyos", "globex")
    realtyos.seed.webhook_endpoint("realtyos", receiver.url)
    emit(session, "acme", 4, clock)
    emit(session, "globex", 2, clock)
    receiver.script = [500, "slow"]
    rounds = 0

    while any(d.status == "pending" for d in deliveries(session)):
        rounds += 1
        if rounds == 3:
            receiver.close()  # the app goes down for a while
        if rounds == 5:
            receiver.open()
        sender.run_once()
        clock.advance(minutes=5)
        assert rounds < 20

    accepted = [r.json["data"] for r in receiver.accepted()]
    by_tenant = {
        tenant: [d["sequence"] for d in accepted if d["tenant"] == tenant]
        for tenant in ("acme", "globex")
    }
    assert by_tenant == {"acme": [1, 2, 3, 4], "globex": [1, 2]}
    ids = Counter(r.headers["webhook-id"] for r in receiver.accepted())
    assert set(ids.values()) == {1}
    assert {d.status for d in deliveries(session)} == {"delivered"}


def test_an_endpoint_failing_for_three_days_is_disabled_the_operator_told_and_enabled_again(
    realtyos: Setup, session: Session, clock: Clock, receiver: Receiver, sender: Sender
) -> None:
    endpoint = realtyos.seed.webhook_endpoint("realtyos", receiver.url).endpoint
    emit(session, "acme", 2, clock)
    receiver.close()
    started = clock.now

    while endpoint.status == "enabled":
        sender.run_once()
        clock.advance(hours=6)
        session.refresh(endpoint)
        assert clock.now - started < timedelta(days=4)

    assert endpoint.disabled_reason is not None
    assert "failed for 3 days" in endpoint.disabled_reason
    audit = session.scalars(select(AuditEntry).where(AuditEntry.actor == "app-webhooks")).all()
    assert [a.action for a in audit] == ["webhook_endpoint.disable"]
    assert {d.status for d in deliveries(session)} == {"pending"}  # kept for the app's return
    assert sender.run_once() == 0

    receiver.open()
    path = f"{ENDPOINTS}/{endpoint.public_id}"
    realtyos.admin.call("PATCH", path, json={"status": "enabled"})
    while sender.run_once():
        pass

    assert [r.json["data"]["sequence"] for r in receiver.accepted()] == [1, 2]


def test_a_delivery_replayed_is_sent_again_with_the_same_id_and_listed_with_its_body(
    realtyos: Setup, session: Session, clock: Clock, receiver: Receiver, sender: Sender
) -> None:
    endpoint = realtyos.seed.webhook_endpoint("realtyos", receiver.url).endpoint
    emit(session, "acme", 1, clock)
    sender.run_once()
    path = f"{ENDPOINTS}/{endpoint.public_id}/deliveries"
    [listed] = realtyos.admin.call("GET", path)["data"]
    assert (listed["status"], listed["tenant"], listed["sequence"]) == ("delivered", "acme", 1)
    assert listed["body"]["data"]["n"] == 0

    replayed = realtyos.admin.call("POST", f"{path}/{listed['id']}/replay")
    assert (replayed["status"], replayed["attempts"]) == ("pending", 0)
    sender.run_once()

    first, again = receiver.accepted()
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == listed["message_id"]
    detail = realtyos.admin.call("GET", f"{path}/{listed['id']}")
    assert detail["status"] == "delivered"
    assert [a["status_code"] for a in detail["attempt_log"]] == [200, 200]


def test_two_senders_at_once_send_each_delivery_once(database: Database, clock: Clock) -> None:
    """Committed rows and two senders on threads of their own, each with its own transactions:
    PostgreSQL's claims skip each other's rows, SQLite's claims take turns."""
    tx = Transactions(database)
    key = f"p{secrets.token_hex(4)}"
    with receiving() as receiver:
        with tx.write() as session:
            project(session, clock(), key)
            for name in ("acme", "globex", "initech"):
                tenant(session, clock(), key, name)
            webhook_endpoint(session, clock(), key, receiver.url, outbox.EVENT_TYPES)
            found = get_project(session, key)
            for name in ("acme", "globex", "initech"):
                row = get_tenant(session, found.id, name)
                assert row is not None
                for n in range(6):
                    outbox.emit_in(
                        session,
                        project=(found.id, key),
                        tenant=(row.id, name),
                        event_type=outbox.SUBSCRIPTION_UPDATED,
                        data={"n": n},
                        now=clock(),
                    )
        try:
            senders = [Sender(tx, secret_key=SECRET_KEY, clock=clock, batch=2) for _ in range(2)]
            threads = [threading.Thread(target=_drain, args=(s,)) for s in senders]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            for each in senders:
                each.close()
            ids = Counter(r.headers["webhook-id"] for r in receiver.accepted())
            assert len(ids) == 18
            assert set(ids.values()) == {1}
            sequences: dict[str, list[int]] = {}
            for received in receiver.accepted():
                data = received.json["data"]
                sequences.setdefault(data["tenant"], []).append(data["sequence"])
            assert sequences == {name: list(range(1, 7)) for name in ("acme", "globex", "initech")}
        finally:  # the committed rows go, audit entries included (they outlive a project)
            with tx.write() as session:
                made = session.scalars(select(Project).where(Project.key == key)).one()
                session.execute(delete(AuditEntry).where(AuditEntry.project_id == made.id))
                session.delete(made)


def _drain(sender: Sender) -> None:
    idle = 0
    while idle < 3:
        idle = 0 if sender.run_once() else idle + 1


def test_events_nothing_waits_for_are_removed_once_kept_30_days(
    realtyos: Setup, session: Session, clock: Clock, receiver: Receiver, sender: Sender
) -> None:
    realtyos.seed.webhook_endpoint("realtyos", receiver.url)
    emit(session, "acme", 1, clock)
    sender.run_once()  # delivered
    emit(session, "acme", 1, clock)
    receiver.script = [500]
    sender.run_once()  # still waiting for a retry

    clock.advance(days=29)
    assert sender.prune() == 0
    clock.advance(days=2)
    assert sender.prune() == 1

    assert [d.status for d in deliveries(session)] == ["pending"]


def test_a_claim_reads_a_burst_of_deliveries_once_whatever_postgresqls_statistics_say(
    realtyos: Setup, session: Session, clock: Clock, sender: Sender
) -> None:
    """A plan change reaches every tenant at once, faster than PostgreSQL's statistics follow:
    believing few deliveries pending, it used to scan every pending delivery once per due one
    to find the heads of the queues (0.3 s of its CPU per claim with 1,600 waiting)."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite plans without statistics")
    session.execute(text("ANALYZE app_deliveries"))  # as it stood: nothing pending
    realtyos.seed.webhook_endpoint("realtyos", "http://127.0.0.1:9/hooks")
    burst = 300
    for n in range(burst):
        realtyos.seed.tenant("realtyos", f"burst-{n:03d}")
        emit(session, f"burst-{n:03d}", 1, clock)
    before = _deliveries_read(session)
    claimed = sender.claim()
    assert len(claimed) == sender.batch
    # One pass reads each pending delivery a few times; the plan it chose read them all per due
    # one (91,201 rows here).
    assert _deliveries_read(session) - before < 10 * burst


def _deliveries_read(session: Session) -> int:
    """Rows of `app_deliveries` this transaction read so far, by scans and index fetches."""
    read = session.execute(
        text(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_xact_user_tables WHERE relname = 'app_deliveries'"
        )
    ).scalar_one()
    return int(read)
