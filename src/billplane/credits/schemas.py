"""Bodies of the credits API: pools and their prices, plans' allowances, grants, balances."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from billplane.schemas import (
    NO_NUL_PATTERN,
    IdempotencyKey,
    Key,
    Name,
    Quantity,
    Request,
    Reset,
    TenantKey,
)

# A price or an amount of credits: counted in 64-bit columns, kept far below their end so that a
# cost times a quantity (at most a billion) still fits.
Cost = Annotated[int, Field(strict=True, ge=1, le=1_000_000_000)]
Credits = Annotated[int, Field(strict=True, ge=1, le=1_000_000_000_000)]
Costs = Annotated[dict[Key, Cost], Field(max_length=500)]
CostChanges = Annotated[dict[Key, Cost | None], Field(max_length=500)]
PriceId = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_]+$")
]
Packs = Annotated[dict[PriceId, Credits], Field(max_length=100)]
PackChanges = Annotated[dict[PriceId, Credits | None], Field(max_length=100)]
Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500, strip_whitespace=True, pattern=NO_NUL_PATTERN),
]

POOL_EXAMPLE: dict[str, Any] = {
    "key": "credits",
    "name": "Credits",
    "costs": {"ai.chat": 1, "ai.image": 5},
}


class PoolIn(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [POOL_EXAMPLE]})

    key: Key
    name: Name
    costs: Costs = Field(
        default={}, description="Feature key -> credits one unit of it costs (counted features)."
    )
    packs: Packs = Field(
        default={},
        description="Top-ups: a one-time Stripe price id -> the credits it buys "
        "(`POST /v1/topups`).",
    )


class PoolPatch(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"costs": {"ai.image": 4}}]})

    name: Name | None = None
    costs: CostChanges | None = Field(
        default=None,
        description="Prices to set; `null` for a feature takes its price away. Features not "
        "named keep theirs.",
    )
    packs: PackChanges | None = Field(
        default=None, description="Top-ups to set; `null` for a price takes it off sale."
    )


class AllowanceIn(Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"grant": 1000, "reset": "month", "rollover": False}]}
    )

    grant: Annotated[int, Field(strict=True, ge=0, le=1_000_000_000_000)] = Field(
        description="Credits the plan gives each period."
    )
    reset: Reset = "month"
    rollover: StrictBool | Annotated[int, Field(strict=True, ge=0)] = Field(
        default=False,
        description="What a period's unused allowance carries into the next: `false` nothing, "
        "`true` up to one period's `grant`, or at most this many credits (at most `grant`).",
    )
    overage: Key | None = Field(
        default=None,
        description="A metered feature: with it, a deduction past the balance is admitted and "
        "the part past it counted as that feature's usage (billed by usage); without it, an "
        "enforced deduction must fit the balance.",
    )

    def rollover_cap(self) -> int:
        if isinstance(self.rollover, bool):
            return self.grant if self.rollover else 0
        return self.rollover


class AllowanceOut(BaseModel):
    grant: int
    reset: Reset
    rollover: int = Field(description="The most a period's unused allowance carries over.")
    overage: str | None


class PoolOut(BaseModel):
    key: str
    name: str
    costs: dict[str, int]
    packs: dict[str, int] = Field(description="Top-ups: Stripe price id -> credits it buys.")
    allowances: dict[str, AllowanceOut] = Field(description="Plan key -> its allowance.")


class GrantIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "pool": "credits",
                    "amount": 500,
                    "reason": "Apology for the outage of 2026-12-01",
                    "idempotency_key": "ticket-4411",
                }
            ]
        }
    )

    pool: Key
    amount: Credits
    reason: Reason = Field(description="Why, kept on the ledger row and in the audit trail.")
    expires_at: AwareDatetime | None = Field(default=None, description="Default: never.")
    idempotency_key: IdempotencyKey | None = Field(
        default=None,
        description="A repeat with the same key (and amount) grants nothing more and answers "
        "the first grant (200).",
    )


class GrantOut(BaseModel):
    tenant: str
    pool: str
    amount: int
    reason: str
    idempotency_key: str
    bucket: int
    expires_at: datetime | None
    created_at: datetime


Source = Literal["allowance", "grant", "topup"]


class TopupIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant": "acme-realty",
                    "price": "price_1PgbCreditPack500",
                    "success_url": "https://app.realtyos.com/credits/thanks",
                    "cancel_url": "https://app.realtyos.com/credits",
                }
            ]
        }
    )

    tenant: TenantKey
    price: PriceId = Field(description="A one-time Stripe price a pool sells as a top-up.")
    success_url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    cancel_url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class TopupOut(BaseModel):
    id: str = Field(description="The Checkout session's id (for `/v1/checkout/{id}/confirm`).")
    url: str | None = Field(description="Where to send the customer to pay.")
    pool: str
    credits: int = Field(description="What the top-up adds once paid.")


Kind = Literal[
    "allowance",
    "rollover",
    "grant",
    "topup",
    "deduction",
    "overage",
    "expiry",
    "reservation",
    "release",
    "refund",
]


class BucketOut(BaseModel):
    id: int
    source: Source
    source_key: str = Field(description="The allowance's period key, or the grant's key.")
    granted: int
    remaining: int
    expires_at: datetime | None
    created_at: datetime


class EntryOut(BaseModel):
    id: int
    kind: Kind
    amount: int = Field(description="Signed: credits into (+) or out of (-) `bucket`.")
    bucket: int | None = Field(description="None for an overage (past the balance).")
    idempotency_key: str
    feature: str | None
    quantity: int | None
    reason: str | None
    created_at: datetime
    unrecovered: int | None = Field(
        default=None,
        description="A `refund` only: credits the refund takes back that were spent already, "
        "so could not be removed (`amount` is what was removed). Negative on a later row of the "
        "refund (`part` 1, 2, …) that took back credits a reservation held and gave back.",
    )


class PoolBalanceOut(BaseModel):
    pool: str
    name: str
    balance: int = Field(description="Usable credits: the sum of the live buckets' `remaining`.")
    buckets: list[BucketOut] = Field(description="In deduction order: soonest-expiring first.")
    ledger: list[EntryOut] = Field(description="The newest 50 movements, newest first.")


class BalancesOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant": "acme-realty",
                    "pools": [
                        {
                            "pool": "credits",
                            "name": "Credits",
                            "balance": 995,
                            "buckets": [
                                {
                                    "id": 7,
                                    "source": "allowance",
                                    "source_key": "m:2026-12",
                                    "granted": 1000,
                                    "remaining": 995,
                                    "expires_at": "2027-01-01T00:00:00Z",
                                    "created_at": "2026-12-04T10:00:00Z",
                                }
                            ],
                            "ledger": [
                                {
                                    "id": 12,
                                    "kind": "deduction",
                                    "amount": -5,
                                    "bucket": 7,
                                    "idempotency_key": "image-88",
                                    "feature": "ai.image",
                                    "quantity": 1,
                                    "reason": None,
                                    "created_at": "2026-12-04T10:00:00Z",
                                },
                                {
                                    "id": 11,
                                    "kind": "allowance",
                                    "amount": 1000,
                                    "bucket": 7,
                                    "idempotency_key": "allowance:credits:m:2026-12",
                                    "feature": None,
                                    "quantity": None,
                                    "reason": None,
                                    "created_at": "2026-12-04T10:00:00Z",
                                },
                            ],
                        }
                    ],
                }
            ]
        }
    )

    tenant: str
    pools: list[PoolBalanceOut]


RESERVATION_EXAMPLE: dict[str, Any] = {
    "tenant": "acme-realty",
    "feature": "ai.video",
    "quantity": 30,
    "idempotency_key": "render-5521",
    "expires_in": 900,
}


class ReservationIn(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [RESERVATION_EXAMPLE]})

    tenant: TenantKey
    feature: Key = Field(description="A credit-priced feature.")
    quantity: Quantity = Field(description="The estimate, in the feature's units.")
    idempotency_key: IdempotencyKey
    expires_in: Annotated[int, Field(strict=True, ge=1, le=86_400)] = Field(
        default=900,
        description="Seconds until the hold releases itself, unless finalized or released.",
    )


class FinalizeIn(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"quantity": 24}]})

    quantity: Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)] = Field(
        description="What the action used, in the feature's units: more or less than reserved "
        "(more must fit the balance)."
    )


class ReservationOut(BaseModel):
    id: str = Field(description="`rsv_…`, for finalize and release.")
    tenant: str
    feature: str
    pool: str
    quantity: int
    amount: int = Field(description="The credits held.")
    status: Literal["held", "finalized", "released", "expired"]
    final_quantity: int | None
    final_amount: int | None = Field(description="The credits the finalized action cost.")
    expires_at: datetime
    created_at: datetime
    balance: int = Field(description="The pool's usable balance after this call.")
