"""How HTTP edges get the app's Stripe gateway (one per process, built from the settings)."""

from typing import Annotated

from fastapi import Depends, Request

from billplane.clock import Clock
from billplane.stripe.gateway import StripeGateway


def stripe_gateway(request: Request) -> StripeGateway:
    state = request.app.state
    gateway: StripeGateway | None = getattr(state, "stripe", None)
    if gateway is None:
        gateway = state.stripe = StripeGateway.from_settings(state.settings)
    return gateway


def app_clock(request: Request) -> Clock:
    """The clock itself, for edges that read the time more than once (before and after
    asking Stripe)."""
    clock: Clock = request.app.state.clock
    return clock


Stripe = Annotated[StripeGateway, Depends(stripe_gateway)]
AppClock = Annotated[Clock, Depends(app_clock)]
