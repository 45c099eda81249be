"""Bodies of the webhook's answer and of the admin API's event list."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from billplane.schemas import EventOutcome


class WebhookAnswer(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "received": True,
                    "id": "evt_1QZ8ab2eZvKYlo2C",
                    "type": "customer.subscription.updated",
                    "outcome": "processed",
                    "duplicate": False,
                }
            ]
        }
    )

    received: bool
    id: str
    type: str
    outcome: EventOutcome
    duplicate: bool


class EventOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "evt_1QZ8ab2eZvKYlo2C",
                    "type": "invoice.payment_failed",
                    "livemode": False,
                    "created": "2026-11-21T12:00:00Z",
                    "received_at": "2026-11-21T12:00:01Z",
                    "processed_at": None,
                    "outcome": "failed",
                    "error": "stripe_unavailable: Stripe could not be reached ...",
                }
            ]
        }
    )

    id: str
    type: str
    livemode: bool
    created: datetime | None
    received_at: datetime
    processed_at: datetime | None
    outcome: EventOutcome
    error: str | None
    reason: str | None = Field(
        default=None, description="Why an `ignored` event had nothing to do for billplane."
    )


class EventDetailOut(EventOut):
    payload: dict[str, Any]


class SyncChangeOut(BaseModel):
    tenant: str  # project/tenant
    action: str
    target: str
    before: dict[str, Any] | None  # the audit trail's own record of the change
    after: dict[str, Any] | None


class SyncOut(BaseModel):
    """What `POST /admin/api/stripe/sync` (and `billplane stripe sync`) checked and changed."""

    customers: int
    subscriptions: int
    topups: int = Field(description="Paid top-ups checked (landed if missed, refunds applied).")
    changed: int
    changes: list[SyncChangeOut]
    problems: list[str]  # what could not be repaired, and why
