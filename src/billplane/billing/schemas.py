"""Client API bodies for checkout, its confirmation and the customer portal."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from billplane.paging import ListOut
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


TOPUP_EXAMPLE: dict[str, Any] = {
    "id": "cs_test_b4c5d6",
    "pool": "credits",
    "credits": 500,
    "amount_paid": 900,
    "currency": "usd",
    "status": "partially_refunded",
    "amount_refunded": 300,
    "credits_refunded": 166,
    "credits_unrecovered": 0,
    "payment_intent": "pi_1a2b3c",
    "price": "price_500credits",
    "created": "2026-12-04T10:00:00Z",
}


class TopupHistoryOut(BaseModel):
    """A paid top-up in the tenant's billing history."""

    model_config = ConfigDict(json_schema_extra={"examples": [TOPUP_EXAMPLE]})

    id: str = Field(description="The Checkout session that bought it.")
    pool: str
    credits: int = Field(description="What it bought.")
    amount_paid: int = Field(description="In the currency's minor units (cents).")
    currency: str
    status: Literal["paid", "partially_refunded", "refunded"] = Field(
        description="As Stripe's charge says: nothing, part or all of `amount_paid` refunded."
    )
    amount_refunded: int = Field(description="Refunded so far, in minor units.")
    credits_refunded: int = Field(
        description="Credits the refunds take back: the refunded share of `credits`, rounded "
        "down (all of them once wholly refunded)."
    )
    credits_unrecovered: int = Field(
        description="Of `credits_refunded`, those spent already, so not removed (held by a "
        "reservation then, they are taken back when they return, and leave this number)."
    )
    payment_intent: str | None
    price: str = Field(description="The one-time Stripe price it was bought at.")
    created: datetime = Field(description="When its credits landed.")


class BillingHistoryOut(ListOut[InvoiceOut]):
    """Invoices as `data` (Stripe's list shape, paged by `limit`), top-ups beside them."""

    topups: list[TopupHistoryOut] = Field(
        description="The newest top-ups (at most `limit`), newest first."
    )
