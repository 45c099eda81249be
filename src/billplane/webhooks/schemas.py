"""Bodies of the webhook's answer and of the admin API's event list."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

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


class EventDetailOut(EventOut):
    payload: dict[str, Any]
