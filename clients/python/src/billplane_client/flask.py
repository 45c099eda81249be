"""Gating for Flask apps: `@requires_feature("exports")`, generalising `@requires_pro_plan`.

    app = Flask(__name__)
    init_app(app, Gate(bp, tenant=lambda request: session.get("tenant")))

    @app.get("/exports/listings.csv")
    @requires_feature("exports")
    def export(): ...   # flask.g.billplane_check holds the check

    app.add_url_rule("/billplane/webhooks", view_func=webhook_view(Webhooks(bp, secret)),
                     methods=["POST"])  # billplane's webhooks drop a tenant's cached entitlements

Needs flask (`pip install billplane-client[flask]`) and the sync `Billplane` client.
"""

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, jsonify, redirect, request
from werkzeug.wrappers import Response

from billplane_client.gating import Gate, Refusal
from billplane_client.webhooks import WebhookRefused, Webhooks

F = TypeVar("F", bound=Callable[..., Any])
EXTENSION = "billplane"


def init_app(app: Any, gate: Gate) -> None:
    """Make `gate` the one `requires_feature` uses in this app."""
    app.extensions[EXTENSION] = gate


def to_response(refusal: Refusal) -> Response:
    if refusal.location is not None:
        return redirect(refusal.location, code=refusal.status)
    response = jsonify(refusal.body)
    response.status_code = refusal.status
    response.headers.update(refusal.headers)
    return response


def requires_feature(
    feature: str, quantity: int = 1, *, gate: Gate | None = None
) -> Callable[[F], F]:
    """Run the view only if the tenant may use `feature`; else 402 JSON or the upgrade page."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def gated(*args: Any, **kwargs: Any) -> Any:
            refusal = _refusal(feature, quantity, gate)
            if refusal is not None:
                return to_response(refusal)
            return view(*args, **kwargs)

        return gated  # type: ignore[return-value]

    return decorate


def _refusal(feature: str, quantity: int, gate: Gate | None) -> Refusal | None:
    chosen: Gate | None = gate or current_app.extensions.get(EXTENSION)
    if chosen is None:
        raise RuntimeError("no billplane Gate: call billplane_client.flask.init_app(app, gate)")
    tenant, check = chosen.check_sync(request, feature, quantity)
    g.billplane_check = check
    return chosen.refusal(
        request,
        feature=feature,
        tenant=tenant,
        check=check,
        accept=request.headers.get("Accept"),
        next_url=request.full_path.rstrip("?"),
    )


def webhook_view(webhooks: Webhooks) -> Callable[[], Response]:
    """A view for billplane's webhooks: 204 once verified (the tenant's cached entitlements
    dropped), 400 in billplane's error envelope if billplane did not sign it."""

    def receive_billplane_webhook() -> Response:
        try:
            webhooks.receive(request.get_data(), dict(request.headers))
        except WebhookRefused as refused:
            response = jsonify(refused.body)
            response.status_code = refused.status
            return response
        return Response(status=204)

    return receive_billplane_webhook
