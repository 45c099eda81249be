"""The answer of `GET /admin/api/audit`."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    actor: str  # admin | cli | dashboard | stripe-webhook | stripe-sync
    action: str  # e.g. plan.update, token.rotate, subscription.update
    target: str  # e.g. plan:realtyos/pro
    # What changed, as it was stored: free-form by nature (each action keeps its own fields).
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime
