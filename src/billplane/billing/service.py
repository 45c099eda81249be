"""Tenants kept in step with Stripe: subscriptions and customer links (invoices: `invoices`).

Webhooks, checkout confirmation and reconciliation all change billing state through these
functions, so whichever arrives first, the result is the same. Each takes facts read from Stripe
with the moment they were read (`seen_at`): a read older than what is stored never overwrites it.
Access itself is never stored: it follows from the subscription and the clock (entitlements).
"""

from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from billplane.appwebhooks import outbox
from billplane.audit import service as audit
from billplane.billing import repository
from billplane.billing.errors import SubscriptionExists, UnverifiedLink
from billplane.credits import topups
from billplane.errors import present
from billplane.models import Project, Subscription, Tenant
from billplane.plans import repository as plans
from billplane.stripe.facts import (
    ENDED_STATUSES,
    TOPUP_PRICE_KEY,
    CheckoutSessionFacts,
    SubscriptionFacts,
    claimed_tenant,
)


@dataclass(frozen=True)
class Change:
    """One change billing state went through, as the audit trail and sync reports tell it."""

    tenant: str  # "project/tenant"
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class Context:
    """Who is changing billing state, and when."""

    actor: str
    now: datetime
    seen_at: datetime  # when the facts were read from Stripe
    # BILLPLANE_PAST_DUE_GRACE_DAYS: whether a change altered what a tenant may do (and so is
    # told to its app) depends on it.
    grace_days: int


def checkout_reference(project_key: str, tenant_key: str) -> str:
    """The `client_reference_id` of a billplane checkout (keys never contain '/')."""
    return f"{project_key}/{tenant_key}"


# --- subscriptions ---------------------------------------------------------------------------


def apply_subscription(
    session: Session, found: SubscriptionFacts, ctx: Context, *, tenant: Tenant | None = None
) -> list[Change]:
    """Store what Stripe says of a subscription on its tenant (`tenant` when the caller has
    verified the link already). Returns nothing when the subscription is not billplane's."""
    known = repository.subscription(session, found.id)
    if known is not None:
        if tenant is not None and tenant.id != known.tenant_id:
            raise UnverifiedLink(
                f"Subscription {found.id} belongs to another tenant than the one named."
            )
        owner = known.tenant_id
    else:
        resolved = tenant or tenant_of_subscription(session, found)
        if resolved is None:
            return []
        owner = resolved.id
    tenant = repository.lock_tenant(session, owner)
    with _entitlements_change(session, tenant, ctx):
        return _store_subscription(session, tenant, found, ctx)


def _store_subscription(
    session: Session, tenant: Tenant, found: SubscriptionFacts, ctx: Context
) -> list[Change]:
    row = repository.subscription(session, found.id, fresh=True)
    if row is None:
        _one_live_subscription(session, tenant, found)
        row = Subscription(
            tenant_id=tenant.id,
            stripe_subscription_id=found.id,
            status=found.status,
            created_at=found.created or ctx.now,
            updated_at=ctx.now,
        )
        repository.add(session, row)
        before = None
    elif row.tenant_id != tenant.id:
        raise UnverifiedLink(f"Subscription {found.id} was linked to another tenant meanwhile.")
    elif stored_is_newer(row.stripe_updated_at, ctx):
        return []
    else:
        before = subscription_state(row)
    _assign(session, row, tenant, found)
    row.stripe_updated_at = ctx.seen_at
    after = subscription_state(row)
    if found.live and (before is None or before["stripe_price_id"] != row.stripe_price_id):
        keep_plan_version(session, tenant, row.stripe_price_id, ctx.now)
    if before == after:
        return []
    row.updated_at = ctx.now
    action = "subscription.create" if before is None else "subscription.update"
    _tell_app(session, tenant, row, before, after, ctx)
    return [audited(session, tenant, action, ("subscription", found.id), before, after, ctx)]


def _entitlements_change(
    session: Session, tenant: Tenant, ctx: Context, tenant_ids: Collection[int] | None = None
) -> AbstractContextManager[None]:
    """Around a change of billing state: the app hears if it altered what tenants may do."""
    return outbox.entitlements_change(
        session,
        repository.project(session, tenant.project_id),
        now=ctx.now,
        grace_days=ctx.grace_days,
        tenant_ids=[tenant.id] if tenant_ids is None else tenant_ids,
    )


def _tell_app(
    session: Session,
    tenant: Tenant,
    row: Subscription,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    ctx: Context,
) -> None:
    """`tenant.subscription.updated`, in the transaction that stored the change."""
    project = repository.project(session, tenant.project_id)
    outbox.emit_in(
        session,
        project=(project.id, project.key),
        tenant=(tenant.id, tenant.key),
        event_type=outbox.SUBSCRIPTION_UPDATED,
        data={
            "subscription": {"id": row.stripe_subscription_id, **after},
            "previous": before,
        },
        now=ctx.now,
    )


def tenant_of_subscription(session: Session, found: SubscriptionFacts) -> Tenant | None:
    """The tenant whose Stripe customer (created by billplane) owns the subscription."""
    tenant = repository.tenant_by_customer(session, found.customer) if found.customer else None
    claimed = claimed_tenant(found.metadata)
    if tenant is not None:
        if claimed is not None and claimed != _keys(session, tenant):
            raise UnverifiedLink(
                f"Subscription {found.id} names tenant {'/'.join(claimed)} in its metadata, "
                f"but its customer {found.customer} belongs to {'/'.join(_keys(session, tenant))}."
            )
        return tenant
    if claimed is None or not found.live:
        # Not billplane's, or an ended subscription of a customer since unlinked: no access
        # depends on it.
        return None
    raise UnverifiedLink(
        f"Subscription {found.id} names tenant {'/'.join(claimed)}, but its customer "
        f"{found.customer} is not linked to any tenant in billplane."
    )


def _one_live_subscription(session: Session, tenant: Tenant, found: SubscriptionFacts) -> None:
    if not found.live:
        return
    others = [
        s.stripe_subscription_id
        for s in repository.live_subscriptions(session, tenant.id)
        if s.stripe_subscription_id != found.id
    ]
    if others:
        raise SubscriptionExists(
            f"Tenant {'/'.join(_keys(session, tenant))} already has live subscription "
            f"{others[0]}; billplane keeps one per tenant. Cancel one of them in Stripe "
            f"(or run `billplane stripe sync` if it already ended), then replay this event."
        )


def _assign(session: Session, row: Subscription, tenant: Tenant, found: SubscriptionFacts) -> None:
    row.stripe_customer_id = found.customer or row.stripe_customer_id
    row.status = found.status
    row.stripe_price_id = _plan_price(session, tenant, found)
    row.current_period_start = found.current_period_start
    row.current_period_end = found.current_period_end
    row.cancel_at_period_end = found.cancel_at_period_end
    row.trial_end = found.trial_end
    row.canceled_at = found.canceled_at


def keep_plan_version(
    session: Session, tenant: Tenant, stripe_price_id: str | None, now: datetime
) -> None:
    """A tenant that subscribes to a plan's price keeps the version sold at that price (the
    newest, unless the price is an older version's) until an operator migrates it."""
    plan = plans.plan_for_price(session, tenant.project_id, stripe_price_id or "")
    if plan is None:
        return
    version = plans.version_for_price(session, plan.id, stripe_price_id or "")
    plans.pin(
        session, tenant_id=tenant.id, plan_id=plan.id, version=version or plan.version, now=now
    )


def _plan_price(session: Session, tenant: Tenant, found: SubscriptionFacts) -> str | None:
    """The price that decides the plan: the first item whose price is one of the project's
    plans (a subscription may carry add-on items too), else the first item's."""
    for price in found.price_ids:
        if plans.plan_for_price(session, tenant.project_id, price) is not None:
            return price
    return found.price_ids[0] if found.price_ids else None


