"""App webhook endpoints as the operator manages them, and their deliveries.

A new or rotated secret exists in an answer once; lists, views, the audit trail and the logs
never carry it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from billplane.appwebhooks import outbox, repository, signing
from billplane.appwebhooks.schemas import EndpointIn, EndpointPatch
from billplane.audit import service as audit
from billplane.errors import DeliveryNotFound, EndpointDisabled, WebhookEndpointNotFound
from billplane.models import AppDelivery, AppEvent, AppWebhookEndpoint, Project

# How long the secret a rotation replaced keeps signing beside the new one: the app's time to
# switch to the new secret without refusing a delivery meanwhile.
PREVIOUS_SECRET_SIGNS_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class WithSecret:
    endpoint: AppWebhookEndpoint
    secret: str  # the only moment it is shown


def get_endpoint(session: Session, project: Project, public_id: str) -> AppWebhookEndpoint:
    found = repository.endpoint(session, project.id, public_id)
    if found is None:
        raise WebhookEndpointNotFound(
            f"No webhook endpoint '{public_id}' in project '{project.key}'."
        )
    return found


def describe(endpoint: AppWebhookEndpoint) -> dict[str, Any]:
    """The endpoint as the admin API answers it (`schemas.EndpointOut`): never its secret."""
    return {
        "id": endpoint.public_id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def _audited(endpoint: AppWebhookEndpoint) -> dict[str, Any]:
    return {"url": endpoint.url, "events": list(endpoint.events), "status": endpoint.status}


def _record(
    session: Session,
    project: Project,
    endpoint: AppWebhookEndpoint,
    action: str,
    *,
    actor: str,
    now: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"webhook_endpoint.{action}",
        target=f"webhook_endpoint:{project.key}/{endpoint.public_id}",
        project_id=project.id,
        before=before,
        after=after,
        now=now,
    )


def create_endpoint(
    session: Session,
    project: Project,
    body: EndpointIn,
    *,
    secret_key: str | None,
    actor: str,
    now: datetime,
) -> WithSecret:
    """A new endpoint and its secret, sealed with `secret_key` (BILLPLANE_SECRET_KEY)."""
    sealing_key = signing.sealing_key(secret_key)
    secret = signing.new_secret()
    public_id = outbox.new_id("ep")
    endpoint = AppWebhookEndpoint(
        public_id=public_id,
        project_id=project.id,
        url=str(body.url),
        events=sorted(set(body.events), key=outbox.EVENT_TYPES.index),
        secret_sealed=signing.seal(secret, sealing_key, public_id),
        status="enabled",
        created_at=now,
        updated_at=now,
    )
    repository.add(session, endpoint)
    _record(session, project, endpoint, "create", actor=actor, now=now, after=_audited(endpoint))
    return WithSecret(endpoint, secret)


def update_endpoint(
    session: Session,
    project: Project,
    public_id: str,
    body: EndpointPatch,
    *,
    actor: str,
    now: datetime,
) -> AppWebhookEndpoint:
    """Change the URL or the events, or disable or enable it. Enabling a disabled endpoint
    sends what waited for it, with three days of retries anew."""
    endpoint = get_endpoint(session, project, public_id)
    before = _audited(endpoint)
    if body.url is not None:
        endpoint.url = str(body.url)
    if body.events is not None:
        endpoint.events = sorted(set(body.events), key=outbox.EVENT_TYPES.index)
    if body.status == "enabled" and endpoint.status == "disabled":
        endpoint.disabled_reason = None
        endpoint.failing_since = None
        repository.restart_pending(session, endpoint.id, now)
    elif body.status == "disabled" and endpoint.status == "enabled":
        endpoint.disabled_reason = f"Disabled by {actor}."
    endpoint.status = body.status or endpoint.status
    endpoint.updated_at = now
    session.flush()
    after = _audited(endpoint)
    if after != before:
        _record(
            session, project, endpoint, "update", actor=actor, now=now, before=before, after=after
        )
    return endpoint


def rotate_secret(
    session: Session,
    project: Project,
    public_id: str,
    *,
    secret_key: str | None,
    actor: str,
    now: datetime,
) -> WithSecret:
    """A new signing secret; the old one signs beside it for a day (`webhook-signature` then
    holds both), so the app can switch without refusing a delivery. Needs only
    BILLPLANE_SECRET_KEY, not the old secret: also the way out when the old one was sealed with
    a key that is gone."""
    sealing_key = signing.sealing_key(secret_key)
    endpoint = get_endpoint(session, project, public_id)
    secret = signing.new_secret()
    endpoint.previous_secret_sealed = endpoint.secret_sealed
    endpoint.previous_secret_until = now + PREVIOUS_SECRET_SIGNS_FOR
    endpoint.secret_sealed = signing.seal(secret, sealing_key, endpoint.public_id)
    endpoint.updated_at = now
    session.flush()
    until = endpoint.previous_secret_until.isoformat()
    _record(
        session, project, endpoint, "rotate_secret", actor=actor, now=now,
        after={"previous_secret_signs_until": until},
    )  # fmt: skip
    return WithSecret(endpoint, secret)


def get_delivery(
    session: Session, endpoint: AppWebhookEndpoint, public_id: str
) -> tuple[AppDelivery, AppEvent]:
    found = repository.delivery(session, endpoint.id, public_id)
    if found is None:
        raise DeliveryNotFound(
            f"No delivery '{public_id}' to webhook endpoint '{endpoint.public_id}'."
        )
    return found


def describe_delivery(delivery: AppDelivery, event: AppEvent) -> dict[str, Any]:
    """A delivery as the admin API answers it (`schemas.DeliveryOut`)."""
    data = event.payload.get("data", {})
    return {
        "id": delivery.public_id,
        "message_id": event.public_id,
        "type": event.type,
        "tenant": str(data.get("tenant", "")),
        "sequence": delivery.sequence,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == "pending" else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
        "body": event.payload,
    }


def attempt_log(session: Session, delivery: AppDelivery) -> list[dict[str, Any]]:
    return [
        {
            "attempted_at": a.attempted_at,
            "duration_ms": a.duration_ms,
            "status_code": a.status_code,
            "error": a.error,
            "response": a.response_excerpt,
        }
        for a in repository.attempts_of(session, delivery.id)
    ]


def replay(
    session: Session,
    project: Project,
    endpoint_id: str,
    delivery_id: str,
    *,
    actor: str,
    now: datetime,
) -> tuple[AppDelivery, AppEvent]:
    """Send a delivery again now (delivered, failed or still waiting), with three days of
    retries anew. The app gets the same `webhook-id`: it may tell a repeat by it."""
    endpoint = get_endpoint(session, project, endpoint_id)
    if endpoint.status != "enabled":
        raise EndpointDisabled(
            f"Webhook endpoint '{endpoint.public_id}' is disabled: enable it first "
            "(PATCH with status enabled), and what waits for it goes out."
        )
    delivery, event = get_delivery(session, endpoint, delivery_id)
    before = {"status": delivery.status}
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.give_up_at = None
    delivery.attempts = 0
    delivery.claim = delivery.claimed_until = None
    session.flush()
    _record(
        session, project, endpoint, "replay", actor=actor, now=now, before=before,
        after={"delivery": delivery.public_id, "status": "pending"},
    )  # fmt: skip
    return delivery, event
