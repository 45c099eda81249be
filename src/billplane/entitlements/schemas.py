"""Request and response bodies of `/v1/check` and `/v1/tenants/{tenant}/entitlements`."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from billplane.schemas import FeatureType, Key, Quantity, Request, TenantKey

Reason = Literal[
    "ok",
    "no_plan",
    "not_in_plan",
    "limit_reached",
    "subscription_inactive",
    "unknown_feature",
    "tenant_archived",
    "feature_archived",
]


class CheckIn(Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"tenant": "acme-realty", "feature": "listings.publish"}]}
    )

    tenant: TenantKey
    feature: Key
    quantity: Quantity = 1


class CheckOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "allowed": True,
                    "reason": "ok",
                    "tenant": "acme-realty",
                    "feature": "listings.publish",
                    "plan": "pro",
                    "subscription_status": "active",
                    "limit": 100,
                    "used": 42,
                    "remaining": 58,
                    "resets_at": "2026-12-01T00:00:00Z",
                }
            ]
        }
    )

    allowed: bool
    reason: Reason
    tenant: str
    feature: str
    plan: str | None
    subscription_status: str | None
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    resets_at: datetime | None = None
    message: str | None = Field(
        default=None,
        description="Only with `unknown_feature`: the key not found and the closest one the"
        " project has — the same sentence `/v1/usage` refuses the key with (404).",
    )


class FeatureEntitlement(BaseModel):
    feature: str
    type: FeatureType
    allowed: bool
    reason: Reason
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    resets_at: datetime | None = None


class SubscriptionSummary(BaseModel):
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None


class EntitlementsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant": "acme-realty",
                    "plan": "pro",
                    "subscription": {
                        "status": "active",
                        "current_period_end": "2026-12-21T00:00:00Z",
                        "cancel_at_period_end": False,
                        "trial_end": None,
                    },
                    "features": [
                        {"feature": "exports", "type": "boolean", "allowed": True, "reason": "ok"},
                        {
                            "feature": "listings.publish",
                            "type": "limit",
                            "allowed": True,
                            "reason": "ok",
                            "limit": 100,
                            "used": 42,
                            "remaining": 58,
                            "resets_at": "2026-12-01T00:00:00Z",
                        },
                    ],
                }
            ]
        }
    )

    tenant: str
    plan: str | None
    subscription: SubscriptionSummary | None
    features: list[FeatureEntitlement]
