"""Admin API bodies for tenants."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from billplane.plans.schemas import Grants
from billplane.schemas import Name, Request, Status, TenantKey

Email = Annotated[str, Field(max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")]


class TenantIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"key": "acme-realty", "name": "Acme Realty", "email": "ops@acme.test"}]
        }
    )

    key: TenantKey
    name: Name | None = None
    email: Email | None = None


class TenantPatch(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"overrides": {"listings.publish": {"limit": 500, "reset": "month"}}},
                {"status": "archived"},
            ]
        }
    )

    name: Name | None = None
    email: Email | None = None
    overrides: Grants | None = None
    status: Status | None = None


class TenantOut(BaseModel):
    key: str
    name: str | None
    email: str | None
    stripe_customer_id: str | None
    overrides: dict[str, bool | dict[str, Any]]
    status: Status = Field(description="`archived`: every check of the tenant is refused")
    created_at: datetime


class TenantDetailOut(TenantOut):
    plan: str | None
    subscription: dict[str, Any] | None
    entitlements: list[dict[str, Any]]
    recent_usage: list[dict[str, Any]]
