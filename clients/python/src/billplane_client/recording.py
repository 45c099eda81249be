"""`records_usage`: count usage only after the paid action succeeded.

    with records_usage(bp, "acme", "listings.publish", idempotency_key=f"listing-{id}"):
        publish(id)                      # raised? nothing is recorded

    @records_usage(bp, tenant=lambda listing, tenant: tenant, feature="listings.publish",
                   idempotency_key=lambda listing, tenant: f"listing-{listing.id}")
    def publish(listing, tenant): ...

Works with `Billplane` in `with` and on plain functions, and with either client in `async with`
and on coroutine functions. The action has already happened when usage is recorded: with
billplane away the client's outbox keeps the event (`.usage.queued`) and replays it later. A
client without an outbox (`outbox=False`) logs the outage rather than raising it (pass
`on_unreachable="raise"` or a callback to keep the event yourself); any other error (unknown
tenant, a revoked token) is raised.
"""

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal, TypeVar

from billplane_client.aio import AsyncBillplane
from billplane_client.calls import new_idempotency_key
from billplane_client.client import Billplane
from billplane_client.errors import BillplaneError, is_outage
from billplane_client.types import Usage, UsageEvent

log = logging.getLogger("billplane_client")

F = TypeVar("F", bound=Callable[..., Any])
FromCall = Callable[..., str]
OnUnreachable = Literal["raise", "log"] | Callable[[UsageEvent, BillplaneError], None]


@dataclass
class records_usage:  # lower case: used like contextlib's context managers
    """Record `quantity` of `feature` for `tenant` when the block (or function) did not raise.

    As a decorator, `tenant`, `quantity` and `idempotency_key` may be callables receiving the
    decorated function's arguments. After the block, `.usage` holds what was recorded.
    """

    client: Billplane | AsyncBillplane
    tenant: str | FromCall
    feature: str
    quantity: int | Callable[..., int] = 1
    idempotency_key: str | FromCall | None = None
    on_unreachable: OnUnreachable = "log"
    usage: Usage | None = field(default=None, init=False)

    # --- context manager --------------------------------------------------------------------

    def __enter__(self) -> "records_usage":
        if not isinstance(self.client, Billplane):
            raise TypeError("use `async with records_usage(...)` with AsyncBillplane")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self._record_sync()

    async def __aenter__(self) -> "records_usage":
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if kind is None:
            await self._record_async()

    # --- decorator ----------------------------------------------------------------------------

    def __call__(self, function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._for_call(args, kwargs):
                    return await function(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._for_call(args, kwargs):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def _for_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> "records_usage":
        """A fresh recorder for one call, its callables resolved from the call's arguments."""

        def resolve(value: Any) -> Any:
            return value(*args, **kwargs) if callable(value) else value

        return replace(
            self,
            tenant=resolve(self.tenant),
            quantity=resolve(self.quantity),
            idempotency_key=resolve(self.idempotency_key),
        )

    # --- recording ----------------------------------------------------------------------------

    def _event(self) -> UsageEvent:
        if callable(self.tenant) or callable(self.quantity) or callable(self.idempotency_key):
            raise TypeError("callables for tenant/quantity/idempotency_key need the decorator form")
        # The key is fixed before sending, so an `on_unreachable` callback can replay the very
        # same event later without risk of counting it twice.
        key = self.idempotency_key or new_idempotency_key()
        return UsageEvent(self.tenant, self.feature, self.quantity, key)

    def _record_sync(self) -> None:
        event = self._event()
        try:
            self.usage = self._send_sync(event)
        except BillplaneError as error:
            self._failed(event, error)

    async def _record_async(self) -> None:
        event = self._event()
        try:
            if isinstance(self.client, AsyncBillplane):
                self.usage = await self.client.record_usage(
                    event.tenant,
                    event.feature,
                    event.quantity,
                    idempotency_key=event.idempotency_key,
                )
            else:
                self.usage = await asyncio.to_thread(self._send_sync, event)
        except BillplaneError as error:
            self._failed(event, error)

    def _send_sync(self, event: UsageEvent) -> Usage:
        if not isinstance(self.client, Billplane):  # `__enter__` and `_record_async` sort them
            raise TypeError("a sync send needs Billplane, not AsyncBillplane")
        return self.client.record_usage(
            event.tenant, event.feature, event.quantity, idempotency_key=event.idempotency_key
        )

    def _failed(self, event: UsageEvent, error: BillplaneError) -> None:
        if not is_outage(error) or self.on_unreachable == "raise":
            raise error
        if self.on_unreachable == "log":
            log.error(
                "usage not recorded, billplane unreachable (%s): %s x%d for tenant %r, key %r",
                error,
                event.feature,
                event.quantity,
                event.tenant,
                event.idempotency_key,
            )
            return
        self.on_unreachable(event, error)
