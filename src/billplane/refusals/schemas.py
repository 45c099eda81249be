"""The refusal log as the admin API shows it."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class RefusalOut(BaseModel):
    id: int
    tenant: str
    feature: str
    reason: str = Field(description="The answer's reason or the 402's code, e.g. `limit_reached`.")
    source: Literal["check", "usage"] = Field(
        description="`check`: a `/v1/check` answered `allowed: false`; `usage`: a usage call"
        " (or batch event) refused with 402."
    )
    quantity: int
    limit: int | None
    used: int | None = Field(description="What the tenant had used when refused.")
    at: datetime
