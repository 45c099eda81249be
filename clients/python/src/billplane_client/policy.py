"""What a check answers without asking billplane: the outage policy and cached entitlements.

When billplane cannot be reached, each feature is either *fail-open* (the app keeps working,
usage is unchecked for a while) or *fail-closed* (the paid action is refused). Which is right is
a product decision per feature, so it is configuration, not code.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from billplane_client.errors import UNREACHABLE
from billplane_client.types import Check, Entitlements, FeatureEntitlement

OnOutage = Literal["open", "closed"]


@dataclass(frozen=True)
class OutagePolicy:
    """Fail-open or fail-closed per feature when billplane cannot be reached.

    `OutagePolicy(default="closed", features={"listings.view": "open"})`
    """

    default: OnOutage = "closed"
    features: Mapping[str, OnOutage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for choice in (self.default, *self.features.values()):
            if choice not in ("open", "closed"):
                raise ValueError(f"outage policy must be 'open' or 'closed', not {choice!r}")

    def for_feature(self, feature: str) -> OnOutage:
        return self.features.get(feature, self.default)

    def answer(self, tenant: str, feature: str, override: OnOutage | None = None) -> Check:
        """The check's answer while billplane is away: allowed iff the feature fails open."""
        choice = override or self.for_feature(feature)
        return Check(allowed=choice == "open", reason=UNREACHABLE, tenant=tenant, feature=feature)


def check_from_entitlements(
    entitlements: Entitlements,
    feature: str,
    quantity: int,
    *,
    from_cache: bool,
    local: int = 0,
    offline: bool = False,
) -> Check:
    """The answer `/v1/check` would give, computed from a tenant's entitlements, with `local`
    more used: usage this client recorded that the entitlements do not count yet."""
    entry = entitlements.features.get(feature)
    used = None if entry is None or entry.used is None else entry.used + local
    allowed, reason = _decide(entry, used, quantity)
    subscription = entitlements.subscription
    remaining = entry.remaining if entry else None
    if entry is not None and entry.limit is not None and used is not None:
        remaining = max(entry.limit - used, 0)
    return Check(
        allowed=allowed,
        reason=reason,
        tenant=entitlements.tenant,
        feature=feature,
        plan=entitlements.plan,
        subscription_status=subscription.status if subscription else None,
        limit=entry.limit if entry else None,
        used=used,
        remaining=remaining,
        resets_at=entry.resets_at if entry else None,
        from_cache=from_cache,
        offline=offline,
    )


def _decide(entry: FeatureEntitlement | None, used: int | None, quantity: int) -> tuple[bool, str]:
    if entry is None:
        return False, "unknown_feature"
    # Entitlements are computed for a quantity of 1: a limit is applied again for `quantity`.
    if entry.reason in ("ok", "limit_reached") and entry.limit is not None:
        fits = (used or 0) + quantity <= entry.limit
        return fits, "ok" if fits else "limit_reached"
    return entry.allowed, entry.reason


def with_local_usage(answer: Check, local: int) -> Check:
    """A check billplane answered for `quantity + local`, its numbers showing `local` used."""
    if not local or answer.used is None:
        return answer
    used = answer.used + local
    remaining = answer.remaining if answer.limit is None else max(answer.limit - used, 0)
    return replace(answer, used=used, remaining=remaining)
