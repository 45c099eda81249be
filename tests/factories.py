"""Plain factories: rows the admin API does not create (yet), and the common project made by the
services the admin API runs, without its HTTP."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.models import Project, Subscription, Tenant
from billplane.plans import prices
from billplane.plans import service as plans
from billplane.plans.schemas import PlanIn
from billplane.projects import service as projects
from billplane.projects.schemas import FeatureIn, ProjectIn
from billplane.settings import Settings
from billplane.stripe.gateway import StripeGateway
from billplane.tenants import service as tenants
from billplane.tenants.schemas import TenantIn


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


# The `realtyos` project of the tests: three features, a free default plan and a pro plan.
REALTYOS_FEATURES = [
    ("exports", "boolean", None),
    ("listings.publish", "limit", "listing"),
    ("ai.tokens", "metered", "token"),
]
REALTYOS_PLANS: list[dict[str, Any]] = [
    {
        "key": "free",
        "name": "Free",
        "is_default": True,
        "features": {"listings.publish": {"limit": 3, "reset": "month"}, "ai.tokens": True},
    },
    {
        "key": "pro",
        "name": "Pro",
        "stripe_price_id": "price_pro",
        "features": {
            "exports": True,
            "listings.publish": {"limit": 100, "reset": "month"},
            "ai.tokens": True,
        },
    },
]


def realtyos(session: Session, settings: Settings, now: datetime) -> str:
    """The `realtyos` project as the admin API would make it, made by the services its calls
    run (bodies validated by the same schemas, Stripe asked the same way), in the test's own
    transaction: seven HTTP calls' worth of data without their cost. Returns its project token.
    """
    actor = "admin"  # the admin API's actor
    stripe = StripeGateway.from_settings(settings)
    with session.begin_nested():
        body = ProjectIn(key="realtyos", name="Realtyos", origins=["https://app.realtyos.test"])
        created = projects.create_project(
            session,
            key=body.key,
            name=body.name,
            origins=body.origin_strings(),
            actor=actor,
            now=now,
        )
        project = created.project
        for key, type_, unit in REALTYOS_FEATURES:
            feature = FeatureIn(key=key, name=key, type=type_, unit=unit)
            projects.create_feature(
                session,
                project,
                key=feature.key,
                name=feature.name,
                type=feature.type,
                unit=feature.unit,
                actor=actor,
                now=now,
            )
        for spec in REALTYOS_PLANS:
            plan = PlanIn.model_validate(spec)
            price = plan.stripe_price_id
            plans.create_plan(
                session,
                project,
                plan,
                actor=actor,
                now=now,
                price_lookup=prices.look_up(stripe, price, now) if price else None,
                stripe_mode=stripe.mode,
            )
        tenant = TenantIn(key="acme", name="Acme Realty", email="ops@acme.test")
        tenants.create_tenant(
            session,
            project,
            key=tenant.key,
            name=tenant.name,
            email=tenant.email,
            actor=actor,
            now=now,
        )
    return created.token.secret
