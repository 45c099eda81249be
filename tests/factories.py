"""Plain factories: rows the admin API does not create (yet), the admin API's create calls made
by the services they run (without their HTTP), and the common project made of them."""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billplane.appwebhooks import outbox
from billplane.appwebhooks import service as app_webhooks
from billplane.appwebhooks.schemas import EndpointIn
from billplane.billing import service as billing
from billplane.models import Feature, Plan, Project, Subscription, Tenant
from billplane.plans import prices
from billplane.plans import service as plans
from billplane.plans.schemas import PlanIn
from billplane.projects import service as projects
from billplane.projects.schemas import FeatureIn, ProjectIn
from billplane.schemas import FeatureType
from billplane.settings import Settings
from billplane.stripe.facts import ENDED_STATUSES
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
    if status not in ENDED_STATUSES:  # as storing a live subscription does
        billing.keep_plan_version(session, row, price, period_start)
    return subscription


# The `realtyos` project of the tests: three features, a free default plan and a pro plan.
REALTYOS_FEATURES: list[tuple[str, FeatureType, str | None]] = [
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
    stripe = StripeGateway.from_settings(settings)
    created = project(session, now, "realtyos")
    for key, type_, unit in REALTYOS_FEATURES:
        feature(session, now, "realtyos", key, type_, unit=unit)
    for spec in REALTYOS_PLANS:
        plan(session, stripe, now, "realtyos", **spec)
    tenant(session, now, "realtyos", "acme", name="Acme Realty", email="ops@acme.test")
    return created.token.secret


# --- The admin API's create calls, without HTTP -------------------------------------------------
# Each validates the body the endpoint would receive with the endpoint's own schema and calls the
# service it calls, as the admin actor, inside a SAVEPOINT of the test's transaction (what the
# endpoint's `tx.write()` is in the tests): the in-process app shares that transaction, so it
# sees the rows at once. The admin API's own tests keep HTTP (`conftest.Admin`).

ACTOR = "admin"  # the admin API's actor
ORIGINS = ("https://app.realtyos.test",)  # the origins `conftest.Admin.project` sends


def project(
    session: Session,
    now: datetime,
    key: str = "realtyos",
    *,
    name: str | None = None,
    origins: Sequence[str] = ORIGINS,
) -> projects.NewProject:
    """`POST /admin/api/projects`: the project and its first token (`.token.secret`)."""
    body = ProjectIn.model_validate(
        {"key": key, "name": key.title() if name is None else name, "origins": list(origins)}
    )
    with session.begin_nested():
        return projects.create_project(
            session,
            key=body.key,
            name=body.name,
            origins=body.origin_strings(),
            actor=ACTOR,
            now=now,
        )


def feature(
    session: Session,
    now: datetime,
    project: str,
    key: str,
    type: FeatureType,
    *,
    name: str | None = None,
    unit: str | None = None,
) -> Feature:
    """`POST /admin/api/projects/{project}/features`."""
    body = FeatureIn.model_validate(
        {"key": key, "name": key if name is None else name, "type": type, "unit": unit}
    )
    with session.begin_nested():
        return projects.create_feature(
            session,
            projects.get_project(session, project),
            body,
            actor=ACTOR,
            now=now,
        )


# The tests' BILLPLANE_SECRET_KEY (`conftest.settings`): it seals endpoints' secrets.
SECRET_KEY = "tests-secret-key-" + "s" * 32


def webhook_endpoint(
    session: Session,
    now: datetime,
    project: str,
    url: str,
    events: Sequence[str],
    *,
    secret_key: str = SECRET_KEY,
) -> app_webhooks.WithSecret:
    """`POST /admin/api/projects/{project}/webhook-endpoints`: the endpoint and its secret."""
    body = EndpointIn.model_validate({"url": url, "events": list(events)})
    with session.begin_nested():
        found = projects.get_project(session, project)
        return app_webhooks.create_endpoint(
            session, found, body, secret_key=secret_key, actor=ACTOR, now=now
        )


# The tests' BILLPLANE_PAST_DUE_GRACE_DAYS (`conftest.settings`).
GRACE_DAYS = 3


def plan(
    session: Session,
    stripe: StripeGateway,
    now: datetime,
    project: str,
    key: str,
    *,
    name: str | None = None,
    stripe_price_id: str | None = None,
    trial_days: int = 0,
    is_default: bool = False,
    features: Mapping[str, bool | Mapping[str, Any]] | None = None,
) -> Plan:
    """`POST /admin/api/projects/{project}/plans`: its price is looked up in `stripe` (the
    gateway of the app under test) before the SAVEPOINT opens, as the endpoint does."""
    body = PlanIn.model_validate(
        {
            "key": key,
            "name": key.title() if name is None else name,
            "stripe_price_id": stripe_price_id,
            "trial_days": trial_days,
            "is_default": is_default,
            "features": dict(features or {}),
        }
    )
    price = body.stripe_price_id
    lookup = prices.look_up(stripe, price, now) if price else None
    with session.begin_nested():
        return plans.create_plan(
            session,
            projects.get_project(session, project),
            body,
            actor=ACTOR,
            now=now,
            grace_days=GRACE_DAYS,
            price_lookup=lookup,
            stripe_mode=stripe.mode,
        )


def tenant(
    session: Session,
    now: datetime,
    project: str,
    key: str,
    *,
    name: str | None = None,
    email: str | None = None,
) -> Tenant:
    """`POST /admin/api/projects/{project}/tenants`."""
    body = TenantIn.model_validate({"key": key, "name": name, "email": email})
    with session.begin_nested():
        return tenants.create_tenant(
            session,
            projects.get_project(session, project),
            key=body.key,
            name=body.name,
            email=body.email,
            actor=ACTOR,
            now=now,
        )


class Seed:
    """The factories above bound to a test's session, clock and app settings (so plans ask the
    Stripe that app asks): `seed.plan("realtyos", "pro", stripe_price_id=...)` where a test would
    have sent `admin.plan(...)` only to have the rows."""

    def __init__(self, session: Session, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.clock = clock
        self.stripe = StripeGateway.from_settings(settings)

    def project(
        self,
        key: str = "realtyos",
        *,
        name: str | None = None,
        origins: Sequence[str] = ORIGINS,
    ) -> projects.NewProject:
        return project(self.session, self.clock(), key, name=name, origins=origins)

    def feature(
        self,
        project: str,
        key: str,
        type: FeatureType,
        *,
        name: str | None = None,
        unit: str | None = None,
    ) -> Feature:
        return feature(self.session, self.clock(), project, key, type, name=name, unit=unit)

    def plan(
        self,
        project: str,
        key: str,
        *,
        name: str | None = None,
        stripe_price_id: str | None = None,
        trial_days: int = 0,
        is_default: bool = False,
        features: Mapping[str, bool | Mapping[str, Any]] | None = None,
    ) -> Plan:
        return plan(
            self.session,
            self.stripe,
            self.clock(),
            project,
            key,
            name=name,
            stripe_price_id=stripe_price_id,
            trial_days=trial_days,
            is_default=is_default,
            features=features,
        )

    def tenant(
        self, project: str, key: str, *, name: str | None = None, email: str | None = None
    ) -> Tenant:
        return tenant(self.session, self.clock(), project, key, name=name, email=email)

    def webhook_endpoint(
        self, project: str, url: str, events: Sequence[str] = outbox.EVENT_TYPES
    ) -> app_webhooks.WithSecret:
        return webhook_endpoint(self.session, self.clock(), project, url, events)