def subscription_state(row: Subscription) -> dict[str, Any]:
    return jsonable(
        {
            "status": row.status,
            "stripe_price_id": row.stripe_price_id,
            "stripe_customer_id": row.stripe_customer_id,
            "current_period_start": row.current_period_start,
            "current_period_end": row.current_period_end,
            "cancel_at_period_end": row.cancel_at_period_end,
            "trial_end": row.trial_end,
            "canceled_at": row.canceled_at,
        }
    )


# --- checkout --------------------------------------------------------------------------------


def apply_checkout(
    session: Session,
    checkout: CheckoutSessionFacts,
    subscription: SubscriptionFacts | None,
    ctx: Context,
) -> list[Change]:
    """A completed checkout: its subscription goes to the tenant billplane opened it for.

    The link is trusted only when everything billplane wrote agrees: the metadata and
    `client_reference_id` name the same tenant, and the session's customer is the one billplane
    created for that tenant.
    """
    tenant = checkout_tenant(session, checkout)
    if tenant is not None and checkout.mode == "payment":
        land_topup(session, tenant, checkout, ctx)
        return []
    if tenant is None or checkout.mode != "subscription" or subscription is None:
        return []
    if subscription.customer != checkout.customer:
        raise UnverifiedLink(
            f"Checkout {checkout.id}'s subscription belongs to another customer than the session."
        )
    if tenant.stripe_customer_id != checkout.customer:
        if tenant.stripe_customer_id is None and not subscription.live:
            return []  # the customer was deleted since, and its subscription ended with it
        raise UnverifiedLink(
            f"Checkout {checkout.id} was paid by customer {checkout.customer}, which is not "
            f"the customer billplane created for tenant {'/'.join(_keys(session, tenant))}."
        )
    return apply_subscription(session, subscription, ctx, tenant=tenant)


def land_topup(
    session: Session, tenant: Tenant, checkout: CheckoutSessionFacts, ctx: Context
) -> bool:
    """A paid top-up's credits, once per session (see `credits.topups.land_topup`); a session
    not paid (yet) lands nothing. Trusted only as a subscription's checkout is: paid by the
    customer billplane created for the tenant. Returns whether the session is a paid top-up
    (landed now or before)."""
    price = checkout.metadata.get(TOPUP_PRICE_KEY)
    if price is None or checkout.payment_status != "paid":
        return False
    if tenant.stripe_customer_id is None or tenant.stripe_customer_id != checkout.customer:
        raise UnverifiedLink(
            f"Top-up {checkout.id} was paid by customer {checkout.customer}, which is not the "
            f"customer billplane created for tenant {'/'.join(_keys(session, tenant))}."
        )
    project = present(session.get(Project, tenant.project_id), "the tenant's project")
    topups.land_topup(
        session,
        project,
        tenant.id,
        price=price,
        checkout_id=checkout.id,
        payment_intent=checkout.payment_intent,
        amount=checkout.amount_total or 0,
        currency=checkout.currency or "",
        actor=ctx.actor,
        now=ctx.now,
    )
    return True


def checkout_tenant(session: Session, checkout: CheckoutSessionFacts) -> Tenant | None:
    """The tenant a checkout session was opened for; None if billplane did not open it."""
    claimed = claimed_tenant(checkout.metadata)
    if claimed is None:
        return None
    reference = checkout.client_reference_id
    if reference is not None and reference != checkout_reference(*claimed):
        raise UnverifiedLink(
            f"Checkout {checkout.id}'s client_reference_id and metadata name different tenants."
        )
    tenant = repository.tenant_by_keys(session, *claimed)
    if tenant is None:
        raise UnverifiedLink(
            f"Checkout {checkout.id} names tenant {'/'.join(claimed)}, unknown to billplane."
        )
    return tenant


# --- customers -------------------------------------------------------------------------------


