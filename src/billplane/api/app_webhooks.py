"""Admin HTTP for webhooks to client apps: endpoints, their secrets, deliveries and replays."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from billplane.appwebhooks import repository, service
from billplane.appwebhooks.schemas import (
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryStatus,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointWithSecretOut,
)
from billplane.http import Admin, CurrentSettings, Now, Tx, errors
from billplane.paging import ListOut
from billplane.projects.service import get_project
from billplane.schemas import Key, PageLimit

router = APIRouter(prefix="/admin/api/projects/{project}/webhook-endpoints", tags=["admin"])

# Endpoints and deliveries are named by their ids (`ep_...`, `dlv_...`).
EndpointId = Key
DeliveryId = Key


def _with_secret(created: service.WithSecret) -> dict[str, Any]:
    return {**service.describe(created.endpoint), "secret": created.secret}


# Creating or rotating seals a secret: without BILLPLANE_SECRET_KEY there is nothing to seal with.
NO_SECRET_KEY = (503, "BILLPLANE_SECRET_KEY is not set (`secret_key_not_configured`).")


@router.post(
    "",
    response_model=EndpointWithSecretOut,
    status_code=201,
    responses=errors(NO_SECRET_KEY),
    summary="Add a webhook endpoint",
)
def create_endpoint(
    project: Key, body: EndpointIn, actor: Admin, tx: Tx, now: Now, settings: CurrentSettings
) -> Any:
    """The endpoint receives the `events` it names, signed as the Standard Webhooks spec says
    with its own secret: `secret` in this answer, the only time it is shown. The secret is kept
    sealed with BILLPLANE_SECRET_KEY, which must be set."""
    with tx.write() as session:
        found = get_project(session, project)
        created = service.create_endpoint(
            session, found, body, secret_key=settings.billplane_secret_key, actor=actor, now=now
        )
        return _with_secret(created)


@router.get("", response_model=ListOut[EndpointOut], summary="The project's webhook endpoints")
def list_endpoints(
    project: Key,
    _: Admin,
    tx: Tx,
    limit: PageLimit = 100,
    starting_after: EndpointId | None = None,
) -> Any:
    with tx.read() as session:
        found = get_project(session, project)
        page = repository.endpoints(session, found.id, limit=limit, starting_after=starting_after)
        return {"data": [service.describe(e) for e in page.data], "has_more": page.has_more}


@router.get("/{endpoint}", response_model=EndpointOut, summary="One webhook endpoint")
def get_endpoint(project: Key, endpoint: EndpointId, _: Admin, tx: Tx) -> Any:
    with tx.read() as session:
        found = get_project(session, project)
        return service.describe(service.get_endpoint(session, found, endpoint))


@router.patch("/{endpoint}", response_model=EndpointOut, summary="Change a webhook endpoint")
def update_endpoint(
    project: Key, endpoint: EndpointId, body: EndpointPatch, actor: Admin, tx: Tx, now: Now
) -> Any:
    """Change its URL or events, or disable or enable it (`status`). Enabling a disabled
    endpoint sends what waited for it."""
    with tx.write() as session:
        found = get_project(session, project)
        changed = service.update_endpoint(session, found, endpoint, body, actor=actor, now=now)
        return service.describe(changed)


@router.post(
    "/{endpoint}/rotate-secret",
    response_model=EndpointWithSecretOut,
    responses=errors(NO_SECRET_KEY),
    summary="A new signing secret",
)
def rotate_secret(
    project: Key, endpoint: EndpointId, actor: Admin, tx: Tx, now: Now, settings: CurrentSettings
) -> Any:
    """The new secret is in `secret`, shown only this once. For 24 hours the old one signs
    beside it (`webhook-signature` carries both), so the app can switch without a gap."""
    with tx.write() as session:
        found = get_project(session, project)
        rotated = service.rotate_secret(
            session, found, endpoint, secret_key=settings.billplane_secret_key, actor=actor,
            now=now,
        )  # fmt: skip
        return _with_secret(rotated)


@router.get(
    "/{endpoint}/deliveries",
    response_model=ListOut[DeliveryOut],
    summary="Deliveries to an endpoint, newest first",
)
def list_deliveries(
    project: Key,
    endpoint: EndpointId,
    _: Admin,
    tx: Tx,
    limit: PageLimit = 50,
    starting_after: DeliveryId | None = None,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> Any:
    with tx.read() as session:
        found = service.get_endpoint(session, get_project(session, project), endpoint)
        page = repository.deliveries(
            session, found.id, limit=limit, starting_after=starting_after, status=status
        )
        return {
            "data": [service.describe_delivery(d, e) for d, e in page.data],
            "has_more": page.has_more,
        }


@router.get(
    "/{endpoint}/deliveries/{delivery}",
    response_model=DeliveryDetailOut,
    summary="One delivery, with its attempts",
)
def get_delivery(project: Key, endpoint: EndpointId, delivery: DeliveryId, _: Admin, tx: Tx) -> Any:
    with tx.read() as session:
        found = service.get_endpoint(session, get_project(session, project), endpoint)
        row, event = service.get_delivery(session, found, delivery)
        return {
            **service.describe_delivery(row, event),
            "attempt_log": service.attempt_log(session, row),
        }


@router.post(
    "/{endpoint}/deliveries/{delivery}/replay",
    response_model=DeliveryOut,
    responses=errors((409, "The endpoint is disabled (`endpoint_disabled`): enable it first.")),
    summary="Send a delivery again",
)
def replay_delivery(
    project: Key, endpoint: EndpointId, delivery: DeliveryId, actor: Admin, tx: Tx, now: Now
) -> Any:
    """Send it again now, whatever became of it, with three days of retries anew; the app
    gets the same `webhook-id` and may tell the repeat by it."""
    with tx.write() as session:
        found = get_project(session, project)
        row, event = service.replay(session, found, endpoint, delivery, actor=actor, now=now)
        return service.describe_delivery(row, event)
