"""The whole set-up status at once: what the dashboard's overview and the admin API show."""

from dataclasses import dataclass
from datetime import datetime

from billplane.db import Transactions
from billplane.plans.prices import look_up
from billplane.settings import Settings
from billplane.status import repository
from billplane.status.checklist import Item, Stripe, checklist, next_item
from billplane.status.probes import (
    Status,
    endpoint_status,
    price_status,
    stripe_status,
    webhook_status,
    webhook_url,
)
from billplane.status.repository import ProjectSetup
from billplane.stripe.gateway import StripeGateway


@dataclass(frozen=True)
class Overview:
    stripe: Status
    webhook: Status
    projects: list[ProjectSetup]
    items: list[Item]
    next: Item | None


def overview(
    tx: Transactions, settings: Settings, gateway: StripeGateway, now: datetime
) -> Overview:
    """Records are read in one transaction, then Stripe is asked through `gateway` (cached per
    probe) once it has closed: a slow Stripe never holds a database connection or lock."""
    with tx.read() as session:
        setup = repository.setup_of_projects(session)
        events_received = repository.event_count(session)
        last_event = repository.last_event(session)
    prices = sorted({price for project in setup for price in project.prices})
    seen = Stripe(
        key=stripe_status(gateway),
        key_set=bool(settings.stripe_secret_key),
        webhook_secret_set=bool(settings.stripe_webhook_secret),
        prices={price: price_status(look_up(gateway, price, now)) for price in prices},
        endpoint=endpoint_status(gateway, settings),
        events_received=events_received,
        webhook_url=webhook_url(settings),
    )
    items = checklist(setup, seen)
    return Overview(
        stripe=seen.key,
        webhook=webhook_status(settings, last_event, now),
        projects=setup,
        items=items,
        next=next_item(items),
    )
