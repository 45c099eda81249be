"""`/_double/...`: the hosted checkout and portal pages, and the lifecycle and delivery controls
over HTTP, for tests that drive the double from another process (or a browser).

Every route calls the same `StripeDouble` method a Python test would call.
"""

import html
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from stripe_double.errors import StripeError
from stripe_double.forms import Params, as_bool, as_int, as_list, decode

if TYPE_CHECKING:
    from stripe_double.server import StripeDouble

Action = Callable[["StripeDouble", dict[str, str], Params], Any]


def control_routes(double: "StripeDouble") -> list[BaseRoute]:
    def route(path: str, action: Action, method: str = "POST") -> Route:
        return Route(f"/_double{path}", _endpoint(double, action), methods=[method])

    return [
        Route("/_double/checkout/{id}", _page(double, _checkout_page), methods=["GET"]),
        Route("/_double/checkout/{id}/pay", _page(double, _pay), methods=["POST"]),
        Route("/_double/portal/{id}", _page(double, _portal_page), methods=["GET"]),
        route(
            "/checkout/{id}/complete",
            lambda d, path, p: d.complete_checkout(path["id"], email=p.get("email")),
        ),
        route("/subscriptions/{id}/renew", lambda d, path, p: d.renew(path["id"])),
        route(
            "/subscriptions/{id}/fail_payment",
            lambda d, path, p: d.fail_payment(path["id"], status=p.get("status", "past_due")),
        ),
        route("/subscriptions/{id}/recover", lambda d, path, p: d.recover(path["id"])),
        route(
            "/subscriptions/{id}/cancel",
            lambda d, path, p: d.cancel(path["id"], at_period_end=as_bool(p.get("at_period_end"))),
        ),
        route("/customers/{id}/delete", lambda d, path, p: d.delete_customer(path["id"])),
        route("/clock", lambda d, path, p: {"now": d.now}, "GET"),
        route("/clock", _move_clock),
        route("/deliveries", lambda d, path, p: [asdict(x) for x in d.deliveries], "GET"),
        route("/deliveries/pending", lambda d, path, p: d.pending_events(), "GET"),
        route("/deliveries/hold", lambda d, path, p: d.hold_deliveries()),
        route("/deliveries/resume", lambda d, path, p: d.resume_deliveries()),
        route("/deliveries/deliver", _deliver),
        route("/reset", lambda d, path, p: d.reset()),
    ]


def _endpoint(double: "StripeDouble", action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        params = {**decode(request.url.query), **decode((await request.body()).decode())}
        try:
            # Off the event loop: a control may wait for webhook deliveries whose receivers
            # call back into this very server.
            result = await run_in_threadpool(action, double, dict(request.path_params), params)
        except StripeError as error:
            return JSONResponse(error.body(), error.status)
        return Response(json.dumps(result), media_type="application/json")

    return endpoint


def _move_clock(double: "StripeDouble", path: dict[str, str], params: Params) -> dict[str, int]:
    if params.get("set") not in (None, ""):
        double.clock.set(as_int(params["set"], "set"))
    double.advance(
        as_int(params.get("seconds", 0), "seconds"), days=as_int(params.get("days", 0), "days")
    )
    return {"now": double.now}


def _deliver(double: "StripeDouble", path: dict[str, str], params: Params) -> list[dict[str, Any]]:
    types = {str(kind) for kind in as_list(params.get("types"))} or None
    seed = params.get("seed")
    deliveries = double.deliver(
        order=params.get("order", "as_is"),
        duplicate=as_bool(params.get("duplicate", False)),
        seed=None if seed in (None, "") else as_int(seed, "seed"),
        types=types,
    )
    return [asdict(delivery) for delivery in deliveries]


# --- hosted pages ----------------------------------------------------------------------------

Page = Callable[["StripeDouble", str], Response]


def _page(double: "StripeDouble", page: Page) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(page, double, request.path_params["id"])
        except StripeError as error:
            return HTMLResponse(f"<h1>{html.escape(error.message)}</h1>", error.status)

    return endpoint


def _checkout_page(double: "StripeDouble", session_id: str) -> Response:
    session = double.get(session_id)
    if session["status"] != "open":
        return HTMLResponse(f"<h1>This checkout session is {session['status']}.</h1>", 410)
    amount = f"{(session['amount_total'] or 0) / 100:.2f} {str(session['currency']).upper()}"
    cancel = session["cancel_url"] or "#"
    return HTMLResponse(
        "<!doctype html><title>Stripe double checkout</title>"
        f"<h1>Pay {html.escape(amount)}</h1>"
        f"<p>Session <code>{html.escape(session_id)}</code> ({html.escape(session['mode'])})</p>"
        f'<form method="post" action="/_double/checkout/{html.escape(session_id)}/pay">'
        '<button type="submit">Pay</button></form>'
        f'<p><a href="{html.escape(cancel)}">Cancel</a></p>'
    )


def _pay(double: "StripeDouble", session_id: str) -> Response:
    session = double.complete_checkout(session_id)
    # Stripe fills the template so the app can look the session up on return.
    target = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)
    return RedirectResponse(target, 303)


def _portal_page(double: "StripeDouble", session_id: str) -> Response:
    session = double.get(session_id)
    back = session["return_url"] or "#"
    return HTMLResponse(
        "<!doctype html><title>Stripe double billing portal</title>"
        f"<h1>Billing portal for {html.escape(session['customer'])}</h1>"
        f'<p><a href="{html.escape(back)}">Return</a></p>'
    )
