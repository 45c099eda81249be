"""`Billplane`: the synchronous client of billplane's client API (/docs on a running server).

bp = Billplane("https://billing.example.com", token)
if bp.check("acme", "listings.publish").allowed:
    publish()
    bp.record_usage("acme", "listings.publish", idempotency_key=f"listing-{id}")
"""

import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Self

import httpx

from billplane_client import calls
from billplane_client.base import REPLAY_BATCH, ClientBase, keyed, log
from billplane_client.calls import Call
from billplane_client.credits import Balances, Reservation, Topup
from billplane_client.errors import (
    BillplaneError,
    BillplaneUnreachable,
    ServiceUnavailable,
    is_outage,
)
from billplane_client.outbox import Flushed
from billplane_client.policy import OnOutage, check_from_entitlements, with_local_usage
from billplane_client.snapshots import SnapshotRefused
from billplane_client.types import (
    BatchResult,
    Check,
    CheckoutSession,
    Entitlements,
    PortalSession,
    Usage,
    UsageEvent,
)


class Billplane(ClientBase):
    """A thread-safe client holding one token; reuse one instance (it keeps connections).

    Options: `timeout` (seconds per attempt), `retries` (extra attempts on network errors and
    5xx, with exponential backoff from `backoff` seconds), `cache_ttl` (seconds a tenant's
    entitlements serve `check()`; 0 asks `/v1/check` every time), `outage` (an `OutagePolicy`:
    what `check()` answers when billplane cannot be reached), `outbox` (where usage billplane
    could not be told waits to be replayed: True for a SQLite file in the user's cache, a path,
    an `Outbox`, or False to raise `BillplaneUnreachable` instead), `replay_interval` (seconds
    usage goes straight to the outbox after billplane failed to answer), `project` (the
    project's key), `transport` (an httpx transport).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, token, **options)
        self._http = httpx.Client(transport=transport, **self._http_options)
        self._locks_guard = threading.Lock()
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._replaying = threading.Lock()

    # --- questions ----------------------------------------------------------------------------

    def check(
        self, tenant: str, feature: str, quantity: int = 1, *, on_outage: OnOutage | None = None
    ) -> Check:
        """May `tenant` use `quantity` more of `feature`? Never raises for an outage: the outage
        policy answers then (`reason == "billplane_unreachable"`); `on_outage` overrides it.
        Usage waiting in the outbox counts against the limit."""
        self._replay_soon()
        try:
            if self.cache.enabled or self.snapshots is not None:
                entitlements, hit = self._cached_entitlements(tenant)
                local = self._local_usage(tenant, feature)
                return check_from_entitlements(
                    entitlements, feature, quantity, from_cache=hit, local=local
                )
            local = self._local_usage(tenant, feature)
            answer = Check.from_json(self._send(calls.check(tenant, feature, quantity + local)))
            return with_local_usage(answer, local)
        except SnapshotRefused as refused:
            log.warning("billplane: %s; the check is answered as if billplane were away", refused)
            return self._offline_check(tenant, feature, quantity, on_outage, refused)
        except BillplaneError as error:
            if not is_outage(error):
                raise
            return self._offline_check(tenant, feature, quantity, on_outage, error)

    def entitlements(self, tenant: str) -> Entitlements:
        """Every feature of the project for `tenant`, fetched now (and kept in the cache). With
        `project=`, billplane's signed snapshot of them, verified (`SnapshotRefused` if it does
        not hold) and kept to answer checks while billplane is away."""
        self._replay_soon()
        generation = self.cache.generation(tenant)
        held = self.snapshots.generation(tenant) if self.snapshots else 0
        signed = self._signed()
        try:
            answer = self._send(calls.entitlements(tenant, signed=signed))
        except ServiceUnavailable as refused:
            if not signed or refused.code not in calls.SIGNING_UNAVAILABLE:
                raise
            self._unsigned_for_a_while(refused)
            answer = self._send(calls.entitlements(tenant))
        if isinstance(answer, str) and self._needs_jwks(answer):
            self._snapshots().verifier.load(self._send(calls.jwks()), self.clock())
        entitlements = self._entitlements_of(tenant, answer, held)
        if self.cache.enabled:
            self.cache.put(entitlements, generation)
        return entitlements

    # --- usage ----------------------------------------------------------------------------------

    def record_usage(
        self,
        tenant: str,
        feature: str,
        quantity: int = 1,
        *,
        idempotency_key: str | None = None,
        enforce: bool = False,
        timestamp: datetime | None = None,
    ) -> Usage:
        """Count usage exactly once per `idempotency_key` (generated if not given, and the same
        on every retry). With `enforce=True` raises `PaymentRequired` instead of passing a limit.

        When billplane cannot be reached the event goes to the outbox (`Usage.queued`), to be
        replayed with the same key; an enforced one only if the offline check allows it."""
        event = keyed(UsageEvent(tenant, feature, quantity, idempotency_key, enforce, timestamp))
        self._replay_soon()
        if self.outbox is not None and self._away():
            return self._queue(event, None)
        try:
            usage = Usage.from_json(self._send_usage(calls.usage(event), [tenant]))
        except BillplaneError as error:
            if self.outbox is None or not is_outage(error):
                raise
            return self._queue(event, error)
        self._counted([usage] if usage.recorded and not usage.duplicate else [])
        return usage

    def record_usage_batch(
        self, events: Iterable[UsageEvent | dict[str, Any]]
    ) -> list[BatchResult]:
        """Up to 1,000 events in one request; one result per event, in order (status 202 for
        an event kept in the outbox while billplane cannot be reached)."""
        batch = [keyed(calls.as_event(e)) for e in events]
        self._replay_soon()
        if self.outbox is not None and self._away():
            return self._queue_batch(batch, None)
        try:
            answer = self._send_usage(calls.usage_batch(batch), [e.tenant for e in batch])
        except BillplaneError as error:
            if self.outbox is None or not is_outage(error):
                raise
            return self._queue_batch(batch, error)
        results = [BatchResult.from_json(item) for item in answer["data"]]
        self._counted(r.usage for r in results if r.usage and not r.usage.duplicate)
        return results

    def flush(self) -> Flushed:
        """Replay every event of the outbox now, oldest first, in batches; raises what stopped
        it (`BillplaneUnreachable`, say) once what was answered before is settled."""
        if self.outbox is None:
            return Flushed(0, 0, 0)
        with self._replaying:
            return self._replay(everything=True)

    # --- upgrades ------------------------------------------------------------------------------

    def checkout(
        self, tenant: str, plan: str, *, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        """A Stripe Checkout session for `plan`; send the person to its `url`."""
        return CheckoutSession.from_json(
            self._send(calls.checkout(tenant, plan, success_url, cancel_url))
        )

    def confirm_checkout(self, session_id: str) -> Entitlements:
        """Apply a completed checkout now, not waiting for the webhook; the new entitlements."""
        entitlements = Entitlements.from_json(self._send(calls.confirm_checkout(session_id)))
        self._forget([entitlements.tenant])
        if self.cache.enabled:
            self.cache.put(entitlements)
        return entitlements

    def portal(self, tenant: str, *, return_url: str) -> PortalSession:
        """A Stripe Customer Portal session for plan changes and cancellation."""
        return PortalSession.from_json(self._send(calls.portal(tenant, return_url)))

    # --- credits -------------------------------------------------------------------------------

    def balances(self, tenant: str) -> Balances:
        """The tenant's credit pools: balance, buckets (in deduction order) and ledger."""
        return Balances.from_json(self._send(calls.balances(tenant)))

    def topup(self, tenant: str, price: str, *, success_url: str, cancel_url: str) -> Topup:
        """A Stripe Checkout session for a pack of credits (a one-time `price` a pool sells);
        send the person to its `url`, then `confirm_checkout(id)` lands the credits at once."""
        return Topup.from_json(self._send(calls.topup(tenant, price, success_url, cancel_url)))

    def reserve(
        self,
        tenant: str,
        feature: str,
        quantity: int = 1,
        *,
        idempotency_key: str | None = None,
        expires_in: int | None = None,
    ) -> Reservation:
        """Hold the credits `quantity` of `feature` costs for a long action, `expires_in`
        seconds at most (the server's default if not given). Raises `PaymentRequired`
        (`insufficient_credits`) if they are not there; a repeat of the key holds nothing more."""
        call = calls.reserve(tenant, feature, quantity, idempotency_key, expires_in)
        return self._held(call)

    def finalize(self, reservation: str, quantity: int) -> Reservation:
        """Charge what the action used (`quantity` of the feature, more or less than held; more
        must fit the balance, else `PaymentRequired` and the hold stays). Idempotent."""
        return self._held(calls.finalize(reservation, quantity))

    def release(self, reservation: str) -> Reservation:
        """Give everything held back to the buckets it came from. Idempotent."""
        return self._held(calls.release(reservation))

    def _held(self, call: Call) -> Reservation:
        # Credits moved: cached entitlements of the tenant no longer tell the balance.
        reservation = Reservation.from_json(self._send(call))
        self._forget([reservation.tenant])
        return reservation

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        if self.outbox is not None:
            self.outbox.close()  # (reopened if used again)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- sending -------------------------------------------------------------------------------

    def _send(self, call: Call) -> Any:
        delays = self.retry.delays()
        while True:
            failure: httpx.Response | Exception
            try:
                response = self._http.request(
                    call.method, call.path, json=call.json, headers=call.headers
                )
            except httpx.TransportError as error:
                failure = error
            else:
                if not calls.is_retryable(response):
                    self._answered()
                    return calls.decode(response)
                failure = response
            delay = next(delays, None)
            if delay is None:
                self._went_away()
                calls.give_up(failure, self.base_url)
            time.sleep(delay)

    # --- the outbox's replay -------------------------------------------------------------------

    def _replay_soon(self) -> None:
        """Before a call: one batch of the outbox, if events wait and billplane is not known to
        be away (and no other thread is replaying). Never raises: the call goes on."""
        if not self._replay_due() or not self._replaying.acquire(blocking=False):
            return
        try:
            self._replay(everything=False)
        except BillplaneError as error:
            log.warning("billplane: replaying queued usage stopped (%s)", error)
        finally:
            self._replaying.release()

    def _replay(self, *, everything: bool) -> Flushed:
        outbox = self._outbox()
        delivered = kept_aside = 0
        while events := outbox.oldest(REPLAY_BATCH):
            batch = [event.as_usage_event() for event in events]
            answer = self._send(calls.usage_batch(batch))
            done, refused, stuck = self._replayed(events, answer)
            delivered, kept_aside = delivered + done, kept_aside + refused
            if not everything or stuck:
                break
        return Flushed(delivered, kept_aside, outbox.count())

    def _send_usage(self, call: Call, tenants: list[str]) -> Any:
        # Once billplane has answered, usage may have changed; with no answer, nothing did.
        answered = True
        try:
            return self._send(call)
        except BillplaneUnreachable:
            answered = False
            raise
        finally:
            if answered:
                self._forget(tenants)

    def _cached_entitlements(self, tenant: str) -> tuple[Entitlements, bool]:
        """The tenant's entitlements and whether they came from the cache. Concurrent misses for
        one tenant wait for a single fetch rather than each making their own."""
        cached = self.cache.get(tenant)
        if cached is not None:
            return cached, True
        with self._fetch_lock(tenant):
            cached = self.cache.get(tenant)
            if cached is not None:
                return cached, True
            return self.entitlements(tenant), False

    def _fetch_lock(self, tenant: str) -> threading.Lock:
        with self._locks_guard:
            return self._fetch_locks.setdefault(tenant, threading.Lock())
