"""A short-lived, per-client cache of tenants' entitlements, so a burst of checks costs one request.

Usage recorded through the same client invalidates its tenant's entry. A fetch that was already
under way when that happened must not put its older answer back: each tenant has a generation,
bumped by every invalidation, and an answer is stored only if the generation did not move.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from billplane_client.types import Entitlements

Clock = Callable[[], float]


@dataclass(frozen=True)
class _Entry:
    entitlements: Entitlements
    expires_at: float


class EntitlementsCache:
    """Entitlements by tenant, each fresh for `ttl` seconds of `clock` (monotonic by default)."""

    def __init__(self, ttl: float, clock: Clock = time.monotonic) -> None:
        if ttl < 0:
            raise ValueError("cache_ttl must be >= 0 (0 turns the cache off)")
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, tenant: str) -> Entitlements | None:
        with self._lock:
            entry = self._entries.get(tenant)
            if entry is None or self.clock() >= entry.expires_at:
                return None
            return entry.entitlements

    def generation(self, tenant: str) -> int:
        with self._lock:
            return self._generations.get(tenant, 0)

    def put(self, entitlements: Entitlements, generation: int | None = None) -> None:
        """Keep `entitlements`, unless its tenant was invalidated since `generation` was read."""
        tenant = entitlements.tenant
        with self._lock:
            if generation is not None and generation != self._generations.get(tenant, 0):
                return
            self._entries[tenant] = _Entry(entitlements, self.clock() + self.ttl)

    def invalidate(self, tenant: str) -> None:
        with self._lock:
            self._entries.pop(tenant, None)
            self._generations[tenant] = self._generations.get(tenant, 0) + 1

    def clear(self) -> None:
        with self._lock:
            for tenant in list(self._entries):
                self._generations[tenant] = self._generations.get(tenant, 0) + 1
            self._entries.clear()
