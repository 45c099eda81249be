"""Client API bodies for checkout, its confirmation and the customer portal."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from billplane.schemas import NO_NUL_PATTERN, Key, Request, TenantKey

# Kept as sent (no URL normalisation): `{CHECKOUT_SESSION_ID}` must reach Stripe verbatim.
ReturnUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=NO_NUL_PATTERN)]


class CheckoutIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant": "acme-realty",
                    "plan": "pro",
                    "success_url": "https://app.realtyos.com/billing/done",
                    "cancel_url": "https://app.realtyos.com/billing",
                }
            ]
        }
    )

    tenant: TenantKey
    plan: Key
    success_url: ReturnUrl
    cancel_url: ReturnUrl


class CheckoutOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "cs_test_a1b2c3",
                    "url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
                }
            ]
        }
    )

    id: str
    url: str | None


class PortalIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"tenant": "acme-realty", "return_url": "https://app.realtyos.com/billing"}
            ]
        }
    )

    tenant: TenantKey
    return_url: ReturnUrl


class PortalOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": "bps_1a2b3c", "url": "https://billing.stripe.com/p/session/test_1a2b3c"}
            ]
        }
    )

    id: str
    url: str


class InvoiceOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "in_1a2b3c",
                    "number": "A1B2C3-0001",
                    "status": "paid",
                    "currency": "usd",
                    "amount_due": 2000,
                    "amount_paid": 2000,
                    "amount_remaining": 0,
                    "billing_reason": "subscription_cycle",
                    "attempt_count": 1,
                    "period_start": "2026-11-21T12:00:00Z",
                    "period_end": "2026-12-21T12:00:00Z",
                    "subscription": "sub_1a2b3c",
                    "hosted_invoice_url": None,
                    "created": "2026-11-21T12:00:00Z",
                }
            ]
        }
    )

    id: str
    number: str | None
    status: str
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    billing_reason: str | None
    attempt_count: int
    period_start: datetime | None
    period_end: datetime | None
    subscription: str | None
    hosted_invoice_url: str | None
    created: datetime | None
