"""What the sync and the async client share: configuration, the cache, the outage answer, and
the I/O-free half of the outbox's replay."""

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Self

import httpx

from billplane_client.cache import Clock, EntitlementsCache
from billplane_client.calls import RetryPolicy, new_idempotency_key
from billplane_client.errors import (
    UNREACHABLE,
    BillplaneError,
    BillplaneUnreachable,
    PaymentRequired,
)
from billplane_client.outbox import Outbox, QueuedEvent, default_path
from billplane_client.policy import OnOutage, OutagePolicy
from billplane_client.snapshots import Snapshots, Verifier, WallClock
from billplane_client.types import BatchResult, Check, Entitlements, Usage, UsageEvent
from billplane_client.version import __version__

log = logging.getLogger("billplane_client")

DEFAULT_TIMEOUT = 5.0
DEFAULT_CACHE_TTL = 5.0
DEFAULT_REPLAY_INTERVAL = 5.0
# The most a replay sends at once: one batch request, the API's own limit.
REPLAY_BATCH = 1000

# How long a billplane that cannot sign snapshots is not asked for one again.
UNSIGNED_FOR = 300.0

OutboxOption = bool | str | os.PathLike[str] | Outbox


class ClientBase:
    """Configuration of one client; see `Billplane` for what each option means."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 2,
        backoff: float = 0.2,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        outage: OutagePolicy | None = None,
        outbox: OutboxOption = True,
        replay_interval: float = DEFAULT_REPLAY_INTERVAL,
        project: str | None = None,
        clock: Clock = time.monotonic,
        wall_clock: WallClock = time.time,
    ) -> None:
        if not token:
            raise ValueError("a billplane project or tenant token is required")
        self.base_url = base_url.rstrip("/")
        self.retry = RetryPolicy(attempts=retries + 1, backoff=backoff)
        self.cache = EntitlementsCache(cache_ttl, clock)
        self.outage = outage or OutagePolicy()
        self.project = project
        # With the project's key, entitlements are fetched signed and kept to answer offline.
        self.snapshots = Snapshots(Verifier(project), wall_clock) if project else None
        self._unsigned_until = float("-inf")
        self.outbox = _outbox(outbox, self.base_url, project or token)
        self.replay_interval = replay_interval
        self.clock = clock
        # Until when billplane is taken to be away: usage goes straight to the outbox meanwhile.
        self._away_until = float("-inf")
        self._queued_quietly = False
        self._http_options: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": timeout,
            "headers": {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"billplane-client-python/{__version__}",
            },
        }

    @classmethod
    def from_env(cls, **options: Any) -> Self:
        """A client for `BILLPLANE_URL` with `BILLPLANE_TOKEN` (other options as keywords)."""
        try:
            return cls(os.environ["BILLPLANE_URL"], os.environ["BILLPLANE_TOKEN"], **options)
        except KeyError as missing:
            raise ValueError(f"set {missing.args[0]} to use Billplane.from_env()") from None

    def _outage_answer(
        self, tenant: str, feature: str, error: BillplaneError, override: OnOutage | None
    ) -> Check:
        answer = self.outage.answer(tenant, feature, override)
        log.warning(
            "billplane unreachable (%s): check of tenant %r, feature %r fails %s",
            error,
            tenant,
            feature,
            "open" if answer.allowed else "closed",
        )
        return answer

    def forget(self, tenant: str) -> None:
        """Drop the tenant's cached entitlements: its next check asks billplane. What a verified
        billplane webhook calls (`billplane_client.webhooks`), so the app sees a plan change at
        once rather than when the cache's TTL runs out."""
        self.cache.invalidate(tenant)

    def _forget(self, tenants: Iterable[str]) -> None:
        """Usage changed for these tenants: their cached entitlements are out of date."""
        for tenant in set(tenants):
            self.cache.invalidate(tenant)

    # --- billplane away, and the outbox --------------------------------------------------------

    # --- snapshots -----------------------------------------------------------------------------

    def _snapshots(self) -> Snapshots:
        if self.snapshots is None:
            raise RuntimeError("this client keeps no snapshots (no project=)")
        return self.snapshots

    def _signed(self) -> bool:
        """Whether to ask for a signed snapshot: with `project=`, unless billplane said lately
        that it cannot sign (no BILLPLANE_SECRET_KEY)."""
        return self.snapshots is not None and self.clock() >= self._unsigned_until

    def _unsigned_for_a_while(self, refused: BillplaneError) -> None:
        log.warning(
            "billplane cannot sign snapshots (%s): entitlements are fetched unsigned for %d s, "
            "and checks cannot be answered offline meanwhile",
            refused,
            UNSIGNED_FOR,
        )
        self._unsigned_until = self.clock() + UNSIGNED_FOR

    def _needs_jwks(self, token: str) -> bool:
        """Whether billplane's JWKS must be fetched (again) to verify this snapshot."""
        verifier = self._snapshots().verifier
        return not verifier.knows(verifier.kid_of(token)) and verifier.may_refresh(self.clock())

    def _entitlements_of(self, tenant: str, answer: Any, generation: int) -> Entitlements:
        """The entitlements an answer carries: a signed snapshot is verified (raising
        `SnapshotRefused`) and held for offline checks; plain JSON is taken as it is."""
        if not isinstance(answer, str):
            return Entitlements.from_json(answer)
        snapshots = self._snapshots()
        snapshot = snapshots.verifier.verify(answer, tenant, snapshots.wall_clock())
        snapshots.put(snapshot, generation)
        return snapshot.entitlements

    def _counted(self, usages: Iterable[Usage | QueuedEvent]) -> None:
        """billplane counted these: cached entitlements are out of date, and held snapshots
        do not show them."""
        usages = list(usages)
        self._forget(u.tenant for u in usages)
        if self.snapshots is not None:
            for usage in usages:
                self.snapshots.counted(usage.tenant, usage.feature, usage.quantity)

    def _outbox(self) -> Outbox:
        if self.outbox is None:
            raise RuntimeError("this client has no outbox (outbox=False)")
        return self.outbox

    def _answered(self) -> None:
        self._away_until = float("-inf")
        self._queued_quietly = False

    def _went_away(self) -> None:
        self._away_until = self.clock() + self.replay_interval

    def _away(self) -> bool:
        """Whether billplane failed to answer less than `replay_interval` seconds ago."""
        return self.clock() < self._away_until

    def _replay_due(self) -> bool:
        """Whether a call should first replay the outbox: events wait and billplane is not
        known to be away."""
        return self.outbox is not None and not self._away() and self.outbox.has_pending()

    def _local_usage(self, tenant: str, feature: str) -> int:
        """Usage of `feature` this client queued for `tenant` that billplane has not counted."""
        return 0 if self.outbox is None else self.outbox.queued_quantity(tenant, feature)

    def _queue(self, event: UsageEvent, error: BillplaneError | None) -> Usage:
        """Keep an event billplane could not be asked about. An enforced one is decided here
        first, as a check would be answered offline; a refusal raises and queues nothing."""
        outbox = self._outbox()
        if event.enforce:
            self._enforce_offline(event, error)
        queued = outbox.add(event)
        # One warning per outage; each event queued after the first is a debug line.
        level = logging.DEBUG if self._queued_quietly else logging.WARNING
        self._queued_quietly = True
        log.log(
            level,
            "billplane unreachable (%s): usage queued in the outbox %s, %s x%d for tenant %r, "
            "key %r; it is replayed once billplane answers",
            error or "away moments ago",
            outbox.path,
            event.feature,
            event.quantity,
            event.tenant,
            event.idempotency_key,
        )
        return Usage.queued_event(replace(event, timestamp=queued.occurred_at))

    def _queue_batch(
        self, events: list[UsageEvent], error: BillplaneError | None
    ) -> list[BatchResult]:
        results: list[BatchResult] = []
        for event in events:
            try:
                results.append(BatchResult(202, self._queue(event, error), None))
            except BillplaneError as refused:
                results.append(BatchResult(refused.status or 503, None, refused))
        return results

    def _enforce_offline(self, event: UsageEvent, error: BillplaneError | None) -> None:
        answer = self._offline_check(event.tenant, event.feature, event.quantity, None)
        if answer.allowed:
            return
        if answer.reason == UNREACHABLE:
            raise error or BillplaneUnreachable(
                f"billplane at {self.base_url} was unreachable moments ago; enforced usage of "
                f"{event.feature!r} fails closed"
            )
        raise PaymentRequired(
            answer.reason,
            f"Recording {event.quantity} more of '{event.feature}' would pass the limit "
            "(decided offline, billplane being unreachable).",
            status=402,
            details={
                "limit": answer.limit,
                "used": answer.used,
                "remaining": answer.remaining,
                "offline": True,
            },
        )

    def _offline_check(
        self,
        tenant: str,
        feature: str,
        quantity: int,
        override: OnOutage | None,
        error: BillplaneError | None = None,
    ) -> Check:
        """What a check answers when billplane cannot: the tenant's signed snapshot while it is
        valid, with the usage recorded since counted against its limits; else the feature's
        outage policy."""
        if self.snapshots is not None:
            local = self._local_usage(tenant, feature)
            answer = self.snapshots.answer(tenant, feature, quantity, local)
            if answer is not None:
                return answer
        if error is None:
            return self.outage.answer(tenant, feature, override)
        return self._outage_answer(tenant, feature, error, override)

    def _replayed(self, events: list[QueuedEvent], answer: Any) -> tuple[int, int, bool]:
        """Settle a replayed batch in the outbox: (delivered, kept aside, whether some event
        got a 5xx and waits on)."""
        outbox = self._outbox()
        delivered: list[QueuedEvent] = []
        refused: list[tuple[QueuedEvent, int, str, str]] = []
        for event, item in zip(events, answer["data"], strict=True):
            result = BatchResult.from_json(item)
            if result.error is None:
                delivered.append(event)
            elif result.status < 500:
                error = result.error
                refused.append((event, result.status, error.code, error.message))
                log.error(
                    "billplane refused queued usage (%s): %s x%d for tenant %r, key %r, kept aside",
                    error,
                    event.feature,
                    event.quantity,
                    event.tenant,
                    event.idempotency_key,
                )
        outbox.settle(delivered, refused)
        self._counted(delivered)
        return len(delivered), len(refused), len(delivered) + len(refused) < len(events)


def _outbox(option: OutboxOption, base_url: str, identity: str) -> Outbox | None:
    if isinstance(option, Outbox):
        return option
    if option is False:
        return None
    if option is True:
        return Outbox(default_path(base_url, identity))
    return Outbox(option)


def keyed(event: UsageEvent) -> UsageEvent:
    """The event with its idempotency key fixed, once, before anything is sent: a retry, or a
    replay from the outbox, sends this same key."""
    if event.idempotency_key:
        return event
    return replace(event, idempotency_key=new_idempotency_key())
