"""HTTP for the client API's questions: `/v1/check` and a tenant's entitlements."""

from typing import Any

from fastapi import APIRouter

from billplane.entitlements import service
from billplane.entitlements.schemas import CheckIn, CheckOut, EntitlementsOut
from billplane.http import ClientToken, CurrentSettings, Now, Tx
from billplane.projects import repository as projects
from billplane.schemas import TenantKey
from billplane.tokens.service import authenticate, tenant_for

router = APIRouter(prefix="/v1", tags=["client"])


# Boolean features carry no numbers: unset fields are left out rather than sent as null.
@router.post(
    "/check",
    response_model=CheckOut,
    response_model_exclude_unset=True,
    summary="Can this tenant do this?",
)
def check(
    body: CheckIn, token: ClientToken, tx: Tx, now: Now, settings: CurrentSettings
) -> dict[str, Any]:
    """Answer before a paid action; never changes usage."""
    with tx.read() as session:
        caller = authenticate(session, token)
        tenant = tenant_for(session, caller, body.tenant)
        answer = service.check(
            session,
            caller.project,
            tenant,
            body.feature,
            body.quantity,
            now,
            settings.billplane_past_due_grace_days,
        )
    if caller.project.first_check_at is None:
        # Once per project, for the setup checklist; its own short write keeps checks read-only.
        with tx.write() as session:
            projects.mark_first_check(session, caller.project.id, now)
    return answer


@router.get(
    "/tenants/{tenant}/entitlements",
    response_model=EntitlementsOut,
    response_model_exclude_unset=True,
    summary="Everything a tenant may do, with usage",
)
def entitlements(
    tenant: TenantKey, token: ClientToken, tx: Tx, now: Now, settings: CurrentSettings
) -> dict[str, Any]:
    with tx.read() as session:
        caller = authenticate(session, token)
        return service.entitlements_of(
            session,
            caller.project,
            tenant_for(session, caller, tenant),
            now,
            settings.billplane_past_due_grace_days,
        )
