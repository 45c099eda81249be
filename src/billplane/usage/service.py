"""Recording usage: exactly once per idempotency key, and never over a limit when enforced."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from billplane.entitlements import service as entitlements
from billplane.errors import FeatureNotFound, IdempotencyKeyReused, InvalidInput, PaymentRequired
from billplane.models import Feature, Project, Tenant, UsageEvent
from billplane.projects import repository as projects
from billplane.usage import repository

# A client clock may run a little fast; anything further ahead is a bug on the caller's side.
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class UsageRequest:
    feature: str
    quantity: int
    idempotency_key: str
    enforce: bool = False
    timestamp: datetime | None = None


@dataclass(frozen=True)
class Recorded:
    body: dict[str, Any]
    created: bool  # False when the key had been seen: nothing was counted this time


def record_usage(
    session: Session,
    project: Project,
    tenant: Tenant,
    request: UsageRequest,
    now: datetime,
    grace_days: int,
) -> Recorded:
    feature = _countable_feature(session, project, request.feature)
    if request.timestamp is not None and request.timestamp > now + FUTURE_TOLERANCE:
        raise InvalidInput("'timestamp' lies in the future.", extra={"param": "timestamp"})
    earlier = repository.event_by_key(session, tenant.id, request.idempotency_key)
    if earlier is not None:
        return _repeat(earlier, feature, request)

    access = entitlements.resolve_access(session, project, tenant, now, grace_days, feature.key)
    period = entitlements.period_of(access, feature, now)
    assert period is not None  # a countable feature always has one
    grant = access.grants.get(feature.id)
    limit = grant.limit if grant and grant.enabled and feature.type == "limit" else None
    if request.enforce:
        used = entitlements.used_now(session, access, [feature], now).get(feature.id, 0)
        decision = entitlements.decide(access, feature, used, request.quantity, now)
        if not decision.allowed:
            raise _refusal(decision, feature, tenant, request)

    event_id = repository.claim_idempotency_key(
        session,
        tenant_id=tenant.id,
        feature_id=feature.id,
        key=request.idempotency_key,
        quantity=request.quantity,
        period_key=period.key,
        occurred_at=request.timestamp or now,
        now=now,
    )
    if event_id is None:  # a concurrent request with the same key won the race
        winner = repository.event_by_key(session, tenant.id, request.idempotency_key)
        assert winner is not None
        return _repeat(winner, feature, request)

    total = repository.add_to_counter(
        session,
        tenant_id=tenant.id,
        feature_id=feature.id,
        period_key=period.key,
        quantity=request.quantity,
        limit=limit if request.enforce else None,
    )
    if total is None:
        # Another request used the room between our read and our write; the transaction is
        # rolled back by the edge, so the claimed key is released too.
        decision = entitlements.decide(access, feature, limit or 0, request.quantity, now)
        raise _refusal(decision, feature, tenant, request)

    body = {
        "tenant": tenant.key,
        "feature": feature.key,
        "idempotency_key": request.idempotency_key,
        "quantity": request.quantity,
        "recorded": True,
        "duplicate": False,
        "used": total,
        "limit": limit,
        "remaining": None if limit is None else max(limit - total, 0),
        "resets_at": period.resets_at.isoformat() if period.resets_at else None,
    }
    repository.save_response(session, event_id, body)
    return Recorded(body, created=True)


def _countable_feature(session: Session, project: Project, key: str) -> Feature:
    feature = projects.get_feature(session, project.id, key)
    if feature is None:
        raise FeatureNotFound(f"No feature '{key}' in project '{project.key}'.")
    if feature.type == "boolean":
        raise InvalidInput(
            f"Feature '{key}' is an on/off feature; only limit and metered features count usage.",
            extra={"param": "feature"},
        )
    return feature


def _repeat(earlier: UsageEvent, feature: Feature, request: UsageRequest) -> Recorded:
    if earlier.feature_id != feature.id or earlier.quantity != request.quantity:
        raise IdempotencyKeyReused(
            f"Idempotency key '{request.idempotency_key}' was already used for a different "
            "feature or quantity.",
            extra={"param": "idempotency_key"},
        )
    return Recorded({**earlier.response, "duplicate": True}, created=False)


def _refusal(
    decision: entitlements.Decision, feature: Feature, tenant: Tenant, request: UsageRequest
) -> PaymentRequired:
    messages = {
        "limit_reached": f"Recording {request.quantity} more would pass the limit of "
        f"{decision.limit} for '{feature.key}'.",
        "not_in_plan": f"Tenant '{tenant.key}''s plan does not include '{feature.key}'.",
        "no_plan": f"Tenant '{tenant.key}' has no plan.",
        "subscription_inactive": f"Tenant '{tenant.key}''s subscription is not active.",
    }
    extra = {
        "limit": decision.limit,
        "used": decision.used,
        "remaining": decision.remaining,
    }
    return PaymentRequired(decision.reason, messages[decision.reason], extra=extra)
