"""Reconciliation: pull customers, subscriptions and top-ups (with their refunds) from Stripe and
repair what missed webhooks left wrong. Like a request handler this is an edge: it owns its
transactions, one short one per tenant, and asks Stripe between them (never while holding a
lock).
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from billplane.billing import refunds, repository
from billplane.billing import service as billing
from billplane.billing.service import Change, Context, audited
from billplane.credits import repository as credit_rows
from billplane.db import Transactions
from billplane.errors import Conflict, StripeUnavailable
from billplane.stripe.errors import (
    StripeKeyForbidden,
    StripeKeyRefused,
    StripeRateLimited,
    StripeRejected,
    StripeUnreachable,
)
from billplane.stripe.facts import (
    TOPUP_PRICE_KEY,
    ChargeFacts,
    CheckoutSessionFacts,
    SubscriptionFacts,
    claimed_tenant,
)
from billplane.stripe.gateway import StripeGateway

ACTOR = "stripe-sync"

Progress = Callable[[str], None]


@dataclass
class SyncReport:
    customers: int = 0
    subscriptions: int = 0
    topups: int = 0
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "subscriptions": self.subscriptions,
            "topups": self.topups,
            "changed": len(self.changes),
            "changes": [asdict(c) for c in self.changes],
            "problems": self.problems,
        }


def sync(
    tx: Transactions,
    stripe: StripeGateway,
    clock: Callable[[], datetime],
    progress: Progress = lambda _: None,
    *,
    grace_days: int,
) -> SyncReport:
    """Make billplane's billing state what Stripe says now; report every change made."""
    stripe.verify_key()  # fail at once, in plain words, when Stripe cannot be asked at all
    report = SyncReport()
    _context = _contexts(clock, grace_days)
    _link_created_customers(tx, stripe, _context, report, progress)
    with tx.read() as session:
        linked = repository.linked_customers(session)
    seen: set[str] = set()
    for number, customer_id in enumerate(linked, start=1):
        progress(f"[{number}/{len(linked)}] customer {customer_id}")
        customer = stripe.find_customer(customer_id)
        if customer is None or customer.deleted:
            ctx = _context()
            with tx.write() as session:
                report.changes += billing.unlink_customer(session, customer_id, ctx, ended_at=None)
            continue
        found = stripe.subscriptions_of(customer_id)
        seen.update(s.id for s in found)
        _apply_all(tx, found, _context(), report)
        _sync_topups(tx, stripe, _checkouts_of(stripe, customer_id, report), _context(), report)
    with tx.read() as session:
        leftovers = [s for s in repository.live_subscription_ids(session) if s not in seen]
    for subscription_id in leftovers:
        # Live in billplane, but no linked customer of Stripe's lists it: ask for it by id.
        progress(f"subscription {subscription_id}")
        found_one = stripe.find_subscription(subscription_id)
        if found_one is None:
            report.problems.append(f"Stripe has no subscription {subscription_id} any more.")
            continue
        _apply_all(tx, [found_one], _context(), report)
    return report


def _link_created_customers(
    tx: Transactions,
    stripe: StripeGateway,
    context: Callable[[], Context],
    report: SyncReport,
    progress: Progress,
) -> None:
    """A customer billplane created but never stored (the write after creating it failed)."""
    progress("listing customers")
    for customer in stripe.customers():
        claimed = claimed_tenant(customer.metadata)
        if claimed is None:
            continue
        report.customers += 1
        with tx.write() as session:
            tenant = repository.tenant_by_keys(session, *claimed)
            if tenant is None or tenant.stripe_customer_id is not None:
                # Unknown tenant, or linked already (to this customer, or to another one
                # created by a second checkout: then this one is an unused duplicate).
                continue
            if repository.tenant_by_customer(session, customer.id) is None:
                report.changes += billing.link_customer(session, tenant, customer.id, context())


def _apply_all(
    tx: Transactions, found: list[SubscriptionFacts], ctx: Context, report: SyncReport
) -> None:
    # Ended subscriptions first: a stale live one must end before its successor is stored.
    ordered = sorted(found, key=lambda s: (s.live, s.created or ctx.now))
    with tx.write() as session:
        for subscription in ordered:
            report.subscriptions += 1
            _apply_one(session, subscription, ctx, report)


def _apply_one(
    session: Session, subscription: SubscriptionFacts, ctx: Context, report: SyncReport
) -> None:
    try:
        with session.begin_nested():
            report.changes += billing.apply_subscription(session, subscription, ctx)
    except Conflict as exc:
        report.problems.append(f"{subscription.id}: {exc.message}")


def _checkouts_of(
    stripe: StripeGateway, customer_id: str, report: SyncReport
) -> list[CheckoutSessionFacts]:
    """The customer's Checkout sessions; none, said as a problem, when this Stripe will not
    list them (a restricted key without the right, a Stripe double without the route). An
    unreachable or rate-limiting Stripe stops the sync, as for everything else."""
    try:
        return stripe.checkout_sessions_of(customer_id)
    except (StripeRejected, StripeKeyForbidden, StripeUnavailable) as exc:
        if isinstance(exc, StripeUnreachable | StripeRateLimited | StripeKeyRefused):
            raise
        report.problems.append(f"Top-ups of {customer_id} not checked: {exc.message}")
        return []


def _sync_topups(
    tx: Transactions,
    stripe: StripeGateway,
    sessions: list[CheckoutSessionFacts],
    ctx: Context,
    report: SyncReport,
) -> None:
    """The customer's paid top-ups: those never landed land, and each takes back what its
    charge's refunds claim, as the webhooks would have done."""
    for checkout in sessions:
        if checkout.mode != "payment" or checkout.status != "complete":
            continue
        if TOPUP_PRICE_KEY not in checkout.metadata or checkout.payment_status != "paid":
            continue
        report.topups += 1
        charge = (
            stripe.charge_of_payment(checkout.payment_intent) if checkout.payment_intent else None
        )
        with tx.write() as session:
            try:
                with session.begin_nested():
                    report.changes += _apply_topup(session, checkout, charge, ctx)
            except Conflict as exc:
                report.problems.append(f"{checkout.id}: {exc.message}")


def _apply_topup(
    session: Session, checkout: CheckoutSessionFacts, charge: ChargeFacts | None, ctx: Context
) -> list[Change]:
    landed = credit_rows.topup_by_checkout(session, checkout.id) is not None
    changes: list[Change] = []
    billing.apply_checkout(session, checkout, None, ctx)
    tenant = billing.checkout_tenant(session, checkout)
    if not landed and tenant is not None:
        after = {"checkout": checkout.id, "price": checkout.metadata[TOPUP_PRICE_KEY]}
        changes.append(
            audited(session, tenant, "topup.land", ("topup", checkout.id), None, after, ctx)
        )
    if charge is not None and charge.amount_refunded > 0:
        changes += refunds.apply_refund(session, checkout, charge, ctx)
    return changes


def _contexts(clock: Callable[[], datetime], grace_days: int) -> Callable[[], Context]:
    def context() -> Context:
        now = clock()
        return Context(actor=ACTOR, now=now, seen_at=now, grace_days=grace_days)

    return context
