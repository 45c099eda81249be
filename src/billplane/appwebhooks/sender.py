"""The sender: claims due deliveries, signs and POSTs them, and records every attempt.

Like a request handler it is an edge of its own and owns its transactions: one short one to
claim a few deliveries, none while it waits for the apps, one per attempt to record it. Any
number of senders may run, inside each `billplane serve` worker and as `billplane worker`
processes, on several machines: a claim gives a delivery to one of them (see
`repository.claim_due`). At least once: a sender that dies after a POST and before recording it
leaves its claim to run out, and another sends the delivery again.

A tenant's deliveries to one endpoint go out in sequence order: the next waits until the one
before it was delivered or given up. A failed attempt is retried with exponential backoff for
three days (`retries`); an endpoint that failed for all of three days is disabled, the operator
told (audit trail, log, dashboard), and what was pending for it waits for it to be enabled again.

A delivery whose endpoint's secret this sender cannot open (BILLPLANE_SECRET_KEY unset, or not
the key that sealed it) is not sent and costs no attempt: the sender says why (once in the log,
and as the delivery's last error), leaves it claimed, and claims nothing more of that endpoint
until the claim runs out; then it tries again. A wrong key costs a log line per endpoint every
claim period, never a loop.
"""

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import orjson
from sqlalchemy.orm import Session

from billplane import __version__, metrics
from billplane.appwebhooks import repository, retries, signing
from billplane.appwebhooks.repository import Claimed
from billplane.audit import service as audit
from billplane.clock import Clock, utc_now
from billplane.db import Transactions
from billplane.errors import EndpointSecretUnreadable, SecretKeyNotConfigured
from billplane.logs import billplane_logger, redact
from billplane.models import AppDeliveryAttempt, AppWebhookEndpoint
from billplane.outage import is_outage
from billplane.settings import Settings

ACTOR = "app-webhooks"
TIMEOUT = 15.0  # seconds an app has to answer a delivery (BILLPLANE_APP_WEBHOOKS_TIMEOUT)
# A claim lasts this many times the timeout: well past it, so a live sender never outlives its
# claim, while one that died leaves its deliveries to another soon after.
CLAIM_TIMEOUTS = 8
CLAIM_FOR = timedelta(seconds=TIMEOUT * CLAIM_TIMEOUTS)  # 2 minutes, with the default timeout
BATCH = 8  # deliveries a sender claims (and sends side by side) at once
EXCERPT = 1000  # characters of an app's answer kept with each attempt
DISABLE_AFTER = retries.RETRY_FOR
KEEP_FOR = timedelta(days=30)  # events kept once nothing of them waits (a setting)
PRUNE_EVERY = timedelta(hours=1)
PRUNE_BATCH = 1000  # events removed per transaction: a short one, even on SQLite

log = billplane_logger()


