"""Top-ups bought through Stripe: their credits land once per Checkout session, and a refunded
charge takes back its share of them, as far as they are unspent.

Refunds (documented in the README, "Refunds of top-ups"):
- Stripe's charge says how much was refunded so far (`amount_refunded`, a running total), and
  each `charge.refunded` is applied from it: the top-up's refunds claim
  `floor(credits * amount_refunded / amount)` credits in all (all of them once the charge is
  wholly refunded), and a refund takes the part of that claim not taken before. Rounding down
  on the running total never takes back more than the share paid back, and a series of partial
  refunds takes back exactly what one refund of their sum would.
- What is claimed comes out of the top-up's own bucket, as far as it still holds credits; the
  rest was spent and is recorded, not taken from other buckets: the ledger row `refund` carries
  what was removed (`amount`) and what could not be (`unrecovered`), and the top-up keeps the
  totals (`credits_refunded`, `credits_unrecovered`). Credits a reservation held count as
  spent then; if they come back to the bucket later, they are taken back as far as the
  refunds are short (see `unrecovered`).
- A refund applied already (the same running total, or an older one arriving late) changes
  nothing; a refund whose top-up has not landed yet lands it first (the caller does), so the
  order of `checkout.session.completed` and `charge.refunded` does not matter.
"""

from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy.orm import Session

from billplane.credits import repository
from billplane.credits.service import topup_pack
from billplane.errors import present
from billplane.models import CreditBucket, CreditEntry, CreditTopup, Project
from billplane.sql import insert_ignoring_conflict


def land_topup(
    session: Session,
    project: Project,
    tenant_id: int,
    *,
    price: str,
    checkout_id: str,
    payment_intent: str | None,
    amount: int,
    currency: str,
    actor: str,
    now: datetime,
) -> bool:
    """The credits a paid top-up bought, once per checkout session whoever lands them first
    (the webhook, the confirm call, a refund's webhook, any of them repeated): a bucket of
    source `topup` keyed by the session, its ledger row, and the top-up's own row (with the
    payment a refund will name). Returns whether this call landed them."""
    pool, credits = topup_pack(session, project, price)
    made = session.execute(
        insert_ignoring_conflict(
            session,
            CreditBucket.__table__,
            {
                "tenant_id": tenant_id,
                "pool_id": pool.id,
                "source": "topup",
                "source_key": checkout_id,
                "granted": credits,
                "remaining": credits,
                "expires_at": None,
                "created_at": now,
            },
            ["tenant_id", "pool_id", "source", "source_key"],
        ).returning(CreditBucket.id)
    ).scalar()
    row = CreditTopup(
        tenant_id=tenant_id,
        pool_id=pool.id,
        bucket_id=made,
        stripe_checkout_session_id=checkout_id,
        stripe_payment_intent_id=payment_intent,
        stripe_price_id=price,
        credits=credits,
        amount=amount,
        currency=currency,
        amount_refunded=0,
        credits_refunded=0,
        credits_unrecovered=0,
        created_at=now,
    )
    if made is None:
        _keep_topup_row(session, row)
        return False
    session.add(
        CreditEntry(
            tenant_id=tenant_id,
            pool_id=pool.id,
            bucket_id=made,
            kind="topup",
            part=0,
            amount=credits,
            idempotency_key=f"topup:{checkout_id}",
            reason=f"Stripe Checkout {checkout_id} ({price})",
            actor=actor,
            created_at=now,
        )
    )
    session.add(row)
    session.flush()
    return True


def _keep_topup_row(session: Session, landed: CreditTopup) -> None:
    """The top-up landed already: its row learns its payment if it lacks it, and a top-up
    landed before top-ups had rows (its bucket alone) gets one now, so its refund finds it."""
    found = repository.topup_by_checkout(session, landed.stripe_checkout_session_id)
    if found is not None:
        if found.stripe_payment_intent_id is None and landed.stripe_payment_intent_id:
            found.stripe_payment_intent_id = landed.stripe_payment_intent_id
        return
    bucket = repository.bucket_by_source(
        session, landed.tenant_id, landed.pool_id, "topup", landed.stripe_checkout_session_id
    )
    if bucket is None:
        return
    landed.bucket_id, landed.credits = bucket.id, bucket.granted
    landed.created_at = bucket.created_at
    session.add(landed)
    session.flush()