def link_customer(session: Session, tenant: Tenant, customer_id: str, ctx: Context) -> list[Change]:
    """Bind a tenant to the Stripe customer billplane created for it."""
    tenant = repository.lock_tenant(session, tenant.id)
    if tenant.stripe_customer_id == customer_id:
        return []
    other = repository.tenant_by_customer(session, customer_id)
    if other is not None or tenant.stripe_customer_id is not None:
        raise UnverifiedLink(
            f"Customer {customer_id} cannot be linked to tenant "
            f"{'/'.join(_keys(session, tenant))}: one of them is linked elsewhere already."
        )
    tenant.stripe_customer_id = customer_id
    tenant.updated_at = ctx.now
    session.flush()
    after = {"stripe_customer_id": customer_id}
    return [audited(session, tenant, "tenant.link_customer", None, None, after, ctx)]


def unlink_customer(
    session: Session, customer_id: str, ctx: Context, *, ended_at: datetime | None
) -> list[Change]:
    """The customer is gone from Stripe: unbind its tenant and end its subscriptions (Stripe
    cancels them with the customer)."""
    linked = repository.tenant_by_customer(session, customer_id)
    owners = {row.tenant_id for row in repository.subscriptions_of_customer(session, customer_id)}
    tenants = {t: repository.lock_tenant(session, t) for t in sorted(owners | _ids(linked))}
    if not tenants:
        return []
    with _entitlements_change(session, next(iter(tenants.values())), ctx, list(tenants)):
        return _unlink(session, customer_id, linked, tenants, ctx, ended_at)


def _unlink(
    session: Session,
    customer_id: str,
    linked: Tenant | None,
    tenants: dict[int, Tenant],
    ctx: Context,
    ended_at: datetime | None,
) -> list[Change]:
    changes: list[Change] = []
    for row in repository.subscriptions_of_customer(session, customer_id, fresh=True):
        if not _live(row.status):
            continue
        before = subscription_state(row)
        row.status = "canceled"
        row.canceled_at = row.canceled_at or ended_at or ctx.now
        row.stripe_updated_at = max(row.stripe_updated_at or ctx.seen_at, ctx.seen_at)
        row.updated_at = ctx.now
        target = ("subscription", row.stripe_subscription_id)
        after = subscription_state(row)
        owner = tenants.get(row.tenant_id) or repository.lock_tenant(session, row.tenant_id)
        _tell_app(session, owner, row, before, after, ctx)
        changes.append(audited(session, owner, "subscription.update", target, before, after, ctx))
    tenant = tenants.get(linked.id) if linked is not None else None
    if tenant is not None and tenant.stripe_customer_id == customer_id:
        tenant.stripe_customer_id = None
        tenant.updated_at = ctx.now
        session.flush()
        before = {"stripe_customer_id": customer_id}
        changes.append(audited(session, tenant, "tenant.unlink_customer", None, before, None, ctx))
    return changes


def _ids(tenant: Tenant | None) -> set[int]:
    return set() if tenant is None else {tenant.id}


def _live(status: str) -> bool:
    return status not in ENDED_STATUSES


# --- shared ----------------------------------------------------------------------------------


def _keys(session: Session, tenant: Tenant) -> tuple[str, str]:
    return repository.project(session, tenant.project_id).key, tenant.key


def stored_is_newer(stored: datetime | None, ctx: Context) -> bool:
    """Whether the stored state was read from Stripe after these facts were."""
    return stored is not None and stored > ctx.seen_at


def audited(
    session: Session,
    tenant: Tenant,
    action: str,
    obj: tuple[str, str] | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    ctx: Context,
) -> Change:
    """Audit one change; `obj` is the (kind, Stripe id) it was about, else the tenant."""
    who = "/".join(_keys(session, tenant))
    target = f"{obj[0]}:{who}/{obj[1]}" if obj else f"tenant:{who}"
    audit.record(
        session,
        actor=ctx.actor,
        action=action,
        target=target,
        project_id=tenant.project_id,
        before=before,
        after=after,
        now=ctx.now,
    )
    return Change(tenant=who, action=action, target=target, before=before, after=after)


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
