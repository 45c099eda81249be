"""Admin API bodies for plans and their grants."""

from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from billplane.schemas import Key, Limit, Name, Request, Reset, Status, TenantKey

PriceId = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_]+$")
]


class LimitGrant(Request):
    limit: Limit
    reset: Reset = "month"


class LimitSpec(TypedDict):
    limit: int
    reset: Reset


# The services' form of a grant: `true`/`false`, or `{"limit": N, "reset": "month"}`.
GrantSpec = bool | LimitSpec


# Strict: a lax bool would read `{"listings.publish": 1}` (meant as a limit of 1) as "unlimited".
Grants = Annotated[dict[Key, StrictBool | LimitGrant], Field(max_length=500)]

PLAN_EXAMPLE: dict[str, Any] = {
    "key": "pro",
    "name": "Pro",
    "stripe_price_id": "price_1PgafmB7WZ01zgkW",
    "trial_days": 14,
    "features": {"exports": True, "listings.publish": {"limit": 100, "reset": "month"}},
}


class PlanIn(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [PLAN_EXAMPLE]})

    key: Key
    name: Name
    stripe_price_id: PriceId | None = None
    trial_days: Annotated[int, Field(strict=True, ge=0, le=730)] = 0
    is_default: bool = False
    features: Grants = {}


class PlanPatch(Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "archived"}, {"features": {"exports": True}}]}
    )

    name: Name | None = None
    stripe_price_id: PriceId | None = None
    trial_days: Annotated[int, Field(strict=True, ge=0, le=730)] | None = None
    is_default: bool | None = None
    status: Status | None = None
    features: Grants | None = None


class PlanOut(BaseModel):
    key: str
    name: str
    stripe_price_id: str | None
    trial_days: int
    status: Status
    is_default: bool
    version: int = Field(
        description="The newest version: what new subscribers get. Editing grants, price or trial "
        "days makes a new one; tenants who subscribed keep theirs until migrated."
    )
    # {feature: true/false, or {"limit": N, "reset": ...}}: pydantic cannot take `GrantSpec` (a
    # `typing.TypedDict`) on Python 3.11, so the answer's model keeps the plain form.
    features: dict[str, bool | dict[str, Any]]
    stripe: dict[str, Any] | None = Field(
        default=None, description="What Stripe says of the price, once Stripe is configured."
    )


def grant_specs(grants: dict[str, bool | LimitGrant]) -> dict[str, GrantSpec]:
    """The validated grant map in the plain form the services take."""
    return {
        k: v if isinstance(v, bool) else {"limit": v.limit, "reset": v.reset}
        for k, v in grants.items()
    }


# `PATCH …/plans/{plan}?migrate=`: who an edit of the grants applies to at once.
MigrateMode = Literal["none", "all"]


class MigrateIn(Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"tenants": ["acme", "globex"]}, {"tenants": "all"}]}
    )

    tenants: Annotated[list[TenantKey], Field(min_length=1, max_length=1000)] | Literal["all"] = (
        Field(
            description="The tenants to move to the plan's newest version, or `all` of those on "
            "an older one."
        )
    )


class MovedOut(BaseModel):
    tenant: str
    from_version: int


class MigrationOut(BaseModel):
    plan: str
    version: int = Field(description="The version the tenants were moved to (the newest).")
    migrated: list[MovedOut] = Field(
        description="The tenants moved; those already on the newest version are not listed."
    )


class PlanVersionOut(BaseModel):
    version: int
    stripe_price_id: str | None
    trial_days: int
    created_at: datetime
    tenants: int = Field(description="Tenants whose entitlements come from this version now.")
    newest: bool