class Refunded(TypedDict):
    """What one `charge.refunded` did to a top-up."""

    checkout: str
    amount_refunded: int
    claimed: int  # credits this refund takes back
    removed: int  # of which were still in the bucket
    unrecovered: int  # of which were spent already


def credits_claimed(credits: int, amount: int, amount_refunded: int) -> int:
    """The credits a top-up's refunds take back in all, for a running total refunded of a
    payment of `amount`: the proportional share, rounded down; all of them once refunded
    wholly (or a payment of 0 refunded at all)."""
    if amount_refunded >= amount:
        return credits
    return credits * amount_refunded // amount


def refund_topup(
    session: Session,
    checkout_id: str,
    *,
    amount_refunded: int,
    charge_amount: int,
    charge_id: str,
    currency: str,
    actor: str,
    now: datetime,
) -> Refunded | None:
    """Take back what a refund of the top-up claims (see the module's rules); None when this
    running total was applied already (a repeat, or an older refund arriving late)."""
    with session.no_autoflush:  # a change to the top-up's row waits for the bucket's lock
        found = repository.topup_by_checkout(session, checkout_id)
        if found is None or amount_refunded <= found.amount_refunded:
            return None
        # The bucket first, then the top-up: the order in which credits a reservation gives
        # back to the bucket are taken back (see `unrecovered`).
        held = repository.locked_remaining(session, found.bucket_id)
    topup = present(repository.topup_by_checkout(session, checkout_id, lock=True), checkout_id)
    if amount_refunded <= topup.amount_refunded:  # a concurrent twin applied it meanwhile
        return None
    claimed_in_all = credits_claimed(topup.credits, charge_amount or topup.amount, amount_refunded)
    claimed = max(claimed_in_all - topup.credits_refunded, 0)
    removed = min(claimed, held)
    unrecovered = claimed - removed
    if removed:
        repository.take_out(session, topup.bucket_id, removed)
    session.add(
        CreditEntry(
            tenant_id=topup.tenant_id,
            pool_id=topup.pool_id,
            bucket_id=topup.bucket_id,
            kind="refund",
            part=0,
            amount=-removed,
            unrecovered=unrecovered,
            idempotency_key=f"refund:{checkout_id}:{amount_refunded}",
            reason=_reason(charge_id, amount_refunded, charge_amount, currency, unrecovered),
            actor=actor,
            created_at=now,
        )
    )
    topup.amount_refunded = amount_refunded
    topup.credits_refunded += claimed
    topup.credits_unrecovered += unrecovered
    topup.refunded_at = now
    session.flush()
    return {
        "checkout": checkout_id,
        "amount_refunded": amount_refunded,
        "claimed": claimed,
        "removed": removed,
        "unrecovered": unrecovered,
    }


def _reason(charge_id: str, refunded: int, amount: int, currency: str, unrecovered: int) -> str:
    said = f"Stripe refund on charge {charge_id}: {refunded} of {amount} {currency} refunded"
    if unrecovered:
        said += f"; {unrecovered} credits were spent already and could not be removed"
    return said


def status(topup: CreditTopup) -> str:
    """`paid`, `partially_refunded` or `refunded`, as Stripe's charge says."""
    if topup.amount_refunded <= 0:
        return "paid"
    return "refunded" if topup.amount_refunded >= topup.amount else "partially_refunded"


def history(session: Session, tenant_id: int, limit: int) -> list[dict[str, Any]]:
    """The tenant's top-ups for its billing history, newest first."""
    return [
        {
            "id": topup.stripe_checkout_session_id,
            "pool": pool,
            "credits": topup.credits,
            "amount_paid": topup.amount,
            "currency": topup.currency,
            "status": status(topup),
            "amount_refunded": topup.amount_refunded,
            "credits_refunded": topup.credits_refunded,
            "credits_unrecovered": topup.credits_unrecovered,
            "payment_intent": topup.stripe_payment_intent_id,
            "price": topup.stripe_price_id,
            "created": topup.created_at,
        }
        for topup, pool in repository.topups_of(session, tenant_id, limit)
    ]
