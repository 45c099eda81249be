"""HTTP for recording usage: `/v1/usage` and `/v1/usage/batch`."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import ValidationError

from billplane.errors import BillplaneError, InvalidInput
from billplane.http import (
    ClientToken,
    CurrentSettings,
    Now,
    Transactions,
    Tx,
    error_body,
    validation_error,
)
from billplane.tokens.service import Caller, authenticate, tenant_for
from billplane.usage import service
from billplane.usage.schemas import BatchIn, BatchOut, UsageIn, UsageOut

router = APIRouter(prefix="/v1", tags=["client"])

ERRORS: dict[int | str, dict[str, Any]] = {
    402: {"description": "enforce was asked and the tenant may not use this much"},
    409: {"description": "the idempotency key was used for a different feature or quantity"},
}


@router.post(
    "/usage",
    response_model=UsageOut,
    status_code=201,
    responses={200: {"model": UsageOut, "description": "a repeat: nothing counted"}, **ERRORS},
    summary="Record usage, exactly once per idempotency key",
)
def record_usage(
    body: UsageIn,
    response: Response,
    token: ClientToken,
    tx: Tx,
    now: Now,
    settings: CurrentSettings,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    """With `enforce: true`, the check and the count are one atomic step (402 when over)."""
    with tx.write() as session:
        caller = authenticate(session, token)
        recorded = service.record_usage(
            session,
            caller.project,
            tenant_for(session, caller, body.tenant),
            _usage_request(body, idempotency_key),
            now,
            settings.billplane_past_due_grace_days,
        )
    response.status_code = 201 if recorded.created else 200
    return recorded.body


@router.post("/usage/batch", response_model=BatchOut, summary="Record up to 1,000 usage events")
def record_batch(
    body: BatchIn,
    token: ClientToken,
    tx: Tx,
    now: Now,
    settings: CurrentSettings,
) -> dict[str, Any]:
    """Each event is its own transaction: one bad event never loses (or holds back) the others."""
    with tx.read() as session:
        caller = authenticate(session, token)
    return {"data": [_record_one(tx, caller, event, now, settings) for event in body.events]}


def _record_one(
    tx: Transactions,
    caller: Caller,
    raw: Any,
    now: datetime,
    settings: CurrentSettings,
) -> dict[str, Any]:
    try:
        event = UsageIn.model_validate(raw)
        with tx.write() as session:
            recorded = service.record_usage(
                session,
                caller.project,
                tenant_for(session, caller, event.tenant),
                _usage_request(event, None),
                now,
                settings.billplane_past_due_grace_days,
            )
    except ValidationError as exc:
        return {"status": 422, "error": validation_error(exc.errors(), body=raw)["error"]}
    except BillplaneError as exc:
        return {
            "status": exc.status,
            "error": error_body(exc.code, exc.message, **exc.extra)["error"],
        }
    return {"status": 201 if recorded.created else 200, "result": recorded.body}


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
