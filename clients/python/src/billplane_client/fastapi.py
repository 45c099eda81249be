"""Gating for FastAPI apps: a dependency per feature.

    app = FastAPI()
    install(app, Gate(bp, tenant=current_tenant, upgrade_url="/upgrade?feature={feature}"))

    @app.get("/exports/listings.csv")
    def export(check: Annotated[Check, Depends(requires_feature("exports"))]): ...

An API call that is refused gets 402 `{"error": {"code": "payment_required", ...}}`; a page
request is redirected (303) to the upgrade URL. Needs fastapi (`billplane-client[fastapi]`).

billplane's webhooks drop a tenant's cached entitlements the moment its plan changes:

    add_webhook_route(app, "/billplane/webhooks", Webhooks(bp, secret))
"""

from collections.abc import Awaitable, Callable
from typing import cast

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from billplane_client.gating import Gate, Refusal
from billplane_client.starlette import STATE_KEY, refusal_for, to_response, webhook_endpoint
from billplane_client.types import Check
from billplane_client.webhooks import Webhooks


class FeatureUnavailable(HTTPException):
    """Raised by the dependency; `install` renders it as the gate decided. Being an
    HTTPException, it still answers with the right status if the handler was not installed."""

    def __init__(self, refusal: Refusal) -> None:
        headers = {"Location": refusal.location} if refusal.location else None
        super().__init__(status_code=refusal.status, detail=refusal.body, headers=headers)
        self.refusal = refusal


def install(app: FastAPI, gate: Gate) -> None:
    """Make `gate` the app's gate and render refusals in billplane's error envelope."""
    setattr(app.state, STATE_KEY, gate)
    app.add_exception_handler(FeatureUnavailable, _render)


async def _render(_request: Request, exc: Exception) -> Response:
    # Registered for FeatureUnavailable only, which Starlette's handler type cannot say.
    return to_response(cast(FeatureUnavailable, exc).refusal)


def requires_feature(
    feature: str, quantity: int = 1, *, gate: Gate | None = None
) -> Callable[[Request], Awaitable[Check]]:
    """A dependency answering the route's check (a `Check`), or refusing the request."""

    async def dependency(request: Request) -> Check:
        refusal = await refusal_for(request, feature, quantity, gate)
        if refusal is not None:
            raise FeatureUnavailable(refusal)
        check: Check = request.state.billplane_check
        return check

    dependency.__name__ = f"requires_feature_{feature.replace('.', '_')}"
    return dependency


def add_webhook_route(app: FastAPI, path: str, webhooks: Webhooks) -> None:
    """POST `path` receives billplane's webhooks (see `starlette.webhook_endpoint`); it is left
    out of the app's OpenAPI schema: only billplane calls it."""
    app.add_api_route(path, webhook_endpoint(webhooks), methods=["POST"], include_in_schema=False)
