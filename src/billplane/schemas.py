"""Field types shared by every schema: keys, quantities, billplane's own vocabularies, and the
strict request base."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Keys appear in URLs and logs: a conservative alphabet, never a path separator.
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
Key = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=KEY_PATTERN)]
TenantKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=KEY_PATTERN)]
# PostgreSQL text cannot hold a NUL character: refuse it as bad input instead of failing at the
# database with a 500.
NO_NUL_PATTERN = r"^[^\x00]*$"
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=NO_NUL_PATTERN),
]
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=NO_NUL_PATTERN)
]
Quantity = Annotated[int, Field(strict=True, ge=1, le=1_000_000_000)]
# Grant limits are stored in 32-bit INTEGER columns (plan and override grants).
Limit = Annotated[int, Field(strict=True, ge=0, le=2_147_483_647)]
PageLimit = Annotated[int, Field(ge=1, le=100)]

# billplane's own words, one definition each. (Stripe's words, such as a subscription's status,
# stay `str`: Stripe may add one, and a webhook must never fail on it.)
FeatureType = Literal["boolean", "limit", "metered"]
Reset = Literal["never", "day", "month", "billing_period"]
# A plan, a feature or a tenant: an archived one keeps its history but takes on nothing new
# (a plan is no longer sold; a feature or a tenant refuses checks).
Status = Literal["active", "archived"]
# A received Stripe event: `pending` while one transaction applies it.
EventOutcome = Literal["pending", "processed", "ignored", "failed"]


class Request(BaseModel):
    """A request body: unknown fields are refused, so a typo is an error rather than a no-op."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """What went wrong: a stable snake_case `code` to branch on, a `message` to show a person,
    and, for some codes, more (a validation error's `param`, a refused usage's numbers)."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(examples=["tenant_not_found"])
    message: str = Field(examples=["No tenant 'acme' in project 'realtyos'."])
    param: str | None = Field(
        default=None, description="The field at fault (validation errors)", examples=["quantity"]
    )


class ErrorOut(BaseModel):
    """Every error the API answers, whatever its status."""

    error: ErrorDetail
