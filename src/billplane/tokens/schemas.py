"""Admin API bodies for tokens."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from billplane.schemas import Name, Request, TenantKey


class TokenIn(Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "acme app", "tenant": "acme-realty"}]}
    )

    name: Name
    tenant: TenantKey | None = Field(default=None, description="Scope the token to this tenant.")


class TokenOut(BaseModel):
    id: str
    name: str
    prefix: str
    tenant: str | None
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret. Shown only this once; store it now.")
