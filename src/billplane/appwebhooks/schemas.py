"""Admin API bodies for app webhook endpoints and their deliveries."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field

from billplane.schemas import Request

EventType = Literal[
    "tenant.entitlements.updated",
    "tenant.usage.threshold",
    "tenant.subscription.updated",
    "invoice.payment_failed",
]
EndpointStatus = Literal["enabled", "disabled"]
DeliveryStatus = Literal["pending", "delivered", "failed"]


def _no_fragment(url: AnyHttpUrl) -> AnyHttpUrl:
    if url.fragment:
        raise ValueError("a webhook URL has no #fragment (it is never sent)")
    return url


WebhookUrl = Annotated[AnyHttpUrl, Field(max_length=2048), AfterValidator(_no_fragment)]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=10)]

EXAMPLE_URL = "https://app.realtyos.com/billplane/webhooks"


class EndpointIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": EXAMPLE_URL,
                    "events": ["tenant.entitlements.updated", "tenant.usage.threshold"],
                }
            ]
        }
    )

    url: WebhookUrl = Field(description="Any http(s) URL: the operator registers it.")
    events: EventTypes = Field(description="The event types this endpoint receives.")


class EndpointPatch(Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"events": ["tenant.subscription.updated"]}]}
    )

    url: WebhookUrl | None = None
    events: EventTypes | None = None
    status: EndpointStatus | None = Field(
        default=None,
        description="`disabled` stops deliveries (they wait); `enabled` sends what waited, "
        "with three days of retries anew.",
    )


class EndpointOut(BaseModel):
    id: str
    url: str
    events: list[str]
    status: EndpointStatus
    disabled_reason: str | None
    failing_since: datetime | None = Field(
        description="When its current run of failed attempts began; disabled after 3 days."
    )
    created_at: datetime
    updated_at: datetime


class EndpointWithSecretOut(EndpointOut):
    secret: str = Field(
        description="The signing secret (`whsec_...`). Shown only this once; store it now."
    )


class DeliveryOut(BaseModel):
    id: str
    message_id: str = Field(description="The event's `webhook-id`, the same on every attempt.")
    type: str
    tenant: str
    sequence: int
    status: DeliveryStatus
    attempts: int = Field(description="Attempts since it was written or last replayed.")
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    body: dict[str, Any] = Field(description="The JSON body every attempt sends.")


class AttemptOut(BaseModel):
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response: str | None = Field(description="The start of the app's answer.")


class DeliveryDetailOut(DeliveryOut):
    attempt_log: list[AttemptOut] = Field(description="The newest attempts, newest first.")
