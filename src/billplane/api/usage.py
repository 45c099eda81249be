"""HTTP for recording usage: `/v1/usage` and `/v1/usage/batch`.

Hot path: one read on the driver, then the write goes to the writer, which commits it together
with the writes that arrived at the same time (each answered only after that commit).
"""

from collections import Counter as Tally
from functools import partial
from typing import Annotated, Any, TypedDict

from fastapi import APIRouter, Header, Request, Response
from pydantic import TypeAdapter, ValidationError

from billplane import metrics
from billplane.entitlements import service as entitlements
from billplane.errors import BillplaneError, InvalidInput, PaymentRequired
from billplane.hotpath import Sql
from billplane.http import (
    CLIENT_SECURITY,
    ClientCall,
    Tx,
    client_call,
    error_body,
    errors,
    json_response,
    validation_error,
)
from billplane.refusals import service as refusals
from billplane.refusals.repository import Noted
from billplane.usage import service
from billplane.usage.schemas import BatchIn, BatchOut, UsageIn, UsageOut

router = APIRouter(prefix="/v1", tags=["client"])


class BatchResult(TypedDict):
    """One event's result in a batch's answer (`schemas.BatchResult`): built as a plain dict."""

    status: int
    result: service.UsageAnswer | None
    error: dict[str, Any] | None  # the error envelope's content: code, message and its extras


ERRORS = errors(
    (
        402,
        "`enforce` was asked and the tenant may not use this much (`limit_reached`, "
        "`not_in_plan`, `no_plan`, `subscription_inactive`; `insufficient_credits` when a "
        "credit-priced feature's cost passes the balance, with `pool`, `cost` and `balance`), "
        "or an operator archived the tenant (`tenant_archived`) or the feature "
        "(`feature_archived`); nothing was counted. "
        "Usage without `enforce` is still recorded for archived ones: it reports what happened.",
    ),
    403,
    (
        404,
        "No such tenant (`tenant_not_found`) or feature (`unknown_feature`, the same code a check"
        " answers a typo with) in the project.",
    ),
    (
        409,
        "The idempotency key was used for another tenant, feature or quantity "
        "(`idempotency_key_reused`).",
    ),
)

REPLAYED = {"Idempotent-Replayed": "true"}


