"""The HTTP face of the double: Stripe's `/v1` routes, with Stripe's auth, errors and idempotency.

Handlers are plain functions run in a worker thread under the state lock, so a webhook receiver
that calls back into the double while an event is being delivered never deadlocks the server.
"""

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from stripe_double import billing, checkout, payments, resources, subscriptions
from stripe_double.errors import StripeError, authentication_failed, unknown_route
from stripe_double.forms import Params, as_list, decode
from stripe_double.objects import StripeObject, list_object
from stripe_double.state import DoubleState, RequestInfo, current_request, new_id

METHODS = ["GET", "POST", "DELETE"]
# Secret and restricted keys, and the mode each one works in.
KEY_MODES = {"sk_test_": False, "rk_test_": False, "sk_live_": True, "rk_live_": True}


@dataclass(frozen=True)
class Call:
    """One API call as a handler sees it."""

    state: DoubleState
    params: Params
    path: dict[str, str]
    livemode: bool
    api_version: str | None

    @property
    def id(self) -> str:
        return self.path["id"]


Handler = Callable[[Call], StripeObject]


def build_app(state: DoubleState, extra_routes: list[BaseRoute]) -> Starlette:
    routes: list[BaseRoute] = [
        *extra_routes,
        *(
            Route(path, _endpoint(state, handlers), methods=METHODS)
            for path, handlers in _api().items()
        ),
        Route("/{rest:path}", _endpoint(state, {}), methods=METHODS),
    ]
    return Starlette(routes=routes)


# --- the dispatcher ---------------------------------------------------------------------------


