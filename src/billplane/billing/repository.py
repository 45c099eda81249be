"""All SQL of the billing domain: subscriptions, invoices and tenants found by Stripe ids.

Every change to a tenant's billing state first locks the tenant's row (`lock_tenant`, FOR
UPDATE on PostgreSQL) and only then reads the rows it changes (`fresh=True`). Deliveries about
one tenant so apply one after the other, always in the same lock order: they can neither
deadlock nor insert the same subscription twice. SQLite has one writer at a time anyway.
"""

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from billplane.errors import present
from billplane.models import Invoice, Plan, Project, Subscription, Tenant
from billplane.stripe.facts import ENDED_STATUSES

Row = TypeVar("Row")


def _one(session: Session, query: Select[Row], fresh: bool) -> Row | None:
    # `fresh`: read under the tenant's lock, overwriting what the session remembers, so that
    # what a concurrent transaction committed meanwhile is seen.
    return session.scalar(query.execution_options(populate_existing=True) if fresh else query)


def lock_tenant(session: Session, tenant_id: int) -> Tenant:
    found = session.get(Tenant, tenant_id, with_for_update=True, populate_existing=True)
    return present(found, f"tenant {tenant_id}")  # rows referencing it are deleted with it


def subscription(
    session: Session, stripe_subscription_id: str, *, fresh: bool = False
) -> Subscription | None:
    query = select(Subscription).where(
        Subscription.stripe_subscription_id == stripe_subscription_id
    )
    return _one(session, query, fresh)


def live_subscriptions(session: Session, tenant_id: int) -> Sequence[Subscription]:
    query = select(Subscription).where(
        Subscription.tenant_id == tenant_id, Subscription.status.not_in(ENDED_STATUSES)
    )
    return session.scalars(query.execution_options(populate_existing=True)).all()


def subscriptions_of_customer(
    session: Session, customer_id: str, *, fresh: bool = False
) -> Sequence[Subscription]:
    query = select(Subscription).where(Subscription.stripe_customer_id == customer_id)
    if fresh:
        query = query.execution_options(populate_existing=True)
    return session.scalars(query.order_by(Subscription.id)).all()


def add(session: Session, row: Subscription | Invoice) -> None:
    session.add(row)
    session.flush()


def tenant_by_customer(session: Session, customer_id: str) -> Tenant | None:
    return _one(session, select(Tenant).where(Tenant.stripe_customer_id == customer_id), False)


def tenant_by_keys(session: Session, project_key: str, tenant_key: str) -> Tenant | None:
    return session.scalar(
        select(Tenant)
        .join(Project, Project.id == Tenant.project_id)
        .where(Project.key == project_key, Tenant.key == tenant_key)
    )


def project(session: Session, project_id: int) -> Project:
    return present(session.get(Project, project_id), f"project {project_id}")


def linked_customers(session: Session) -> Sequence[str]:
    """The Stripe customer of every tenant linked to one."""
    rows = session.scalars(
        select(Tenant.stripe_customer_id)
        .where(Tenant.stripe_customer_id.is_not(None))
        .order_by(Tenant.id)
    )
    return [str(customer) for customer in rows]


def live_subscription_ids(session: Session) -> Sequence[str]:
    return session.scalars(
        select(Subscription.stripe_subscription_id).where(
            Subscription.status.not_in(ENDED_STATUSES)
        )
    ).all()


def invoice(session: Session, stripe_invoice_id: str, *, fresh: bool = False) -> Invoice | None:
    query = select(Invoice).where(Invoice.stripe_invoice_id == stripe_invoice_id)
    return _one(session, query, fresh)


def invoices_of(session: Session, tenant_id: int, limit: int = 100) -> Sequence[Invoice]:
    return session.scalars(
        select(Invoice)
        .where(Invoice.tenant_id == tenant_id)
        .order_by(Invoice.stripe_created_at.desc(), Invoice.id.desc())
        .limit(limit)
    ).all()


def priced_plans(session: Session) -> Sequence[tuple[str, str, str]]:
    """(project key, plan key, Stripe price id) of every active plan with a price."""
    rows = session.execute(
        select(Project.key, Plan.key, Plan.stripe_price_id)
        .join(Project, Project.id == Plan.project_id)
        .where(Plan.stripe_price_id.is_not(None), Plan.status == "active")
        .order_by(Project.key, Plan.key)
    )
    return [(project, plan, str(price)) for project, plan, price in rows]