@router.post(
    "/usage",
    response_model=UsageOut,
    status_code=201,
    responses={
        200: {
            "model": UsageOut,
            "description": "A repeat of the key: nothing counted. The first answer with "
            "`duplicate: true`, the numbers as they stand now in `current`, and the header "
            "`Idempotent-Replayed: true`.",
        },
        **ERRORS,
    },
    summary="Record usage, exactly once per idempotency key",
    openapi_extra=CLIENT_SECURITY,
)
async def record_usage(
    body: UsageIn,
    request: Request,
    tx: Tx,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """With `enforce: true`, the check and the count are one atomic step (402 when over)."""
    call = client_call(request, tx)
    try:
        recorded = await _record(call, body, idempotency_key)
    except BillplaneError as refused:
        metrics.usage_refused(refused.code)
        raise
    metrics.usage_recorded(recorded.created)
    if recorded.created:
        return json_response(recorded.body, 201)
    # Stripe's word for an idempotent repeat: the body is the first answer (plus `current`).
    return json_response(recorded.body, 200, headers=REPLAYED)


async def _record(call: ClientCall, body: UsageIn, header_key: str | None) -> service.Recorded:
    now, grace_days = call.now, call.settings.billplane_past_due_grace_days
    project: list[int] = []  # the token's project, once read: a 402 is noted under it

    def read(sql: Sql) -> service.Write | service.Recorded:
        found = entitlements.lookup(sql, call.token, body.tenant, body.feature, now)
        project.append(found.project_id)
        request = _usage_request(body, header_key)
        return service.prepare(sql, found, request, now, grace_days)

    try:
        prepared = await call.tx.hot_read(read)
        if isinstance(prepared, service.Recorded):
            return prepared
        outcome: service.Recorded | BillplaneError = await call.tx.hot_write(
            partial(service.record, write=prepared), service.lock_order(prepared)
        )
        if isinstance(outcome, BillplaneError):
            raise outcome
    except PaymentRequired as refused:
        _note_refused(call, project[0], body, refused.code, refused.extra)
        raise
    return outcome


def _note_refused(
    call: ClientCall, project_id: int, event: UsageIn, code: str, numbers: dict[str, Any]
) -> None:
    """Keep a 402 in the refusal log (see `refusals`)."""
    refused = Noted(
        project_id,
        event.tenant,
        event.feature,
        code,
        "usage",
        event.quantity,
        numbers.get("limit"),
        numbers.get("used"),
        call.now,
    )
    refusals.note(call.tx, call.settings, refused)


@router.post(
    "/usage/batch",
    response_model=BatchOut,
    summary="Record up to 1,000 usage events",
    openapi_extra=CLIENT_SECURITY,
)
async def record_batch(body: BatchIn, request: Request, tx: Tx) -> Response:
    """Each event is judged on its own, in order: one bad event never loses (or holds back)
    the others, and a batch that crosses a limit admits exactly what fits.

    One read for every tenant and feature the batch names, then one write for all its events.
    """
    results: list[BatchResult | None] = [None] * len(body.events)
    events = _validated(body.events, results)
    call = client_call(request, tx)
    token, now, grace_days = call.token, call.now, call.settings.billplane_past_due_grace_days
    project: list[int] = []  # the token's project, once read: 402s are noted under it

    def read(sql: Sql) -> tuple[list[int], service.BatchWrite | None]:
        writes: list[service.Write] = []
        indexes: list[int] = []
        tenants = sorted({event.tenant for _, event in events})
        features = sorted({event.feature for _, event in events})
        batch = entitlements.lookup_many(sql, token, tenants, features, now)
        project.append(batch.token.project_id)
        accesses: dict[str, entitlements.Access] = {}
        for index, event in events:
            try:
                found = batch.tenant(event.tenant)
                access = accesses.get(event.tenant)
                if access is None:
                    access = accesses[event.tenant] = entitlements.access_of(
                        sql, found, now, grace_days
                    )
                request = _usage_request(event, None)
                prepared = service.prepare(sql, found, request, now, grace_days, access)
            except BillplaneError as exc:
                results[index] = _refused(exc)
                continue
            if isinstance(prepared, service.Recorded):
                results[index] = _done(prepared)
            else:
                indexes.append(index)
                writes.append(prepared)
        return indexes, service.BatchWrite(sql, writes) if writes else None

    try:
        indexes, job = await tx.hot_read(read)
    except BillplaneError as refused:  # the token: every event refused alike
        metrics.usage_refused(refused.code, len(results))
        raise
    if job is not None:
        outcomes = await tx.hot_write(job, min(service.lock_order(w) for w in job.writes))
        for index, outcome in zip(indexes, outcomes, strict=True):
            results[index] = (
                _refused(outcome) if isinstance(outcome, BillplaneError) else _done(outcome)
            )
    metrics.usage_counted(_outcomes(results))
    for index, event in events:
        result = results[index]
        if result is not None and result["status"] == 402 and result["error"] is not None:
            _note_refused(call, project[0], event, result["error"]["code"], result["error"])
    return json_response({"data": results})


def _outcomes(results: list[BatchResult | None]) -> Tally[tuple[str, str]]:
    """A batch's events by (outcome, reason), for `/metrics`."""
    tally: Tally[tuple[str, str]] = Tally()
    for result in results:
        if result is None:
            continue
        if result["error"] is not None:
            tally[metrics.REFUSED, result["error"]["code"]] += 1
        else:
            tally[metrics.RECORDED if result["status"] == 201 else metrics.DUPLICATE, ""] += 1
    return tally


# A batch's events validated in one call; only a batch with a bad event is validated one by one.
_EVENTS = TypeAdapter(list[UsageIn])


def _validated(raw: list[Any], results: list[BatchResult | None]) -> list[tuple[int, UsageIn]]:
    """The events that are valid, with their places; each invalid one's 422 lands in `results`."""
    try:
        return list(enumerate(_EVENTS.validate_python(raw)))
    except ValidationError:
        pass
    events: list[tuple[int, UsageIn]] = []
    for index, event in enumerate(raw):
        try:
            events.append((index, UsageIn.model_validate(event)))
        except ValidationError as exc:
            results[index] = _failed(422, validation_error(exc.errors(), body=event)["error"])
    return events


def _done(recorded: service.Recorded) -> BatchResult:
    return {"status": 201 if recorded.created else 200, "result": recorded.body, "error": None}


def _refused(exc: BillplaneError) -> BatchResult:
    return _failed(exc.status, error_body(exc.code, exc.message, **exc.extra)["error"])


def _failed(status: int, error: dict[str, Any]) -> BatchResult:
    return {"status": status, "result": None, "error": error}


def _usage_request(body: UsageIn, header_key: str | None) -> service.UsageRequest:
    key = body.idempotency_key or header_key
    if not key:
        raise InvalidInput(
            "An idempotency_key is required (in the body or the Idempotency-Key header), so a "
            "retried request is never counted twice.",
            extra={"param": "idempotency_key"},
        )
    return service.UsageRequest(
        feature=body.feature,
        quantity=body.quantity,
        idempotency_key=key,
        enforce=body.enforce,
        timestamp=body.timestamp,
    )
