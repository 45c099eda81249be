"""Request and response bodies of `/v1/usage` and `/v1/usage/batch`."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from billplane.schemas import ErrorDetail, IdempotencyKey, Key, Quantity, Request, TenantKey

USAGE_EXAMPLE: dict[str, Any] = {
    "tenant": "acme-realty",
    "feature": "listings.publish",
    "quantity": 1,
    "idempotency_key": "listing-8812-published",
    "enforce": True,
}


class UsageIn(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [USAGE_EXAMPLE]})

    tenant: TenantKey
    feature: Key
    quantity: Quantity = 1
    idempotency_key: IdempotencyKey | None = Field(
        default=None, description="Required here or as the Idempotency-Key header."
    )
    enforce: bool = Field(default=False, strict=True)
    timestamp: AwareDatetime | None = Field(
        default=None,
        description="When the usage happened (default: now), with its offset: at most 35 days "
        "back and 5 minutes ahead of billplane's clock, else 422 `timestamp_out_of_range`.",
    )


class UsageNow(BaseModel):
    used: int
    limit: int | None
    remaining: int | None
    resets_at: datetime | None


class UsageOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant": "acme-realty",
                    "feature": "listings.publish",
                    "idempotency_key": "listing-8812-published",
                    "quantity": 1,
                    "recorded": True,
                    "duplicate": False,
                    "used": 43,
                    "limit": 100,
                    "remaining": 57,
                    "resets_at": "2026-12-01T00:00:00Z",
                }
            ]
        }
    )

    tenant: str
    feature: str
    idempotency_key: str
    quantity: int
    recorded: bool
    duplicate: bool
    used: int
    limit: int | None
    remaining: int | None
    resets_at: datetime | None
    pool: str | None = Field(
        default=None, description="Only for a credit-priced feature: the pool it costs credits of."
    )
    cost: int | None = Field(
        default=None, description="Only for a credit-priced feature: the credits this use cost."
    )
    balance: int | None = Field(
        default=None,
        description="Only for a credit-priced feature: the usable credits left after this use.",
    )
    overage: int | None = Field(
        default=None,
        description="Only for a credit-priced feature: the part of `cost` past the balance, "
        "counted as usage of the plan's overage feature (0 unless the plan allows overage, or "
        "the use was recorded without `enforce`).",
    )
    current: UsageNow | None = Field(
        default=None,
        description="On a repeat (`duplicate: true`) only: the numbers as they stand now; the "
        "others are the first answer's, unchanged. A retry learns here that the limit has "
        "since been reached.",
    )


class BatchIn(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"events": [USAGE_EXAMPLE]}]})

    # Each event is validated on its own, so one malformed event cannot sink the others.
    events: Annotated[list[Any], Field(min_length=1, max_length=1000)]


class BatchResult(BaseModel):
    status: int
    result: UsageOut | None = None
    error: ErrorDetail | None = None  # the envelope's content, as a lone call would answer it


class BatchOut(BaseModel):
    data: list[BatchResult]
