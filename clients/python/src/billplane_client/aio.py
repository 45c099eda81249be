"""`AsyncBillplane`: the asyncio client, the same calls as `Billplane`, awaited.

async with AsyncBillplane(url, token) as bp:
    if (await bp.check("acme", "exports")).allowed:
        ...
"""

import asyncio
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


class AsyncBillplane(ClientBase):
    """An asyncio client; options as `Billplane`'s. Use one instance per event loop. The outbox's
    SQLite file is read and written in a worker thread, never on the event loop."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, token, **options)
        self._http = httpx.AsyncClient(transport=transport, **self._http_options)
        self._fetch_locks: dict[str, asyncio.Lock] = {}
        self._replaying = asyncio.Lock()

    async def check(
        self, tenant: str, feature: str, quantity: int = 1, *, on_outage: OnOutage | None = None
    ) -> Check:
        """As `Billplane.check`: the outage policy answers when billplane cannot be reached."""
        await self._replay_soon()
        try:
            if self.cache.enabled or self.snapshots is not None:
                entitlements, hit = await self._cached_entitlements(tenant)
                local = await self._local(tenant, feature)
                return check_from_entitlements(
                    entitlements, feature, quantity, from_cache=hit, local=local
                )
            local = await self._local(tenant, feature)
            call = calls.check(tenant, feature, quantity + local)
            return with_local_usage(Check.from_json(await self._send(call)), local)
        except SnapshotRefused as refused:
            log.warning("billplane: %s; the check is answered as if billplane were away", refused)
            return await asyncio.to_thread(
                self._offline_check, tenant, feature, quantity, on_outage, refused
            )
        except BillplaneError as error:
            if not is_outage(error):
                raise
            return await asyncio.to_thread(
                self._offline_check, tenant, feature, quantity, on_outage, error
            )

    async def entitlements(self, tenant: str) -> Entitlements:
        await self._replay_soon()
        generation = self.cache.generation(tenant)
        held = self.snapshots.generation(tenant) if self.snapshots else 0
        signed = self._signed()
        try:
            answer = await self._send(calls.entitlements(tenant, signed=signed))
        except ServiceUnavailable as refused:
            if not signed or refused.code not in calls.SIGNING_UNAVAILABLE:
                raise
            self._unsigned_for_a_while(refused)
            answer = await self._send(calls.entitlements(tenant))
        if isinstance(answer, str) and self._needs_jwks(answer):
            self._snapshots().verifier.load(await self._send(calls.jwks()), self.clock())
        entitlements = self._entitlements_of(tenant, answer, held)
        if self.cache.enabled:
            self.cache.put(entitlements, generation)
        return entitlements

    async def record_usage(
        self,
        tenant: str,
        feature: str,
        quantity: int = 1,
        *,
        idempotency_key: str | None = None,
        enforce: bool = False,
        timestamp: datetime | None = None,
    ) -> Usage:
        event = keyed(UsageEvent(tenant, feature, quantity, idempotency_key, enforce, timestamp))
        await self._replay_soon()
        if self.outbox is not None and self._away():
            return await asyncio.to_thread(self._queue, event, None)
        try:
            usage = Usage.from_json(await self._send_usage(calls.usage(event), [tenant]))
        except BillplaneError as error:
            if self.outbox is None or not is_outage(error):
                raise
            return await asyncio.to_thread(self._queue, event, error)
        self._counted([usage] if usage.recorded and not usage.duplicate else [])
        return usage

    async def record_usage_batch(
        self, events: Iterable[UsageEvent | dict[str, Any]]
    ) -> list[BatchResult]:
        batch = [keyed(calls.as_event(e)) for e in events]
        await self._replay_soon()
        if self.outbox is not None and self._away():
            return await asyncio.to_thread(self._queue_batch, batch, None)
        try:
            answer = await self._send_usage(calls.usage_batch(batch), [e.tenant for e in batch])
        except BillplaneError as error:
            if self.outbox is None or not is_outage(error):
                raise
            return await asyncio.to_thread(self._queue_batch, batch, error)
        results = [BatchResult.from_json(item) for item in answer["data"]]
        self._counted(r.usage for r in results if r.usage and not r.usage.duplicate)
        return results

    async def flush(self) -> Flushed:
        """As `Billplane.flush`: every event of the outbox replayed now, oldest first."""
        if self.outbox is None:
            return Flushed(0, 0, 0)
        async with self._replaying:
            return await self._replay(everything=True)

    async def checkout(
        self, tenant: str, plan: str, *, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        call = calls.checkout(tenant, plan, success_url, cancel_url)
        return CheckoutSession.from_json(await self._send(call))

    async def confirm_checkout(self, session_id: str) -> Entitlements:
        entitlements = Entitlements.from_json(await self._send(calls.confirm_checkout(session_id)))
        self._forget([entitlements.tenant])
        if self.cache.enabled:
            self.cache.put(entitlements)
        return entitlements

    async def portal(self, tenant: str, *, return_url: str) -> PortalSession:
        return PortalSession.from_json(await self._send(calls.portal(tenant, return_url)))

    async def balances(self, tenant: str) -> Balances:
        return Balances.from_json(await self._send(calls.balances(tenant)))

    async def topup(self, tenant: str, price: str, *, success_url: str, cancel_url: str) -> Topup:
        call = calls.topup(tenant, price, success_url, cancel_url)
        return Topup.from_json(await self._send(call))

    async def reserve(
        self,
        tenant: str,
        feature: str,
        quantity: int = 1,
        *,
        idempotency_key: str | None = None,
        expires_in: int | None = None,
    ) -> Reservation:
        call = calls.reserve(tenant, feature, quantity, idempotency_key, expires_in)
        return await self._held(call)

    async def finalize(self, reservation: str, quantity: int) -> Reservation:
        return await self._held(calls.finalize(reservation, quantity))

    async def release(self, reservation: str) -> Reservation:
        return await self._held(calls.release(reservation))

    async def _held(self, call: Call) -> Reservation:
        reservation = Reservation.from_json(await self._send(call))
        self._forget([reservation.tenant])
        return reservation

    async def aclose(self) -> None:
        await self._http.aclose()
        if self.outbox is not None:
            await asyncio.to_thread(self.outbox.close)  # (reopened if used again)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def _send(self, call: Call) -> Any:
        delays = self.retry.delays()
        while True:
            failure: httpx.Response | Exception
            try:
                response = await self._http.request(
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
            await asyncio.sleep(delay)

    async def _local(self, tenant: str, feature: str) -> int:
        if self.outbox is None or not await self._has_pending():
            return 0
        return await asyncio.to_thread(self._local_usage, tenant, feature)

    async def _has_pending(self) -> bool:
        # The file is read once; after that the count is kept in memory (no thread hop).
        outbox = self.outbox
        if outbox is None:
            return False
        if not outbox.counted:
            await asyncio.to_thread(outbox.count)
        return outbox.has_pending()

    async def _replay_soon(self) -> None:
        """As `Billplane._replay_soon`: one batch before a call, never raising."""
        if self._replaying.locked() or not await self._has_pending() or not self._replay_due():
            return
        async with self._replaying:
            try:
                await self._replay(everything=False)
            except BillplaneError as error:
                log.warning("billplane: replaying queued usage stopped (%s)", error)

    async def _replay(self, *, everything: bool) -> Flushed:
        outbox = self._outbox()
        delivered = kept_aside = 0
        while events := await asyncio.to_thread(outbox.oldest, REPLAY_BATCH):
            batch = [event.as_usage_event() for event in events]
            answer = await self._send(calls.usage_batch(batch))
            done, refused, stuck = await asyncio.to_thread(self._replayed, events, answer)
            delivered, kept_aside = delivered + done, kept_aside + refused
            if not everything or stuck:
                break
        return Flushed(delivered, kept_aside, await asyncio.to_thread(outbox.count))

    async def _send_usage(self, call: Call, tenants: list[str]) -> Any:
        answered = True
        try:
            return await self._send(call)
        except BillplaneUnreachable:
            answered = False
            raise
        finally:
            if answered:
                self._forget(tenants)

    async def _cached_entitlements(self, tenant: str) -> tuple[Entitlements, bool]:
        cached = self.cache.get(tenant)
        if cached is not None:
            return cached, True
        # A burst of checks for one tenant waits for a single fetch.
        async with self._fetch_locks.setdefault(tenant, asyncio.Lock()):
            cached = self.cache.get(tenant)
            if cached is not None:
                return cached, True
            return await self.entitlements(tenant), False
