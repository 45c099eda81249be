"""Request and response bodies of `/v1/check` and `/v1/tenants/{tenant}/entitlements`."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from billplane.schemas import FeatureType, Key, Quantity, Request, Reset, TenantKey

Reason = Literal[
    "ok",
    "no_plan",
    "not_in_plan",
    "limit_reached",
    "subscription_inactive",
    "unknown_feature",
    "tenant_archived",
    "feature_archived",
    "insufficient_credits",
]


class CheckIn(Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"tenant": "acme-realty", "feature": "listings.publish"}]}
    )

    tenant: TenantKey
    feature: Key
    quantity: Quantity = 1
    explain: bool = Field(
        default=False,
        description="Also say how the answer was reached, in `explain`. The answer itself is the"
        " same either way.",
    )


class SubscriptionExplained(BaseModel):
    status: str
    stripe_price_id: str | None
    grants_access: bool = Field(description="Whether this status gives the plan's grants now.")
    grace_until: datetime | None = Field(
        description="For `past_due`: the last moment of access (the past-due grace window)."
    )


class PlanExplained(BaseModel):
    key: str | None
    source: Literal["price", "default", "none"] = Field(
        description="`price`: the plan of the subscribed price; `default`: the project's default"
        " plan (no subscription, one that grants no access, or a price no plan has); `none`:"
        " no plan applies."
    )
    version: int | None = Field(
        description="The plan's version whose grants apply: the one the tenant subscribed to "
        "(kept until an operator migrates it), else the newest."
    )
    newest_version: int | None = Field(description="The plan's newest version.")
    why: str = Field(description="The same, as a sentence for a person.")


class GrantExplained(BaseModel):
    source: Literal["override", "plan", "none"] = Field(
        description="`override`: the tenant's own grant, which replaces the plan's; `plan`: the"
        " chosen plan's; `none`: nothing grants the feature."
    )
    enabled: bool | None
    limit: int | None
    reset: Reset | None


class PeriodExplained(BaseModel):
    reset: Reset = Field(description="The grant's reset, or the feature type's default.")
    key: str = Field(description="The usage counter's period key, e.g. `m:2026-12`.")
    resets_at: datetime | None
    used: int = Field(description="What the counter of this period held when read.")


class FeatureExplained(BaseModel):
    feature_archived: bool
    grant: GrantExplained
    period: PeriodExplained | None = Field(description="None for an on/off feature.")


class Considered(BaseModel):
    subscription: SubscriptionExplained | None
    plan: PlanExplained
    tenant_archived: bool


class CheckExplained(Considered):
    """The tenant's side, and (for a key the project has) the feature's."""

    feature_archived: bool | None = None
    grant: GrantExplained | None = None
    period: PeriodExplained | None = None


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
    pool: str | None = Field(
        default=None, description="Only for a credit-priced feature: the pool it costs credits of."
    )
    cost: int | None = Field(
        default=None, description="Only for a credit-priced feature: what `quantity` costs."
    )
    balance: int | None = Field(
        default=None,
        description="Only for a credit-priced feature: the tenant's usable credits in the pool, "
        "the current period's allowance included. Past it, `allowed: false` with reason "
        "`insufficient_credits` (unless the plan allows overage).",
    )
    message: str | None = Field(
        default=None,
        description="Only with `unknown_feature`: the key not found and the closest one the"
        " project has — the same sentence `/v1/usage` refuses the key with (404).",
    )
    explain: CheckExplained | None = Field(default=None, description="Only when asked.")


class FeatureEntitlement(BaseModel):
    feature: str
    type: FeatureType
    allowed: bool
    reason: Reason
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    resets_at: datetime | None = None
    explain: FeatureExplained | None = Field(default=None, description="Only when asked.")


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
    explain: Considered | None = Field(default=None, description="Only when asked.")


class LimitChangeOut(BaseModel):
    feature: str
    before: int | None = Field(description="None: unlimited.")
    after: int | None


class OverLimitOut(BaseModel):
    feature: str
    limit: int = Field(description="The new limit.")
    used: int = Field(description="What the tenant has used this period already, over it.")


class TenantEffectOut(BaseModel):
    tenant: str
    plan_before: str | None
    plan_after: str | None
    gained: list[str] = Field(description="Features the tenant would be granted.")
    lost: list[str] = Field(description="Features the tenant would no longer be granted.")
    limits_raised: list[LimitChangeOut]
    limits_lowered: list[LimitChangeOut]
    over_limit: list[OverLimitOut] = Field(
        description="Lowered limits the tenant's usage this period is already past."
    )
    falls_to_no_plan: bool


class PreviewSummaryOut(BaseModel):
    tenants_checked: int
    tenants_affected: int
    gaining: int
    losing: int
    limits_raised: int
    limits_lowered: int
    over_limit: int
    falling_to_no_plan: int


class PreviewOut(BaseModel):
    """What a change would do to each tenant (`?dry_run=true`); nothing was changed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dry_run": True,
                    "summary": {
                        "tenants_checked": 120,
                        "tenants_affected": 1,
                        "gaining": 0,
                        "losing": 0,
                        "limits_raised": 0,
                        "limits_lowered": 1,
                        "over_limit": 1,
                        "falling_to_no_plan": 0,
                    },
                    "tenants": [
                        {
                            "tenant": "acme-realty",
                            "plan_before": "pro",
                            "plan_after": "pro",
                            "gained": [],
                            "lost": [],
                            "limits_raised": [],
                            "limits_lowered": [
                                {"feature": "listings.publish", "before": 100, "after": 50}
                            ],
                            "over_limit": [
                                {"feature": "listings.publish", "limit": 50, "used": 72}
                            ],
                            "falls_to_no_plan": False,
                        }
                    ],
                }
            ]
        }
    )

    dry_run: Literal[True]
    summary: PreviewSummaryOut
    tenants: list[TenantEffectOut] = Field(description="Only the tenants the change affects.")
