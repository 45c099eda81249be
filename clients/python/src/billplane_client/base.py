"""What the sync and the async client share: configuration, the cache, the outage answer."""

import logging
import os
import time
from collections.abc import Iterable
from typing import Any, Self

import httpx

from billplane_client.cache import Clock, EntitlementsCache
from billplane_client.calls import RetryPolicy
from billplane_client.errors import BillplaneError
from billplane_client.policy import OnOutage, OutagePolicy
from billplane_client.types import Check
from billplane_client.version import __version__

log = logging.getLogger("billplane_client")

DEFAULT_TIMEOUT = 5.0
DEFAULT_CACHE_TTL = 5.0


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
        clock: Clock = time.monotonic,
    ) -> None:
        if not token:
            raise ValueError("a billplane project or tenant token is required")
        self.base_url = base_url.rstrip("/")
        self.retry = RetryPolicy(attempts=retries + 1, backoff=backoff)
        self.cache = EntitlementsCache(cache_ttl, clock)
        self.outage = outage or OutagePolicy()
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

    def _forget(self, tenants: Iterable[str]) -> None:
        """Usage changed for these tenants: their cached entitlements are out of date."""
        for tenant in set(tenants):
            self.cache.invalidate(tenant)
