"""Admin HTTP for what the server sees of Stripe, and for reconciliation."""

from typing import Any

from fastapi import APIRouter

from billplane.billing import repository
from billplane.http import Admin, AppClock, CurrentSettings, ServedSettings, Stripe, Tx, errors
from billplane.status.probes import PricedPlan, StripeReport, stripe_report
from billplane.webhooks.schemas import SyncOut
from billplane.webhooks.sync import sync

router = APIRouter(prefix="/admin/api/stripe", tags=["admin"])


@router.get(
    "/check",
    response_model=StripeReport,
    response_model_exclude_unset=True,
    summary="What billplane can see of Stripe",
)
def stripe_check(
    _: Admin, tx: Tx, stripe: Stripe, clock: AppClock, settings: ServedSettings
) -> Any:
    """The key (valid, test or live mode), each plan's price, and whether Stripe has a webhook
    endpoint for this server with the events billplane needs. Changes nothing."""
    with tx.read() as session:
        plans = [PricedPlan(*row) for row in repository.priced_plans(session)]
    return stripe_report(stripe, settings, plans, clock)


@router.post(
    "/sync",
    response_model=SyncOut,
    responses=errors(503),
    summary="Repair billing state from Stripe",
)
def stripe_sync(
    _: Admin, tx: Tx, stripe: Stripe, clock: AppClock, settings: CurrentSettings
) -> Any:
    """Pull customers and subscriptions from Stripe and fix what missed webhooks left wrong;
    answers with every change made (and what could not be repaired)."""
    grace_days = settings.billplane_past_due_grace_days
    return sync(tx, stripe, clock, grace_days=grace_days).as_dict()
