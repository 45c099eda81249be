"""HTTP for the client API's questions: `/v1/check` and a tenant's entitlements.

Both sit in front of client apps' paid actions: `async` (no threadpool hop), one statement on
the driver (see `repository`), and the answer written straight to JSON. Entitlements asked with
`Accept: application/jwt` are the same answer signed (`signing`): one more small statement,
paid by those calls only.
"""

from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from billplane import metrics
from billplane.credits import service as credits
from billplane.db import Transactions
from billplane.entitlements import explain as explaining
from billplane.entitlements import service
from billplane.entitlements.repository import Found
from billplane.entitlements.schemas import CheckIn, CheckOut, EntitlementsOut
from billplane.hotpath import Sql
from billplane.http import (
    CLIENT_SECURITY,
    ClientCall,
    Tx,
    client_call,
    errors,
    json_response,
    public_url,
)
from billplane.projects import repository as projects
from billplane.refusals import service as refusals
from billplane.refusals.repository import Noted
from billplane.schemas import TenantKey
from billplane.settings import Settings
from billplane.signing import service as signing
from billplane.signing.repository import SigningView

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
    if access.features:  # a credit-priced feature also answers in credits
        credits.check(sql, access, access.features[0], answer, body.quantity, now)
    if body.explain:
        why: dict[str, Any] = {**explaining.considered(found, access, now, grace_days)}
        if access.features:  # a key the project has (`unknown_feature` has no feature side)
            why |= explaining.feature(access, access.features[0], now)
        answer["explain"] = why
    return found, answer


def _mark_first_check(tx: Transactions, project_id: int, now: datetime) -> None:
    with tx.write() as session:
        projects.mark_first_check(session, project_id, now)


SNAPSHOT = {
    "description": "The entitlements as JSON; with `Accept: application/jwt`, the same answer "
    "signed: a compact JWS (EdDSA, Ed25519) whose claims are the JSON answer plus `iss` (the "
    "server's public URL), `aud` (the project key), `sub` (the tenant key), `iat`, `exp` and "
    "`kid`. Verify it with the keys at `/.well-known/jwks.json`.",
    "content": {
        signing.MEDIA_TYPE: {
            "schema": {"type": "string", "description": "header.payload.signature (RFC 7515)"},
            "example": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiIsInR5cCI6IkpXVCJ9"
            ".eyJ0ZW5hbnQiOiJhY21lLXJlYWx0eSIsIi4uLiI6MX0.c2lnbmF0dXJl",
        }
    },
}
SNAPSHOT_ERRORS = errors(
    (
        503,
        "A signed snapshot was asked for, but BILLPLANE_SECRET_KEY is not set "
        "(`signing_not_configured`) or does not decrypt the current signing key "
        "(`signing_key_unreadable`: rotate the key).",
    )
)


@router.get(
    "/tenants/{tenant}/entitlements",
    response_model=EntitlementsOut,
    response_model_exclude_unset=True,
    responses={200: SNAPSHOT, **TENANT_ERRORS, **SNAPSHOT_ERRORS},
    summary="Everything a tenant may do, with usage",
    openapi_extra=CLIENT_SECURITY,
)
async def entitlements(
    tenant: TenantKey, request: Request, tx: Tx, explain: ExplainFlag = False
) -> Response:
    """Every feature of the project, archived ones included, each with its answer: an archived
    feature's is `allowed: false`, reason `feature_archived`; an archived tenant's are all
    `allowed: false`, reason `tenant_archived`.

    Sent with `Accept: application/jwt`, the answer is a signed snapshot (`application/jwt`) an
    app can keep and verify offline until its `exp` (the project's `snapshot_ttl_seconds`)."""
    call = client_call(request, tx)
    if wants_snapshot(request):
        return await _snapshot(request, call, tenant, explain)
    grace_days = call.settings.billplane_past_due_grace_days
    found, access = await call.tx.hot_read(
        partial(_read, call.token, tenant, None, call.now, grace_days)
    )
    answer = service.entitlements(access, call.now)
    if not explain:
        return json_response(answer)
    return json_response(_explained(answer, found, access, call.now, grace_days))


def _explained(
    answer: service.EntitlementsAnswer,
    found: Found,
    access: service.Access,
    now: datetime,
    grace_days: int,
) -> dict[str, Any]:
    features = [
        {**entitlement, "explain": explaining.feature(access, row, now)}
        for entitlement, row in zip(answer["features"], access.features, strict=True)
    ]
    why = explaining.considered(found, access, now, grace_days)
    return {**answer, "features": features, "explain": why}


def wants_snapshot(request: Request) -> bool:
    """Whether `Accept` names `application/jwt` (with a q above 0): anything else gets JSON.

    The JSON answer's whole cost of snapshots: one pass over the raw headers (a few hundred
    nanoseconds; Starlette's `headers.get` costs three times as much)."""
    for name, value in request.scope["headers"]:
        if name == b"accept":
            return SNAPSHOT_MEDIA in value.lower() and _names_jwt(value.decode("latin-1"))
    return False


SNAPSHOT_MEDIA = signing.MEDIA_TYPE.encode()


def _names_jwt(accept: str) -> bool:
    for choice in accept.lower().split(","):
        media, *parameters = (part.strip() for part in choice.split(";"))
        if media == signing.MEDIA_TYPE:
            return _quality(parameters) > 0
    return False


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 1.0
    return 1.0


async def _snapshot(request: Request, call: ClientCall, tenant: str, explain: bool) -> Response:
    ring: signing.KeyRing = request.app.state.signing_keys
    grace_days = call.settings.billplane_past_due_grace_days
    found, access, view = await call.tx.hot_read(
        partial(_read_for_snapshot, call.token, tenant, call.now, grace_days)
    )
    signing.required(call.settings.billplane_secret_key)  # the caller's token was checked first
    kid, sealed = view.kid, view.sealed
    if kid is None or sealed is None:  # the very first snapshot: no key was needed before
        kid, sealed = await run_in_threadpool(_first_key, call.tx, call.settings, call.now)
    answer = service.entitlements(access, call.now)
    body = _explained(answer, found, access, call.now, grace_days) if explain else answer
    claims = signing.Claims(
        issuer=public_url(request, call.settings),
        audience=found.project_key,
        subject=access.tenant_key,
        issued_at=call.now,
        ttl_seconds=view.ttl_seconds or call.settings.billplane_snapshot_ttl,
    )
    token = signing.snapshot(ring, body, claims, kid, sealed)
    return Response(token, media_type=signing.MEDIA_TYPE)


def _read_for_snapshot(
    token: str | None, tenant: str, now: datetime, grace_days: int, sql: Sql
) -> tuple[Found, service.Access, SigningView]:
    found, access = _read(token, tenant, None, now, grace_days, sql)
    return found, access, signing.signing_of(sql, found.project_id)


def _first_key(tx: Transactions, settings: Settings, now: datetime) -> tuple[str, str]:
    with tx.write() as session:
        key = signing.first_key(session, settings.billplane_secret_key, now)
        return key.kid, key.private_key_sealed


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
