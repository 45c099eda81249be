"""Typed answers of billplane's client API, parsed from its JSON (see /docs on a running server).

Each result keeps the JSON it came from in `raw`, so a field added to the API later is reachable
before this package learns its name.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billplane_client.errors import BillplaneError, error_from_envelope

Json = Mapping[str, Any]


def parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Check:
    """May `tenant` use `quantity` more of `feature` now? (`POST /v1/check`)

    `reason` is one of billplane's (`ok`, `no_plan`, `not_in_plan`, `limit_reached`,
    `subscription_inactive`, `unknown_feature`, `tenant_archived`, `feature_archived`) or
    `billplane_unreachable` when the outage policy answered because billplane could not be
    reached.
    """

    allowed: bool
    reason: str
    tenant: str
    feature: str
    plan: str | None = None
    subscription_status: str | None = None
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    resets_at: datetime | None = None
    # With `unknown_feature` from the server (not the cache): the key, and the closest one.
    message: str | None = None
    from_cache: bool = False
    # Answered from billplane's signed snapshot while billplane could not be reached.
    offline: bool = False
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> "Check":
        return cls(
            allowed=bool(data["allowed"]),
            reason=str(data["reason"]),
            tenant=str(data["tenant"]),
            feature=str(data["feature"]),
            plan=data.get("plan"),
            subscription_status=data.get("subscription_status"),
            limit=_int(data.get("limit")),
            used=_int(data.get("used")),
            remaining=_int(data.get("remaining")),
            resets_at=parse_time(data.get("resets_at")),
            message=data.get("message"),
            raw=data,
        )


@dataclass(frozen=True)
class UsageNow:
    """The counter as it stands now; a repeat's answer carries it (see `Usage.current`)."""

    used: int
    limit: int | None
    remaining: int | None
    resets_at: datetime | None

    @classmethod
    def from_json(cls, data: Json) -> "UsageNow":
        return cls(
            used=int(data["used"]),
            limit=_int(data.get("limit")),
            remaining=_int(data.get("remaining")),
            resets_at=parse_time(data.get("resets_at")),
        )


@dataclass(frozen=True)
class Usage:
    """What `POST /v1/usage` recorded; `duplicate` is True for a repeat of the same key. A
    repeat's numbers are the first answer's; `current` holds them as they stand now.

    `queued` is True when billplane could not be reached and the event went to the outbox, to be
    replayed with the same key: then `recorded` is False and the numbers are None (billplane has
    not counted it yet; `check()` counts it against the limit meanwhile)."""

    tenant: str
    feature: str
    idempotency_key: str
    quantity: int
    recorded: bool
    duplicate: bool
    used: int | None
    limit: int | None
    remaining: int | None
    resets_at: datetime | None
    current: UsageNow | None = None
    queued: bool = False
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def queued_event(cls, event: "UsageEvent") -> "Usage":
        """The answer for an event kept in the outbox (its idempotency key fixed)."""
        return cls(
            tenant=event.tenant,
            feature=event.feature,
            idempotency_key=str(event.idempotency_key),
            quantity=event.quantity,
            recorded=False,
            duplicate=False,
            used=None,
            limit=None,
            remaining=None,
            resets_at=None,
            queued=True,
        )

    @classmethod
    def from_json(cls, data: Json) -> "Usage":
        return cls(
            tenant=str(data["tenant"]),
            feature=str(data["feature"]),
            idempotency_key=str(data["idempotency_key"]),
            quantity=int(data["quantity"]),
            recorded=bool(data["recorded"]),
            duplicate=bool(data["duplicate"]),
            used=int(data["used"]),
            limit=_int(data.get("limit")),
            remaining=_int(data.get("remaining")),
            resets_at=parse_time(data.get("resets_at")),
            current=UsageNow.from_json(data["current"]) if data.get("current") else None,
            raw=data,
        )


@dataclass(frozen=True)
class UsageEvent:
    """One event of a batch; a missing `idempotency_key` is generated once, before sending."""

    tenant: str
    feature: str
    quantity: int = 1
    idempotency_key: str | None = None
    enforce: bool = False
    timestamp: datetime | None = None


@dataclass(frozen=True)
class BatchResult:
    """One event's outcome in `POST /v1/usage/batch`: `usage` on success, else `error`.

    With billplane unreachable, an event kept in the outbox has status 202 and a `queued` usage.
    """

    status: int
    usage: Usage | None
    error: BillplaneError | None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def from_json(cls, data: Json) -> "BatchResult":
        status = int(data["status"])
        if data.get("result") is not None:
            return cls(status=status, usage=Usage.from_json(data["result"]), error=None)
        return cls(status=status, usage=None, error=error_from_envelope(status, data))


@dataclass(frozen=True)
class FeatureEntitlement:
    feature: str
    type: str
    allowed: bool
    reason: str
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    resets_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Json) -> "FeatureEntitlement":
        return cls(
            feature=str(data["feature"]),
            type=str(data["type"]),
            allowed=bool(data["allowed"]),
            reason=str(data["reason"]),
            limit=_int(data.get("limit")),
            used=_int(data.get("used")),
            remaining=_int(data.get("remaining")),
            resets_at=parse_time(data.get("resets_at")),
        )


@dataclass(frozen=True)
class Subscription:
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None

    @classmethod
    def from_json(cls, data: Json) -> "Subscription":
        return cls(
            status=str(data["status"]),
            current_period_end=parse_time(data.get("current_period_end")),
            cancel_at_period_end=bool(data.get("cancel_at_period_end")),
            trial_end=parse_time(data.get("trial_end")),
        )


@dataclass(frozen=True)
class Entitlements:
    """Everything a tenant may do, with usage (`GET /v1/tenants/{tenant}/entitlements`)."""

    tenant: str
    plan: str | None
    subscription: Subscription | None
    features: dict[str, FeatureEntitlement]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> "Entitlements":
        subscription = data.get("subscription")
        features = [FeatureEntitlement.from_json(f) for f in data.get("features", [])]
        return cls(
            tenant=str(data["tenant"]),
            plan=data.get("plan"),
            subscription=Subscription.from_json(subscription) if subscription else None,
            features={f.feature: f for f in features},
            raw=data,
        )


@dataclass(frozen=True)
class CheckoutSession:
    """A Stripe Checkout session opened by billplane: send the person to `url`."""

    id: str
    url: str
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> "CheckoutSession":
        return cls(id=str(data["id"]), url=str(data["url"]), raw=data)


@dataclass(frozen=True)
class PortalSession:
    """A Stripe Customer Portal session: send the person to `url`."""

    url: str
    id: str | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> "PortalSession":
        return cls(url=str(data["url"]), id=data.get("id"), raw=data)
