"""billplane's webhooks to this app: verified as the Standard Webhooks spec says, and the tenant's
cached entitlements dropped, so the next check sees the change at once instead of after the
cache's TTL.

    webhooks = Webhooks(bp, secret=os.environ["BILLPLANE_WEBHOOK_SECRET"])
    event = webhooks.receive(body, headers)  # WebhookRefused unless billplane signed it

Every event billplane sends (`tenant.entitlements.updated`, `tenant.subscription.updated`,
`tenant.usage.threshold`, `invoice.payment_failed`) tells of a change to one tenant's plan,
access or usage: each drops that tenant's cached entitlements. A repeat (billplane delivers at
least once; `event.id` is the same) drops them again, which is harmless.

Needs the `webhooks` extra (`standardwebhooks`, the spec's own library), imported only when a
`Webhooks` is made.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

ENTITLEMENTS_UPDATED = "tenant.entitlements.updated"
USAGE_THRESHOLD = "tenant.usage.threshold"
SUBSCRIPTION_UPDATED = "tenant.subscription.updated"
PAYMENT_FAILED = "invoice.payment_failed"


class Forgets(Protocol):
    """A client whose cached entitlements of a tenant can be dropped (`Billplane`,
    `AsyncBillplane`)."""

    def forget(self, tenant: str) -> None: ...


class WebhookRefused(Exception):
    """A request to the webhook route that billplane did not sign with this secret (forged,
    altered, replayed more than five minutes later, or signed with a rotated-out secret).
    Answer it 400 (`body`): billplane's own deliveries never get one."""

    status = 400
    code = "invalid_signature"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass(frozen=True)
class WebhookEvent:
    """One verified event; `id` is the `webhook-id` header, the same on every repeat."""

    id: str
    type: str
    tenant: str | None
    project: str | None
    sequence: int | None  # the tenant's event number: a lower one than seen is an older event
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, message_id: str, payload: Mapping[str, Any]) -> "WebhookEvent":
        data = payload.get("data")
        data = dict(data) if isinstance(data, Mapping) else {}
        tenant, project, sequence = data.get("tenant"), data.get("project"), data.get("sequence")
        return cls(
            id=message_id,
            type=str(payload.get("type", "")),
            tenant=tenant if isinstance(tenant, str) else None,
            project=project if isinstance(project, str) else None,
            sequence=sequence if isinstance(sequence, int) else None,
            data=data,
        )


class Webhooks:
    """Verifies billplane's deliveries with the endpoint's secret (or secrets: while billplane
    rotates one, give both) and keeps `client`'s cache in step with them."""

    def __init__(self, client: Forgets, secret: str | Sequence[str]) -> None:
        try:
            from standardwebhooks import Webhook  # the `webhooks` extra: imported only here
        except ImportError as missing:
            raise ImportError(
                "verifying billplane's webhooks needs standardwebhooks: "
                "pip install 'billplane-client[webhooks]'"
            ) from missing
        secrets = [secret] if isinstance(secret, str) else list(secret)
        if not secrets or not all(secrets):
            raise ValueError("the webhook endpoint's secret (whsec_...) is required")
        self._verifiers = [Webhook(each) for each in secrets]
        self.client = client

    def receive(self, body: bytes | str, headers: Mapping[str, str]) -> WebhookEvent:
        """The verified event, once its tenant's cached entitlements are dropped."""
        event = self.verify(body, headers)
        if event.tenant:
            self.client.forget(event.tenant)
        return event

    def verify(self, body: bytes | str, headers: Mapping[str, str]) -> WebhookEvent:
        """The event, if one of the secrets signed it; else `WebhookRefused`."""
        from standardwebhooks.webhooks import WebhookVerificationError

        lowered = {name.lower(): value for name, value in headers.items()}
        for verifier in self._verifiers:
            try:
                payload = verifier.verify(body, lowered)
            except (WebhookVerificationError, ValueError):
                continue  # a malformed header or body is refused like a wrong signature
            if isinstance(payload, Mapping):
                return WebhookEvent.from_payload(lowered["webhook-id"], payload)
        raise WebhookRefused(
            "This request is not a webhook billplane signed with this endpoint's secret."
        )
