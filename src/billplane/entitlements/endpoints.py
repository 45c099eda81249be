"""HTTP for the client API's questions: `/v1/check` and a tenant's entitlements."""

from typing import Any

from fastapi import APIRouter

from billplane.entitlements import service
from billplane.entitlements.schemas import CheckIn, CheckOut, EntitlementsOut
from billplane.http import CurrentSettings, Now, ReadCaller, ReadSession, Transactions
from billplane.projects import repository as projects
from billplane.schemas import TenantKey
from billplane.tokens.service import tenant_for

router = APIRouter(prefix="/v1", tags=["client"])


@router.post("/check", response_model=CheckOut, summary="Can this tenant do this?")
def check(
    body: CheckIn,
    caller: ReadCaller,
    session: ReadSession,
    now: Now,
    settings: CurrentSettings,
    transactions: Transactions,
) -> dict[str, Any]:
    """Answer before a paid action; never changes usage."""
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
        with transactions() as writer:
            projects.mark_first_check(writer, caller.project.id, now)
    return answer


@router.get(
    "/tenants/{tenant}/entitlements",
    response_model=EntitlementsOut,
    summary="Everything a tenant may do, with usage",
)
def entitlements(
    tenant: TenantKey,
    caller: ReadCaller,
    session: ReadSession,
    now: Now,
    settings: CurrentSettings,
) -> dict[str, Any]:
    found = tenant_for(session, caller, tenant)
    return service.entitlements_of(
        session, caller.project, found, now, settings.billplane_past_due_grace_days
    )
