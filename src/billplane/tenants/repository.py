"""All SQL about tenants, their overrides and their subscriptions."""

from sqlalchemy import case, delete, select
from sqlalchemy.orm import Session

from billplane.entitlements.rules import Grant
from billplane.models import Subscription, Tenant, TenantOverride
from billplane.paging import Page, page_of
from billplane.stripe.facts import ENDED_STATUSES


def get_tenant(session: Session, project_id: int, key: str) -> Tenant | None:
    return session.scalar(select(Tenant).where(Tenant.project_id == project_id, Tenant.key == key))


def list_tenants(
    session: Session, project_id: int, *, limit: int, starting_after: str | None
) -> Page[Tenant]:
    query = select(Tenant).where(Tenant.project_id == project_id)
    return page_of(session, query, Tenant.key, limit, starting_after)


def add(session: Session, row: Tenant | Subscription) -> None:
    session.add(row)
    session.flush()


def current_subscription(session: Session, tenant_id: int) -> Subscription | None:
    """The tenant's live subscription (billplane allows one per tenant), else its newest.

    Live first: news of an old, ended subscription may be stored after its successor's (Stripe
    does not order deliveries), and must not hide it.
    """
    ended = case((Subscription.status.in_(ENDED_STATUSES), 1), else_=0)
    return session.scalar(
        select(Subscription)
        .where(Subscription.tenant_id == tenant_id)
        .order_by(ended, Subscription.created_at.desc(), Subscription.id.desc())
        .limit(1)
    )


def overrides_of(session: Session, tenant_id: int) -> dict[int, Grant]:
    rows = session.execute(
        select(
            TenantOverride.feature_id,
            TenantOverride.enabled,
            TenantOverride.limit,
            TenantOverride.reset,
        ).where(TenantOverride.tenant_id == tenant_id)
    )
    return {row.feature_id: Grant(row.enabled, row.limit, row.reset) for row in rows}


def replace_overrides(session: Session, tenant_id: int, grants: dict[int, Grant]) -> None:
    session.execute(delete(TenantOverride).where(TenantOverride.tenant_id == tenant_id))
    session.add_all(
        TenantOverride(
            tenant_id=tenant_id, feature_id=fid, enabled=g.enabled, limit=g.limit, reset=g.reset
        )
        for fid, g in grants.items()
    )
    session.flush()