def _endpoint(state: DoubleState, handlers: dict[str, Handler]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        request_id = new_id("req_", 14)
        for watcher in state.api_watchers:
            watcher(request.method, request.url.path)
        try:
            livemode = _authenticate(request.headers.get("authorization", ""))
            handler = handlers.get(request.method)
            if handler is None:
                raise unknown_route(request.method, request.url.path)
            body = (await request.body()).decode()
            params = {**decode(request.url.query), **decode(body)}
            key = request.headers.get("idempotency-key") if request.method == "POST" else None
            info = RequestInfo(request_id, key)
            version = request.headers.get("stripe-version")
            call = Call(state, params, dict(request.path_params), livemode, version)
            fingerprint = hashlib.sha256(f"{request.url.path}?{body}".encode()).hexdigest()
            status, content = await run_in_threadpool(_serve, handler, call, info, fingerprint)
        except StripeError as error:
            status, content = error.status, json.dumps(error.body()).encode()
        return Response(
            content, status, media_type="application/json", headers={"Request-Id": request_id}
        )

    return endpoint


def _serve(handler: Handler, call: Call, info: RequestInfo, fingerprint: str) -> tuple[int, bytes]:
    state = call.state
    with state.lock:
        if info.idempotency_key and (saved := state.idempotent.get(info.idempotency_key)):
            # A retried POST gets the first answer instead of doing the work twice.
            if saved[0] != fingerprint:
                raise StripeError(
                    "Keys for idempotent requests can only be used with the same parameters.",
                    type="idempotency_error",
                )
            return 200, saved[1]
        token = current_request.set(info)
        try:
            content = json.dumps(handler(call)).encode()
        finally:
            current_request.reset(token)
        if info.idempotency_key:
            state.idempotent[info.idempotency_key] = (fingerprint, content)
    return 200, content


def _authenticate(header: str) -> bool:
    """Any test key is accepted (livemode false), any live key too (livemode true)."""
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "basic":
        # `curl -u sk_test_…:` sends the key as the basic-auth user name.
        credential = base64.b64decode(credential).decode(errors="replace").partition(":")[0]
    elif scheme.lower() != "bearer":
        credential = ""
    for prefix, livemode in KEY_MODES.items():
        if credential.startswith(prefix) and len(credential) > len(prefix):
            return livemode
    if not credential:
        raise authentication_failed(
            "You did not provide an API key. Provide it in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
        )
    raise authentication_failed(f"Invalid API Key provided: {credential[:12]}…")


# --- the routes -------------------------------------------------------------------------------


def _retrieve(kind: str) -> Handler:
    def retrieve(call: Call) -> StripeObject:
        return call.state.render(call.state.view(kind, call.id), call.params)

    return retrieve


def _listing(url: str, rows: Callable[[DoubleState, Params], list[StripeObject]]) -> Handler:
    def listing(call: Call) -> StripeObject:
        return call.state.page(rows(call.state, call.params), call.params, url)

    return listing


def _creating(create: Callable[..., StripeObject]) -> Handler:
    def creating(call: Call) -> StripeObject:
        return call.state.render(
            create(call.state, call.params, livemode=call.livemode), call.params
        )

    return creating


def _acting(act: Callable[..., StripeObject], *, with_params: bool = False) -> Handler:
    """A call on one object by id: `act(state, id)`, or `act(state, id, params)`."""

    def acting(call: Call) -> StripeObject:
        args = (call.params,) if with_params else ()
        return call.state.render(act(call.state, call.id, *args), call.params)

    return acting


def _retrieve_session(call: Call) -> StripeObject:
    session = call.state.render(call.state.get("checkout.session", call.id), call.params)
    if "line_items" in as_list(call.params.get("expand")):
        lines = checkout.line_items(call.state, call.id)
        session["line_items"] = list_object(lines, f"/v1/checkout/sessions/{call.id}/line_items")
    return session


def _session_lines(call: Call) -> StripeObject:
    url = f"/v1/checkout/sessions/{call.id}/line_items"
    return call.state.page(checkout.line_items(call.state, call.id), call.params, url)


def _invoice_lines(call: Call) -> StripeObject:
    lines = call.state.get("invoice", call.id)["lines"]["data"]
    return call.state.page(lines, call.params, f"/v1/invoices/{call.id}/lines")


def _create_webhook_endpoint(call: Call) -> StripeObject:
    return resources.create_webhook_endpoint(
        call.state, call.params, livemode=call.livemode, api_version=call.api_version
    )


def _api() -> dict[str, dict[str, Handler]]:
    r, s, c = resources, subscriptions, checkout
    return {
        "/v1/products": {
            "GET": _listing("/v1/products", r.list_products),
            "POST": _creating(r.create_product),
        },
        "/v1/products/{id}": {
            "GET": _retrieve("product"),
            "POST": _acting(r.update_product, with_params=True),
            "DELETE": _acting(r.delete_product),
        },
        "/v1/prices": {
            "GET": _listing("/v1/prices", r.list_prices),
            "POST": _creating(r.create_price),
        },
        "/v1/prices/{id}": {
            "GET": _retrieve("price"),
            "POST": _acting(r.update_price, with_params=True),
        },
        "/v1/customers": {
            "GET": _listing("/v1/customers", r.list_customers),
            "POST": _creating(r.create_customer),
        },
        "/v1/customers/{id}": {
            "GET": _retrieve("customer"),
            "POST": _acting(r.update_customer, with_params=True),
            "DELETE": _acting(billing.delete_customer),
        },
        "/v1/subscriptions": {
            "GET": _listing("/v1/subscriptions", s.list_subscriptions),
            "POST": _creating(s.create_subscription),
        },
        "/v1/subscriptions/{id}": {
            "GET": _retrieve("subscription"),
            "POST": _acting(s.update_subscription, with_params=True),
            "DELETE": _acting(s.cancel_subscription),
        },
        "/v1/subscription_items": {"GET": _listing("/v1/subscription_items", s.list_items)},
        "/v1/subscription_items/{id}": {"GET": _retrieve("subscription_item")},
        "/v1/checkout/sessions": {
            "GET": _listing("/v1/checkout/sessions", _list_sessions),
            "POST": _creating(c.create_session),
        },
        "/v1/checkout/sessions/{id}": {"GET": _retrieve_session},
        "/v1/checkout/sessions/{id}/line_items": {"GET": _session_lines},
        "/v1/checkout/sessions/{id}/expire": {"POST": _acting(c.expire)},
        "/v1/billing_portal/sessions": {"POST": _creating(c.create_portal_session)},
        "/v1/invoices": {"GET": _listing("/v1/invoices", r.list_invoices)},
        "/v1/invoices/{id}": {"GET": _retrieve("invoice")},
        "/v1/invoices/{id}/lines": {"GET": _invoice_lines},
        "/v1/webhook_endpoints": {
            "GET": _listing(
                "/v1/webhook_endpoints", lambda state, _: state.all("webhook_endpoint")
            ),
            "POST": _create_webhook_endpoint,
        },
        "/v1/webhook_endpoints/{id}": {
            "GET": _retrieve("webhook_endpoint"),
            "POST": _acting(r.update_webhook_endpoint, with_params=True),
            "DELETE": _acting(r.delete_webhook_endpoint),
        },
        "/v1/payment_intents": {
            "GET": _listing("/v1/payment_intents", payments.list_payment_intents)
        },
        "/v1/payment_intents/{id}": {"GET": _retrieve("payment_intent")},
        "/v1/charges": {"GET": _listing("/v1/charges", payments.list_charges)},
        "/v1/charges/{id}": {"GET": _retrieve("charge")},
        "/v1/refunds": {
            "GET": _listing("/v1/refunds", payments.list_refunds),
            "POST": _creating(payments.create_refund),
        },
        "/v1/refunds/{id}": {"GET": _retrieve("refund")},
        "/v1/events": {"GET": _listing("/v1/events", r.list_events)},
        "/v1/events/{id}": {"GET": _retrieve("event")},
    }


def _list_sessions(state: DoubleState, params: Params) -> list[StripeObject]:
    fields: dict[str, Callable[[Any], Any]] = {
        "customer": str,
        "subscription": str,
        "status": str,
        "payment_intent": str,
    }
    return resources.matching(state.all("checkout.session"), params, fields)