@dataclass(frozen=True)
class Outcome:
    """What came of one POST."""

    claimed: Claimed
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    excerpt: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender:
    """Delivers the outbox. `clock` decides what is due (tests move it); `wall` dates the
    signatures, which apps check against their own clock."""

    def __init__(
        self,
        tx: Transactions,
        *,
        secret_key: str | None,
        clock: Clock = utc_now,
        wall: Clock = utc_now,
        http: httpx.Client | None = None,
        batch: int = BATCH,
        keep_for: timedelta = KEEP_FOR,
        timeout: float = TIMEOUT,
        first_retry: timedelta = retries.FIRST_DELAY,
    ) -> None:
        self.tx = tx
        self.secret_key = secret_key
        self.keep_for = keep_for
        self.timeout = timeout
        self.claim_for = timedelta(seconds=timeout * CLAIM_TIMEOUTS)
        self.first_retry = first_retry
        # Endpoints whose secret this sender could not open, and until when it leaves them be.
        self._unopenable: dict[int, datetime] = {}
        self._pruned_at: datetime | None = None
        self.clock = clock
        self.wall = wall
        self.http = http or httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            headers={"user-agent": f"billplane/{__version__}"},
        )
        self.batch = batch
        self._pool = ThreadPoolExecutor(max_workers=batch, thread_name_prefix="app-webhook")

    @classmethod
    def from_settings(cls, tx: Transactions, settings: Settings) -> "Sender":
        """A sender as `billplane serve` and `billplane worker` run one."""
        return cls(
            tx,
            secret_key=settings.billplane_secret_key,
            keep_for=timedelta(days=settings.billplane_app_webhooks_keep_days),
            timeout=settings.billplane_app_webhooks_timeout,
            first_retry=timedelta(seconds=settings.billplane_app_webhooks_first_retry),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.http.close()

    def run_once(self) -> int:
        """Claim what is due and send it; how many deliveries were attempted."""
        claimed = self.claim()
        if not claimed:
            return 0
        signed = [(each, self._secrets_of(each)) for each in claimed]
        sendable = [(each, secrets_) for each, secrets_ in signed if secrets_ is not None]
        for outcome in self._pool.map(lambda pair: self.attempt(*pair), sendable):
            self.record(outcome)
        return len(sendable)

    def _secrets_of(self, claimed: Claimed) -> list[str] | None:
        """The endpoint's secrets, opened; None (the operator told) if they cannot be."""
        try:
            key = signing.sealing_key(self.secret_key)
            return [
                signing.unseal(sealed, key, claimed.endpoint_public_id)
                for sealed in claimed.sealed_secrets
            ]
        except (EndpointSecretUnreadable, SecretKeyNotConfigured) as exc:
            if claimed.endpoint_id not in self._unopenable:
                log.error("app webhooks: deliveries to %s held back: %s", claimed.url, exc.message)
            self._unopenable[claimed.endpoint_id] = self.clock() + self.claim_for
            with self.tx.write() as session:
                repository.hold_back(session, claimed.delivery_id, claimed.claim, exc.message)
            return None

    def _left_be(self) -> set[int]:
        """The endpoints not to claim for now: their secret did not open lately."""
        now = self.clock()
        for endpoint_id, until in list(self._unopenable.items()):
            if until <= now:
                del self._unopenable[endpoint_id]
        return set(self._unopenable)

    def claim(self) -> list[Claimed]:
        skip = self._left_be()
        with self.tx.read() as session:
            if not repository.any_due(session, self.clock(), skip):
                return []
        # SQLite: this write transaction begins with the write lock (BEGIN IMMEDIATE), so one
        # claimer at a time; PostgreSQL: concurrent claimers skip each other's rows.
        with self.tx.write() as session:
            now = self.clock()
            return repository.claim_due(
                session,
                now,
                limit=self.batch,
                claim=secrets.token_hex(16),
                until=now + self.claim_for,
                skip=skip,
            )

    def attempt(self, claimed: Claimed, secrets_: list[str]) -> Outcome:
        """POST one delivery, signed with `secrets_` (its endpoint's, opened); never raises."""
        attempted_at = self.clock()
        body = orjson.dumps(claimed.payload).decode()
        headers = signing.headers(
            secrets_, message_id=claimed.message_id, timestamp=self.wall(), body=body
        )
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        excerpt: str | None = None
        try:
            with self.http.stream(
                "POST",
                claimed.url,
                content=body.encode(),
                headers={**headers, "content-type": "application/json"},
            ) as response:
                status_code = response.status_code
                excerpt = _start_of(response)
            if not 200 <= status_code < 300:
                error = f"answered {status_code}"
        except httpx.TimeoutException:
            error = "no answer in time"
        except httpx.HTTPError as exc:
            error = redact(f"{type(exc).__name__}: {exc}")[:EXCERPT]
        duration_ms = round((time.perf_counter() - started) * 1000)
        return Outcome(claimed, attempted_at, duration_ms, status_code, error, excerpt)

    def record(self, outcome: Outcome) -> None:
        """Keep the attempt, and decide what comes next for its delivery and endpoint."""
        claimed = outcome.claimed
        metrics.app_webhook_delivery("delivered" if outcome.delivered else "failed")
        with self.tx.write() as session:
            now = self.clock()
            repository.add_attempt(
                session,
                AppDeliveryAttempt(
                    delivery_id=claimed.delivery_id,
                    attempted_at=outcome.attempted_at,
                    duration_ms=outcome.duration_ms,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    response_excerpt=outcome.excerpt,
                ),
            )
            delivery = repository.claimed(session, claimed.delivery_id, claimed.claim)
            if delivery is None:
                return
            delivery.claim = delivery.claimed_until = None
            delivery.attempts += 1
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            if delivery.give_up_at is None:  # the first attempt since written or replayed
                delivery.give_up_at = outcome.attempted_at + retries.RETRY_FOR
            if outcome.delivered:
                delivery.status = "delivered"
                delivery.delivered_at = now
                repository.endpoint_succeeded(session, claimed.endpoint_id)
                return
            since = repository.endpoint_failing_since(
                session, claimed.endpoint_id, outcome.attempted_at
            )
            if since is not None and now - since >= DISABLE_AFTER:
                # Kept pending: it goes out again once the operator enables the endpoint.
                delivery.next_attempt_at = now
                self._disable(session, claimed, since, now)
                return
            later = retries.next_attempt(
                delivery.attempts, outcome.attempted_at, delivery.give_up_at, self.first_retry
            )
            if later is None:
                delivery.status = "failed"
            else:
                delivery.next_attempt_at = later

    def _disable(self, session: Session, claimed: Claimed, since: datetime, now: datetime) -> None:
        reason = (
            f"Every delivery failed for {DISABLE_AFTER.days} days (since {since:%Y-%m-%d %H:%M} "
            "UTC); enable the endpoint again once the app answers, and what is pending goes out."
        )
        if not repository.disable_endpoint(session, claimed.endpoint_id, reason, now):
            return
        endpoint = session.get(AppWebhookEndpoint, claimed.endpoint_id)
        log.warning("app webhook endpoint %s disabled: %s", claimed.url, reason)
        audit.record(
            session,
            actor=ACTOR,
            action="webhook_endpoint.disable",
            target=f"webhook_endpoint:{endpoint.public_id if endpoint else claimed.endpoint_id}",
            project_id=endpoint.project_id if endpoint else None,
            after={"status": "disabled", "reason": reason},
            now=now,
        )

    def prune(self) -> int:
        """Remove the events older than `keep_for` that nothing waits for; how many."""
        removed = 0
        while True:
            with self.tx.write() as session:
                batch = repository.prune(session, self.clock() - self.keep_for, limit=PRUNE_BATCH)
            removed += batch
            if batch < PRUNE_BATCH:
                return removed

    def _prune_now_and_then(self) -> None:
        now = self.clock()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            self.prune()

    def run(self, stop: threading.Event, *, poll: float = 1.0) -> None:
        """Send until `stop` is set, looking for work every `poll` seconds when idle, and
        removing old events once an hour."""
        while not stop.is_set():
            try:
                self._prune_now_and_then()
                busy = self.run_once()
            except Exception as exc:
                if is_outage(exc):
                    log.warning("app webhooks: the database is out of reach; trying again")
                else:
                    log.error("app webhooks: sending failed", exc_info=exc)
                busy = 0
            if not busy:
                stop.wait(poll)


def _start_of(response: httpx.Response) -> str:
    """The start of an app's answer, read no further (an answer may be large, or endless)."""
    read = b""
    for chunk in response.iter_bytes():
        read += chunk
        if len(read) >= EXCERPT:
            break
    return read[:EXCERPT].decode(response.encoding or "utf-8", errors="replace")


def start_in_background(
    tx: Transactions, settings: Settings, *, poll: float = 1.0
) -> Callable[[], None]:
    """Run a sender on a thread of this process; returns what stops it (and waits for it)."""
    stop = threading.Event()
    sender = Sender.from_settings(tx, settings)
    thread = threading.Thread(
        target=sender.run, args=(stop,), kwargs={"poll": poll}, name="app-webhooks", daemon=True
    )
    thread.start()

    def stop_sending() -> None:
        stop.set()
        thread.join(timeout=sender.timeout + 5)
        sender.close()

    return stop_sending
