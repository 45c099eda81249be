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
from billplane_client.base import ClientBase
from billplane_client.calls import Call
from billplane_client.errors import BillplaneError, BillplaneUnreachable, is_outage
from billplane_client.policy import OnOutage, check_from_entitlements
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
    """An asyncio client; options as `Billplane`'s. Use one instance per event loop."""

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

    async def check(
        self, tenant: str, feature: str, quantity: int = 1, *, on_outage: OnOutage | None = None
    ) -> Check:
        """As `Billplane.check`: the outage policy answers when billplane cannot be reached."""
        try:
            if self.cache.enabled:
                entitlements, hit = await self._cached_entitlements(tenant)
                return check_from_entitlements(entitlements, feature, quantity, from_cache=hit)
            return Check.from_json(await self._send(calls.check(tenant, feature, quantity)))
        except BillplaneError as error:
            if not is_outage(error):
                raise
            return self._outage_answer(tenant, feature, error, on_outage)

    async def entitlements(self, tenant: str) -> Entitlements:
        generation = self.cache.generation(tenant)
        entitlements = Entitlements.from_json(await self._send(calls.entitlements(tenant)))
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
        event = UsageEvent(tenant, feature, quantity, idempotency_key, enforce, timestamp)
        return Usage.from_json(await self._send_usage(calls.usage(event), [tenant]))

    async def record_usage_batch(
        self, events: Iterable[UsageEvent | dict[str, Any]]
    ) -> list[BatchResult]:
        batch = [calls.as_event(e) for e in events]
        answer = await self._send_usage(calls.usage_batch(batch), [e.tenant for e in batch])
        return [BatchResult.from_json(item) for item in answer["data"]]

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

    async def aclose(self) -> None:
        await self._http.aclose()

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
                    return calls.decode(response)
                failure = response
            delay = next(delays, None)
            if delay is None:
                calls.give_up(failure, self.base_url)
            await asyncio.sleep(delay)

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
