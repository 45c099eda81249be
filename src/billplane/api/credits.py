"""HTTP for credits: the operator's pools, prices, allowances and grants (admin API), and a
tenant's balances (client API)."""

from datetime import datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response

from billplane.credits import reservations, service
from billplane.credits.schemas import (
    AllowanceIn,
    BalancesOut,
    FinalizeIn,
    GrantIn,
    GrantOut,
    PoolIn,
    PoolOut,
    PoolPatch,
    ReservationIn,
    ReservationOut,
)
from billplane.entitlements import service as entitlements
from billplane.errors import BillplaneError
from billplane.hotpath import Sql
from billplane.http import (
    CLIENT_SECURITY,
    Admin,
    Now,
    Tx,
    client_call,
    errors,
    json_response,
)
from billplane.paging import ListOut
from billplane.projects.service import get_project
from billplane.schemas import Key, TenantKey

router = APIRouter(prefix="/admin/api/projects/{project}", tags=["admin"])
client = APIRouter(prefix="/v1", tags=["client"])

POOL_ERRORS = errors(
    (404, "No such project, credit pool (`pool_not_found`), plan or feature."),
    (
        409,
        "A pool with this key exists (`already_exists`), or a feature named is priced in "
        "another pool.",
    ),
    (400, "A feature named is an on/off feature (only counted features cost credits)."),
)


@router.post("/credit-pools", response_model=PoolOut, status_code=201, responses=POOL_ERRORS)
def create_pool(project: Key, body: PoolIn, actor: Admin, tx: Tx, now: Now) -> Any:
    """A pool of credits (e.g. `credits`) and what each counted feature costs in it."""
    with tx.write() as session:
        found = get_project(session, project)
        costs: dict[str, int | None] = {**body.costs}
        packs: dict[str, int | None] = {**body.packs}
        return service.create_pool(
            session,
            found,
            key=body.key,
            name=body.name,
            costs=costs,
            packs=packs,
            actor=actor,
            now=now,
        )


@router.get("/credit-pools", response_model=ListOut[PoolOut])
def list_pools(project: Key, _: Admin, tx: Tx) -> Any:
    with tx.read() as session:
        found = get_project(session, project)
        return {"data": service.list_pools(session, found), "has_more": False}


@router.patch("/credit-pools/{pool}", response_model=PoolOut, responses=POOL_ERRORS)
def update_pool(project: Key, pool: Key, body: PoolPatch, actor: Admin, tx: Tx, now: Now) -> Any:
    """Rename the pool or change prices (a price of `null` takes it away)."""
    with tx.write() as session:
        found = get_project(session, project)
        return service.update_pool(
            session,
            found,
            pool,
            name=body.name,
            costs=body.costs,
            packs=body.packs,
            actor=actor,
            now=now,
        )


@router.put(
    "/credit-pools/{pool}/allowances/{plan}",
    response_model=PoolOut,
    responses=errors(
        (404, "No such project, credit pool (`pool_not_found`) or plan (`plan_not_found`)."),
        (400, "`rollover` above `grant`, or `overage` not a metered feature of the project."),
    ),
)
def set_allowance(
    project: Key, pool: Key, plan: Key, body: AllowanceIn, actor: Admin, tx: Tx, now: Now
) -> Any:
    """What the plan gives of the pool each period, its rollover and its overage."""
    with tx.write() as session:
        found = get_project(session, project)
        return service.set_allowance(
            session,
            found,
            pool,
            plan,
            amount=body.grant,
            reset=body.reset,
            rollover=body.rollover_cap(),
            overage=body.overage,
            actor=actor,
            now=now,
        )


@router.post(
    "/tenants/{tenant}/credit-grants",
    response_model=GrantOut,
    status_code=201,
    responses={
        200: {"model": GrantOut, "description": "A repeat of the key: nothing granted again."},
        **errors(
            (404, "No such project, tenant (`tenant_not_found`) or pool (`pool_not_found`)."),
            (409, "The idempotency key was used for another amount (`idempotency_key_reused`)."),
            (400, "`expires_at` lies in the past."),
        ),
    },
)
def grant_credits(
    project: Key, tenant: TenantKey, body: GrantIn, actor: Admin, tx: Tx, now: Now
) -> Response:
    """Give a tenant credits, with a reason: a bucket of its own (source `grant`) and a
    ledger row, and an audit entry."""
    with tx.write() as session:
        found = get_project(session, project)
        granted, created = service.grant(session, found, tenant, body, actor=actor, now=now)
    return json_response(granted, 201 if created else 200)


@client.get(
    "/tenants/{tenant}/balances",
    response_model=BalancesOut,
    responses=errors(
        403, (404, "No tenant with this key in the token's project (`tenant_not_found`).")
    ),
    summary="A tenant's credits: balances, buckets and ledger",
    openapi_extra=CLIENT_SECURITY,
)
async def balances(tenant: TenantKey, request: Request, tx: Tx) -> Response:
    """Every credit pool of the project: the usable balance, the buckets in deduction order
    (soonest-expiring first) and the newest movements of the ledger. The balance is the sum of
    the live buckets, and each bucket's `remaining` the sum of its ledger rows. The current
    period's allowance is made into its bucket first, if it was not yet, and expired
    reservations give back what they held."""
    call = client_call(request, tx)
    grace_days = call.settings.billplane_past_due_grace_days
    read = partial(_balances, call.token, tenant, call.now, grace_days)
    answer, due = await call.tx.hot_read(read)
    if due:
        settle = partial(service.settle_due, pools=due, now=call.now)
        await call.tx.hot_write(settle, service.lock_order(due[0].tenant_id))
        answer, _ = await call.tx.hot_read(read)
    return json_response(answer)


