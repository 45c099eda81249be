"""Field types shared by every schema: keys, quantities, and the strict request base."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Keys appear in URLs and logs: a conservative alphabet, never a path separator.
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
Key = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=KEY_PATTERN)]
TenantKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=KEY_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Quantity = Annotated[int, Field(strict=True, ge=1, le=1_000_000_000)]
Limit = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000_000)]
PageLimit = Annotated[int, Field(ge=1, le=100)]


class Request(BaseModel):
    """A request body: unknown fields are refused, so a typo is an error rather than a no-op."""

    model_config = ConfigDict(extra="forbid")
