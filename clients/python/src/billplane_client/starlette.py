"""Gating for Starlette apps: `@requires_feature("exports")` on an endpoint `(request)`, and the
route billplane's webhooks arrive at.

    app = Starlette(routes=[Route("/export", export)])
    install(app, Gate(bp, tenant=lambda request: request.session.get("tenant")))

    @requires_feature("exports")
    async def export(request): ...   # request.state.billplane_check holds the check

    app.add_route("/billplane/webhooks", webhook_endpoint(Webhooks(bp, secret)), ["POST"])

Needs starlette (`pip install billplane-client[starlette]`); the core package does not.
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from billplane_client.gating import Gate, Refusal
from billplane_client.webhooks import WebhookRefused, Webhooks

Endpoint = Callable[[Request], Awaitable[Response]]
STATE_KEY = "billplane_gate"


def install(app: Any, gate: Gate) -> None:
    """Make `gate` the one `requires_feature` uses in this app."""
    setattr(app.state, STATE_KEY, gate)


def gate_of(request: Request, gate: Gate | None = None) -> Gate:
    found = gate or getattr(request.app.state, STATE_KEY, None)
    if found is None:
        raise RuntimeError("no billplane Gate: call billplane_client.starlette.install(app, gate)")
    return found


async def refusal_for(
    request: Request, feature: str, quantity: int, gate: Gate | None = None
) -> Refusal | None:
    """Check `feature` for the request's tenant; None when the route may run. The check is left
    on `request.state.billplane_check`."""
    chosen = gate_of(request, gate)
    tenant, check = await chosen.check(request, feature, quantity)
    request.state.billplane_check = check
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return chosen.refusal(
        request,
        feature=feature,
        tenant=tenant,
        check=check,
        accept=request.headers.get("accept"),
        next_url=target,
    )


def to_response(refusal: Refusal) -> Response:
    if refusal.location is not None:
        return RedirectResponse(refusal.location, status_code=refusal.status)
    return JSONResponse(refusal.body, status_code=refusal.status, headers=refusal.headers)


def requires_feature(
    feature: str, quantity: int = 1, *, gate: Gate | None = None
) -> Callable[[Endpoint], Endpoint]:
    """Run the endpoint only if the tenant may use `feature`; else 402 JSON or the upgrade page."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def gated(request: Request) -> Response:
            refusal = await refusal_for(request, feature, quantity, gate)
            if refusal is not None:
                return to_response(refusal)
            return await endpoint(request)

        return gated

    return decorate


def webhook_endpoint(webhooks: Webhooks) -> Endpoint:
    """An endpoint for billplane's webhooks: 204 once verified (the tenant's cached
    entitlements dropped), 400 in billplane's error envelope if billplane did not sign it."""

    async def receive_webhook(request: Request) -> Response:
        body = await request.body()
        try:
            webhooks.receive(body, request.headers)
        except WebhookRefused as refused:
            return JSONResponse(refused.body, status_code=refused.status)
        return Response(status_code=204)

    return receive_webhook
