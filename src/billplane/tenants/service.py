"""Creating, changing and describing tenants."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy.orm import Session

from billplane.appwebhooks import outbox
from billplane.audit import service as audit
from billplane.entitlements import service as entitlements
from billplane.errors import AlreadyExists, TenantNotFound
from billplane.models import Project, Tenant
from billplane.plans import service as plans
from billplane.plans.schemas import GrantSpec, grant_specs
from billplane.projects import repository as projects
from billplane.schemas import Status
from billplane.tenants import repository
from billplane.tenants.schemas import TenantPatch
from billplane.tokens import service as tokens
from billplane.usage import repository as usage


@dataclass(frozen=True)
class TenantChanges:
    name: str | None = None
    email: str | None = None
    overrides: dict[str, GrantSpec] | None = None
    status: Status | None = None


def changes_from(body: TenantPatch) -> TenantChanges:
    """An edit as the admin API and the CLI take it: what is left out is kept."""
    return TenantChanges(
        name=body.name,
        email=body.email,
        overrides=None if body.overrides is None else grant_specs(body.overrides),
        status=body.status,
    )


def tenant_for(session: Session, caller: tokens.Caller, tenant_key: str) -> Tenant:
    """The caller's tenant with this key: 403 outside a scoped token's tenant, 404 if unknown."""
    if caller.tenant is not None:
        if caller.tenant.key != tenant_key:
            raise tokens.other_tenant()
        return caller.tenant
    return get_tenant(session, caller.project, tenant_key)


def get_tenant(session: Session, project: Project, key: str) -> Tenant:
    tenant = repository.get_tenant(session, project.id, key)
    if tenant is None:
        raise TenantNotFound(f"No tenant '{key}' in project '{project.key}'.")
    return tenant


class TenantDescription(TypedDict):
    """A tenant as the admin API answers it (`schemas.TenantOut`) and the audit trail keeps it."""

    key: str
    name: str | None
    email: str | None
    stripe_customer_id: str | None
    overrides: dict[str, GrantSpec]
    status: Status
    created_at: datetime


class SubscriptionDetail(TypedDict):
    stripe_subscription_id: str
    status: str
    stripe_price_id: str | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None


class UsageLine(TypedDict):
    feature: str | None
    quantity: int
    idempotency_key: str
    occurred_at: datetime
    recorded_at: datetime


class TenantDetail(TenantDescription):
    """What an operator looks at (`schemas.TenantDetailOut`)."""

    plan: str | None
    subscription: SubscriptionDetail | None
    entitlements: list[entitlements.FeatureAnswer]
    recent_usage: list[UsageLine]


def describe(session: Session, project: Project, tenant: Tenant) -> TenantDescription:
    features = list(projects.features_of(session, project.id))
    return {
        "key": tenant.key,
        "name": tenant.name,
        "email": tenant.email,
        "stripe_customer_id": tenant.stripe_customer_id,
        "overrides": plans.render_grants(repository.overrides_of(session, tenant.id), features),
        "status": tenant.status,
        "created_at": tenant.created_at,
    }


def create_tenant(
    session: Session,
    project: Project,
    *,
    key: str,
    name: str | None,
    email: str | None,
    actor: str,
    now: datetime,
) -> Tenant:
    if repository.get_tenant(session, project.id, key) is not None:
        raise AlreadyExists(
            f"Project '{project.key}' already has a tenant '{key}'.", extra={"param": "key"}
        )
    tenant = Tenant(
        project_id=project.id,
        key=key,
        name=name,
        email=email,
        status="active",
        created_at=now,
        updated_at=now,
    )
    repository.add(session, tenant)
    audit.record(
        session,
        actor=actor,
        action="tenant.create",
        target=f"tenant:{project.key}/{key}",
        project_id=project.id,
        after={"key": key, "name": name, "email": email},
        now=now,
    )
    return tenant


def update_tenant(
    session: Session,
    project: Project,
    key: str,
    changes: TenantChanges,
    *,
    actor: str,
    now: datetime,
    grace_days: int,
) -> Tenant:
    """Apply the edit; if it altered what the tenant may do (overrides, archiving), its app
    hears of it (`tenant.entitlements.updated`), `grace_days` telling whether a past-due
    subscription still grants."""
    tenant = get_tenant(session, project, key)
    before = _jsonable(describe(session, project, tenant))
    with outbox.entitlements_change(
        session, project, now=now, grace_days=grace_days, tenant_ids=[tenant.id]
    ):
        if changes.overrides is not None:
            grants = plans.parse_grants(session, project, changes.overrides)
            repository.replace_overrides(session, tenant.id, grants)
        if changes.name is not None:
            tenant.name = changes.name
        if changes.email is not None:
            tenant.email = changes.email
        # Archiving keeps the subscription, usage and overrides: checks are refused with
        # `tenant_archived` until the tenant is restored.
        tenant.status = changes.status or tenant.status
        tenant.updated_at = now
        session.flush()
    audit.record(
        session,
        actor=actor,
        action="tenant.update",
        target=f"tenant:{project.key}/{key}",
        project_id=project.id,
        before=before,
        after=_jsonable(describe(session, project, tenant)),
        now=now,
    )
    return tenant


def detail(
    session: Session, project: Project, tenant: Tenant, now: datetime, grace_days: int
) -> TenantDetail:
    """Tenant, subscription, entitlements and recent usage: what an operator looks at."""
    ents = entitlements.entitlements_of(session, project, tenant, now, grace_days)
    subscription = repository.current_subscription(session, tenant.id)
    features = {f.id: f.key for f in projects.features_of(session, project.id)}
    return {
        **describe(session, project, tenant),
        "plan": ents["plan"],
        "subscription": None
        if subscription is None
        else {
            "stripe_subscription_id": subscription.stripe_subscription_id,
            "status": subscription.status,
            "stripe_price_id": subscription.stripe_price_id,
            "current_period_start": subscription.current_period_start,
            "current_period_end": subscription.current_period_end,
            "cancel_at_period_end": subscription.cancel_at_period_end,
            "trial_end": subscription.trial_end,
        },
        "entitlements": ents["features"],
        "recent_usage": [
            {
                "feature": features.get(e.feature_id),
                "quantity": e.quantity,
                "idempotency_key": e.idempotency_key,
                "occurred_at": e.occurred_at,
                "recorded_at": e.recorded_at,
            }
            for e in usage.recent_events(session, tenant.id)
        ],
    }


def _jsonable(described: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in described.items()}