def _balances(
    token: str | None, tenant: str, now: datetime, grace_days: int, sql: Sql
) -> tuple[dict[str, Any], list[service.PoolView]]:
    found = entitlements.lookup(sql, token, tenant, None, now)
    access = entitlements.access_of(sql, found, now, grace_days)
    due = service.movements_due(sql, access, found.project_id, now)
    return service.balances(sql, access, found.project_id, now), due


RESERVATION_ERRORS = errors(
    (400, "The feature costs no credits (`invalid_request`)."),
    (
        402,
        "The hold does not fit the balance (`insufficient_credits`, with `pool`, `cost`, "
        "`balance`; a hold never uses overage), or the plan does not allow the feature "
        "(`not_in_plan`, `limit_reached`, ...). Nothing is held.",
    ),
    403,
    (404, "No such tenant, feature (`unknown_feature`) or reservation."),
    (
        409,
        "The idempotency key was used for another reservation (`idempotency_key_reused`), or "
        "the reservation is settled another way (`reservation_settled`) or expired "
        "(`reservation_expired`).",
    ),
)


@client.post(
    "/reservations",
    response_model=ReservationOut,
    status_code=201,
    responses={
        200: {"model": ReservationOut, "description": "A repeat of the key: nothing held again."},
        **RESERVATION_ERRORS,
    },
    summary="Hold credits for a long action",
    openapi_extra=CLIENT_SECURITY,
)
async def reserve(body: ReservationIn, request: Request, tx: Tx) -> Response:
    """Take the estimated cost out of the balance now (402 if it does not fit), until the
    action ends (`finalize` with what it used) or not (`release`), or `expires_in` seconds
    pass (it releases itself). Direct usage can never spend what is held."""
    call = client_call(request, tx)
    now, grace_days = call.now, call.settings.billplane_past_due_grace_days

    def read(sql: Sql) -> tuple[entitlements.Access, service.Priced]:
        found = entitlements.lookup(sql, call.token, body.tenant, body.feature, now)
        access = entitlements.access_of(sql, found, now, grace_days)
        if not access.features:
            raise entitlements.unknown_feature(sql, found, body.feature)
        return access, reservations.price_of(access, body.feature, body.quantity, now)

    access, price = await call.tx.hot_read(read)
    outcome = await call.tx.hot_write(
        partial(
            reservations.reserve,
            price=price,
            access=access,
            feature=(access.features[0].id, body.feature),
            quantity=body.quantity,
            key=body.idempotency_key,
            ttl=body.expires_in,
            now=now,
        ),
        service.lock_order(access.tenant_id),
    )
    if isinstance(outcome, BillplaneError):
        raise outcome
    answer, created = outcome
    return json_response(answer, 201 if created else 200)


@client.post(
    "/reservations/{reservation}/finalize",
    response_model=ReservationOut,
    responses=RESERVATION_ERRORS,
    summary="Settle a reservation with what the action used",
    openapi_extra=CLIENT_SECURITY,
)
async def finalize(reservation: Key, body: FinalizeIn, request: Request, tx: Tx) -> Response:
    """Charge what the action used: less than held gives the rest back to the buckets it came
    from; more takes the difference (402 if it does not fit, the hold stays). Finalizing again
    with the same quantity answers the same; with another, 409 `reservation_settled`."""
    return await _settle(reservation, body.quantity, request, tx)


@client.post(
    "/reservations/{reservation}/release",
    response_model=ReservationOut,
    responses=RESERVATION_ERRORS,
    summary="Give a reservation's credits back",
    openapi_extra=CLIENT_SECURITY,
)
async def release(reservation: Key, request: Request, tx: Tx) -> Response:
    """Everything held goes back to the buckets it came from. Idempotent (an expired one is
    released already); a finalized one answers 409 `reservation_settled`."""
    return await _settle(reservation, None, request, tx)


async def _settle(public_id: str, quantity: int | None, request: Request, tx: Tx) -> Response:
    call = client_call(request, tx)
    now, grace_days = call.now, call.settings.billplane_past_due_grace_days

    def read(sql: Sql) -> tuple[entitlements.Access, str]:
        tenant_id, tenant, feature = reservations.whose(sql, call.token, public_id)
        found = entitlements.lookup(sql, call.token, tenant, feature, now)
        access = entitlements.access_of(sql, found, now, grace_days)
        reservations.require_owner(access, tenant_id, public_id)
        return access, feature

    access, feature = await call.tx.hot_read(read)
    outcome = await call.tx.hot_write(
        partial(
            reservations.settle,
            public_id=public_id,
            access=access,
            feature_key=feature,
            final_quantity=quantity,
            now=now,
        ),
        service.lock_order(access.tenant_id),
    )
    if isinstance(outcome, BillplaneError):
        raise outcome
    return json_response(outcome)
