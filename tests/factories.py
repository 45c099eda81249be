"""Plain keyword-only factories for rows the admin API does not create (yet)."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.models import Project, Subscription, Tenant


def subscribe(
    session: Session,
    *,
    project: str,
    tenant: str,
    status: str,
    price: str | None,
    period_start: datetime,
    period_end: datetime,
    subscription_id: str = "sub_test",
    cancel_at_period_end: bool = False,
    trial_end: datetime | None = None,
) -> Subscription:
    """Store a subscription for a tenant as the Stripe work would have learned it."""
    row = session.execute(
        select(Tenant).join(Project).where(Project.key == project, Tenant.key == tenant)
    ).scalar_one()
    subscription = Subscription(
        tenant_id=row.id,
        stripe_subscription_id=subscription_id,
        stripe_customer_id="cus_test",
        status=status,
        stripe_price_id=price,
        current_period_start=period_start,
        current_period_end=period_end,
        cancel_at_period_end=cancel_at_period_end,
        trial_end=trial_end,
        created_at=period_start,
        updated_at=period_start,
    )
    session.add(subscription)
    session.flush()
    return subscription
