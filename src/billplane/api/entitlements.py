"""HTTP for the client API's questions: `/v1/check` and a tenant's entitlements.

Both sit in front of client apps' paid actions: `async` (no threadpool hop), one statement on
the driver (see `repository`), and the answer written straight to JSON.
"""

from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from billplane import metrics
from billplane.db import Transactions
from billplane.entitlements import explain as explaining
from billplane.entitlements import service
from billplane.entitlements.repository import Found
from billplane.entitlements.schemas import CheckIn, CheckOut, EntitlementsOut
from billplane.hotpath import Sql
from billplane.http import CLIENT_SECURITY, Tx, client_call, errors, json_response
from billplane.projects import repository as projects
from billplane.refusals import service as refusals
from billplane.refusals.repository import Noted
from billplane.schemas import TenantKey

router = APIRouter(prefix="/v1", tags=["client"])

ExplainFlag = Annotated[
    bool,
    Query(
        description="Also say how each answer was reached (`explain`): the subscription "
        "considered, the plan chosen and why, each grant's source, period and counter."
    ),
]

TENANT_ERRORS = errors(
    403, (404, "No tenant with this key in the token's project (`tenant_not_found`).")
)


# Boolean features carry no numbers: unset fields are left out rather than sent as null.
@router.post(
    "/check",
    response_model=CheckOut,
    response_model_exclude_unset=True,
    responses=TENANT_ERRORS,
    summary="Can this tenant do this?",
    openapi_extra=CLIENT_SECURITY,
)
async def check(body: CheckIn, request: Request, tx: Tx) -> Response:
    """Answer before a paid action; never changes usage.

    An archived tenant is refused with reason `tenant_archived`, an archived feature with
    `feature_archived`, whatever the plan grants (the usage numbers are still given)."""
    call = client_call(request, tx)
    grace_days = call.settings.billplane_past_due_grace_days
    found, answer = await call.tx.hot_read(partial(_check, call.token, body, call.now, grace_days))
    metrics.check_decided(answer["reason"])
    refusals.count_check(call.tx, found.project_id, call.now, refused=not answer["allowed"])
    if not answer["allowed"]:
        refused = Noted(
            found.project_id,
            body.tenant,
            body.feature,
            answer["reason"],
            "check",
            body.quantity,
            answer.get("limit"),
            answer.get("used"),
            call.now,
        )
        refusals.note(call.tx, call.settings, refused)
    if found.first_check_pending:
        # Once per project, for the setup checklist; its own short write keeps checks read-only.
        await run_in_threadpool(_mark_first_check, call.tx, found.project_id, call.now)
    return json_response(answer)


def _check(
    token: str | None, body: CheckIn, now: datetime, grace_days: int, sql: Sql
) -> tuple[Found, dict[str, Any]]:
    found, access = _read(token, body.tenant, body.feature, now, grace_days, sql)
    answer: dict[str, Any] = {**service.check(sql, found, access, body.feature, body.quantity, now)}
    if body.explain:
        why: dict[str, Any] = {**explaining.considered(found, access, now, grace_days)}
        if access.features:  # a key the project has (`unknown_feature` has no feature side)
            why |= explaining.feature(access, access.features[0], now)
        answer["explain"] = why
    return found, answer


def _mark_first_check(tx: Transactions, project_id: int, now: datetime) -> None:
    with tx.write() as session:
        projects.mark_first_check(session, project_id, now)


@router.get(
    "/tenants/{tenant}/entitlements",
    response_model=EntitlementsOut,
    response_model_exclude_unset=True,
    responses=TENANT_ERRORS,
    summary="Everything a tenant may do, with usage",
    openapi_extra=CLIENT_SECURITY,
)
async def entitlements(
    tenant: TenantKey, request: Request, tx: Tx, explain: ExplainFlag = False
) -> Response:
    """Every feature of the project, archived ones included, each with its answer: an archived
    feature's is `allowed: false`, reason `feature_archived`; an archived tenant's are all
    `allowed: false`, reason `tenant_archived`."""
    call = client_call(request, tx)
    grace_days = call.settings.billplane_past_due_grace_days
    found, access = await call.tx.hot_read(
        partial(_read, call.token, tenant, None, call.now, grace_days)
    )
    answer = service.entitlements(access, call.now)
    if not explain:
        return json_response(answer)
    features = [
        {**entitlement, "explain": explaining.feature(access, row, call.now)}
        for entitlement, row in zip(answer["features"], access.features, strict=True)
    ]
    why = explaining.considered(found, access, call.now, grace_days)
    return json_response({**answer, "features": features, "explain": why})


def _read(
    token: str | None,
    tenant: str,
    feature: str | None,
    now: datetime,
    grace_days: int,
    sql: Sql,
) -> tuple[Found, service.Access]:
    found = service.lookup(sql, token, tenant, feature, now)
    return found, service.access_of(sql, found, now, grace_days)
