"""A refunded charge (`charge.refunded`) of a top-up: its share of the credits goes back.

The charge is found with the Checkout session its PaymentIntent paid, both as Stripe has them
now. A refund may be processed before the session's `checkout.session.completed` (Stripe does
not order deliveries): then the refund lands the top-up first, exactly as the completed
session would, and takes its share back in the same transaction, so the credits are never
usable in between and the later `checkout.session.completed` lands nothing more.
"""

from sqlalchemy.orm import Session

from billplane.billing.errors import UnverifiedLink
from billplane.billing.service import Change, Context, audited, checkout_tenant, land_topup
from billplane.credits import topups
from billplane.stripe.facts import ChargeFacts, CheckoutSessionFacts


def apply_refund(
    session: Session, checkout: CheckoutSessionFacts, charge: ChargeFacts, ctx: Context
) -> list[Change]:
    """Take back the unspent share of the top-up the charge paid for (nothing for a charge of
    anything else billplane sells, or a refund applied already)."""
    tenant = checkout_tenant(session, checkout)
    if tenant is None or checkout.mode != "payment" or charge.amount_refunded <= 0:
        return []
    if checkout.payment_intent != charge.payment_intent:
        raise UnverifiedLink(
            f"Charge {charge.id} was not paid through checkout {checkout.id}'s payment."
        )
    if not land_topup(session, tenant, checkout, ctx):
        return []
    refunded = topups.refund_topup(
        session,
        checkout.id,
        amount_refunded=charge.amount_refunded,
        charge_amount=charge.amount,
        charge_id=charge.id,
        currency=charge.currency,
        actor=ctx.actor,
        now=ctx.now,
    )
    if refunded is None:
        return []
    after = {k: v for k, v in refunded.items() if k != "checkout"}
    return [audited(session, tenant, "topup.refund", ("topup", checkout.id), None, after, ctx)]
