"""realtyos: a small listings app that sells a Pro plan through billplane.

It shows the three moves every client app makes, with billplane_client's helpers:
- gate a paid action (`requires_feature`): an API call that may not gets 402 `payment_required`,
  a page request goes to the upgrade page;
- count what was used once the action succeeded (`records_usage`, one key per listing, so
  publishing the same listing twice counts once);
- upgrade: a button opens billplane's checkout, Stripe sends the person back, the app confirms;
- sell credits and spend them: a pack of credits bought through Stripe Checkout (top-up), and an
  AI description of a listing that holds its estimated credits first, then pays what it used;
- hear of changes: billplane's webhooks (`/billplane/webhooks`, with BILLPLANE_WEBHOOK_SECRET)
  drop a tenant's cached entitlements, so a plan changed in billplane holds at the next request.

Run it (see README.md): `uvicorn --factory app:create_app --app-dir examples/realtyos`.
"""

import csv
import html
import io
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import count
from typing import Annotated, Any

from billplane_client import (
    Billplane,
    BillplaneUnreachable,
    Conflict,
    Gate,
    OutagePolicy,
    PaymentRequired,
    Webhooks,
    records_usage,
)
from billplane_client.fastapi import add_webhook_route, install, requires_feature
from billplane_client.gating import wants_html
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

TENANT_COOKIE = "realtyos_tenant"
# An AI description of a listing: what it may take (held before it starts), in AI tokens.
DESCRIBE_ESTIMATE = 40


@dataclass(frozen=True)
class Settings:
    billplane_url: str
    billplane_token: str
    public_url: str = "http://127.0.0.1:8001"  # must lie under the project's origins
    pro_plan: str = "pro"
    # The secret billplane showed when this app's webhook endpoint was added (whsec_...): with
    # it, /billplane/webhooks drops a tenant's cached entitlements as soon as they change.
    webhook_secret: str | None = None
    # How long a tenant's entitlements answer its checks (the client's default: 5 s). With the
    # webhook, a long TTL costs no staleness: billplane tells the app when to drop them.
    cache_ttl: float = 5.0
    # A one-time Stripe price a credit pool of the project sells (its `packs`): with it, the
    # app sells that pack of credits, which AI descriptions spend.
    credit_pack: str | None = None
    credit_pool: str = "credits"

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            billplane_url=os.environ["BILLPLANE_URL"],
            billplane_token=os.environ["BILLPLANE_TOKEN"],
            public_url=os.environ.get("REALTYOS_PUBLIC_URL", cls.public_url).rstrip("/"),
            pro_plan=os.environ.get("REALTYOS_PRO_PLAN", cls.pro_plan),
            webhook_secret=os.environ.get("BILLPLANE_WEBHOOK_SECRET") or None,
            cache_ttl=float(os.environ.get("REALTYOS_CACHE_TTL", cls.cache_ttl)),
            credit_pack=os.environ.get("REALTYOS_CREDIT_PACK") or None,
            credit_pool=os.environ.get("REALTYOS_CREDIT_POOL", cls.credit_pool),
        )


@dataclass
class Listings:
    """The app's own data, in memory: listings by tenant."""

    by_tenant: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: count(1))

    def add(self, tenant: str, title: str) -> dict[str, Any]:
        listing_id = next(self.ids)
        listing = {"id": listing_id, "title": title, "published": False}
        self.by_tenant.setdefault(tenant, {})[listing_id] = listing
        return listing

    def get(self, tenant: str, listing_id: int) -> dict[str, Any]:
        found = self.by_tenant.get(tenant, {}).get(listing_id)
        if found is None:
            raise HTTPException(404, "No such listing.")
        return found

    def of(self, tenant: str) -> list[dict[str, Any]]:
        return list(self.by_tenant.get(tenant, {}).values())


def signed_in_tenant(request: Request) -> str | None:
    """The demo's sign-in: a cookie set by /login, or an `X-Tenant` header for API calls."""
    return request.headers.get("X-Tenant") or request.cookies.get(TENANT_COOKIE)


def tenant_of(request: Request) -> str:
    tenant = signed_in_tenant(request)
    if not tenant:
        raise HTTPException(401, "Sign in first.")
    return tenant


Tenant = Annotated[str, Depends(tenant_of)]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    # Publishing is the product's core: if billing is briefly away, let it through (usage is
    # recorded once billplane answers again or logged); exports stay closed.
    billplane = Billplane(
        settings.billplane_url,
        settings.billplane_token,
        outage=OutagePolicy(default="closed", features={"listings.publish": "open"}),
        cache_ttl=settings.cache_ttl,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        billplane.close()

    app = FastAPI(title="realtyos", lifespan=lifespan)
    install(app, Gate(billplane, tenant=signed_in_tenant, upgrade_url="/upgrade?feature={feature}"))
    if settings.webhook_secret:
        add_webhook_route(app, "/billplane/webhooks", Webhooks(billplane, settings.webhook_secret))
    app.state.listings = Listings()
    app.state.billplane = billplane
    _listing_routes(app, billplane)
    _billing_routes(app, billplane, settings)
    _credit_routes(app, billplane, settings)
    _pages(app, billplane, settings)
    return app


def _listing_routes(app: FastAPI, billplane: Billplane) -> None:
    listings: Listings = app.state.listings

    @app.post("/api/listings", status_code=201)
    def create_listing(tenant: Tenant, body: dict[str, str]) -> dict[str, Any]:
        return listings.add(tenant, body.get("title") or "Untitled listing")

    @app.post(
        "/listings/{listing_id}/publish",
        dependencies=[Depends(requires_feature("listings.publish"))],
    )
    def publish(listing_id: int, tenant: Tenant, request: Request) -> Response:
        # One key per listing: publishing it again (a retry, a double click) counts once.
        key = f"{tenant}-listing-{listing_id}-published"
        with records_usage(billplane, tenant, "listings.publish", idempotency_key=key) as recorded:
            listing = listings.get(tenant, listing_id)  # 404 raises: nothing is counted
            listing["published"] = True
        if wants_html(request.headers.get("accept")):
            return RedirectResponse("/", 303)
        remaining = recorded.usage.remaining if recorded.usage else None
        return JSONResponse({**listing, "remaining": remaining})

    @app.get("/exports/listings.csv", dependencies=[Depends(requires_feature("exports"))])
    def export(tenant: Tenant) -> Response:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["id", "title", "published"])
        writer.writeheader()
        writer.writerows(listings.of(tenant))
        return Response(out.getvalue(), media_type="text/csv")


def _billing_routes(app: FastAPI, billplane: Billplane, settings: Settings) -> None:
    @app.post("/billing/checkout")
    def upgrade(tenant: Tenant) -> Response:
        """The upgrade button: billplane opens Stripe Checkout for the Pro plan."""
        try:
            session = billplane.checkout(
                tenant,
                settings.pro_plan,
                success_url=f"{settings.public_url}/billing/success",
                cancel_url=f"{settings.public_url}/upgrade",
            )
        except Conflict:
            # Already subscribed: plan changes go through the portal.
            return _to_portal(billplane, tenant, settings)
        return RedirectResponse(session.url, 303)

    @app.get("/billing/success")
    def checkout_done(session_id: str) -> Response:
        """Stripe sends the person back here; confirming applies the plan at once."""
        billplane.confirm_checkout(session_id)
        return RedirectResponse("/?upgraded=1", 303)

    @app.post("/billing/portal")
    def portal(tenant: Tenant) -> Response:
        return _to_portal(billplane, tenant, settings)


def _credit_routes(app: FastAPI, billplane: Billplane, settings: Settings) -> None:
    listings: Listings = app.state.listings

    @app.post("/billing/credits")
    def buy_credits(tenant: Tenant) -> Response:
        """The "Buy credits" button: billplane opens Stripe Checkout for the pack; on return,
        /billing/success confirms it and the credits land (once, even if the webhook also
        arrives)."""
        if settings.credit_pack is None:
            raise HTTPException(404, "This app sells no credits (REALTYOS_CREDIT_PACK).")
        topup = billplane.topup(
            tenant,
            settings.credit_pack,
            success_url=f"{settings.public_url}/billing/success",
            cancel_url=f"{settings.public_url}/",
        )
        return RedirectResponse(str(topup.url), 303)

    @app.post("/listings/{listing_id}/describe")
    def describe(listing_id: int, tenant: Tenant, request: Request) -> Response:
        """A long AI action paid in credits: hold the estimate, write, pay what it used."""
        listing = listings.get(tenant, listing_id)
        key = f"{tenant}-listing-{listing_id}-description"
        try:
            held = billplane.reserve(tenant, "ai.tokens", DESCRIBE_ESTIMATE, idempotency_key=key)
        except PaymentRequired as refused:
            if wants_html(request.headers.get("accept")):
                return RedirectResponse("/?credits=low", 303)
            return JSONResponse({"error": {"code": refused.code, **refused.details}}, 402)
        try:
            listing["description"] = _describe(listing["title"])
        except Exception:
            billplane.release(held.id)  # the action failed: every credit goes back
            raise
        used = len(listing["description"].split())  # the "tokens" the model used
        paid = billplane.finalize(held.id, used)
        if wants_html(request.headers.get("accept")):
            return RedirectResponse("/", 303)
        return JSONResponse(
            {**listing, "credits_spent": paid.final_amount, "balance": paid.balance}
        )


def _describe(title: str) -> str:
    """Stands in for a language model."""
    return f"{title}: bright, quiet and close to everything. Book a visit today."


def _to_portal(billplane: Billplane, tenant: str, settings: Settings) -> Response:
    return RedirectResponse(billplane.portal(tenant, return_url=f"{settings.public_url}/").url, 303)


def _pages(app: FastAPI, billplane: Billplane, settings: Settings) -> None:
    listings: Listings = app.state.listings

    @app.get("/login")
    def login(tenant: str) -> Response:
        response = RedirectResponse("/", 303)
        response.set_cookie(TENANT_COOKIE, tenant, httponly=True, samesite="lax")
        return response

    @app.post("/listings")
    def add_listing(tenant: Tenant, title: Annotated[str, Form()]) -> Response:
        listings.add(tenant, title)
        return RedirectResponse("/", 303)

    @app.get("/", response_class=HTMLResponse)
    def home(tenant: Tenant) -> str:
        rows = "".join(_listing_row(listing) for listing in listings.of(tenant))
        return _page(
            "realtyos",
            f"<p>Signed in as <b>{_e(tenant)}</b> · {_plan_summary(billplane, tenant)}</p>"
            + _credit_summary(billplane, tenant, settings)
            + f"<ul>{rows}</ul>"
            '<form method="post" action="/listings"><input name="title" placeholder="Title">'
            "<button>Add listing</button></form>"
            '<p><a href="/exports/listings.csv">Export listings (CSV)</a></p>',
        )

    @app.get("/upgrade", response_class=HTMLResponse)
    def upgrade_page(feature: str = "") -> str:
        reason = f"<p>{_e(feature)} is part of Pro.</p>" if feature else ""
        return _page(
            "Upgrade to Pro",
            reason + '<form method="post" action="/billing/checkout">'
            '<button type="submit">Upgrade to Pro</button></form>',
        )


def _plan_summary(billplane: Billplane, tenant: str) -> str:
    try:
        entitlements = billplane.entitlements(tenant)
    except BillplaneUnreachable:
        return "billing is briefly unavailable"
    publish = entitlements.features.get("listings.publish")
    quota = f"{publish.used} of {publish.limit}" if publish and publish.limit else "unlimited"
    return (
        f"plan <b>{_e(entitlements.plan)}</b> · published this month: {_e(quota)}"
        + _billing_button(entitlements.plan)
    )


def _credit_summary(billplane: Billplane, tenant: str, settings: Settings) -> str:
    if settings.credit_pack is None:
        return ""
    try:
        balance = billplane.balances(tenant).balance(settings.credit_pool)
    except (BillplaneUnreachable, KeyError):
        return ""
    return (
        f"<p>Credits: <b>{balance}</b>"
        '<form method="post" action="/billing/credits"><button>Buy credits</button></form></p>'
    )


def _listing_row(listing: dict[str, Any]) -> str:
    if "description" in listing:
        return f"<li>{_e(listing['title'])} — {_e(listing['description'])}</li>"
    if listing["published"]:
        return f"<li>{_e(listing['title'])} — published</li>"
    action = f"/listings/{listing['id']}/publish"
    button = f'<form method="post" action="{action}"><button>Publish</button></form>'
    return f"<li>{_e(listing['title'])} {button}</li>"


def _billing_button(plan: str | None) -> str:
    if plan == "pro":
        return '<form method="post" action="/billing/portal"><button>Manage billing</button></form>'
    return '<form method="post" action="/billing/checkout"><button>Upgrade to Pro</button></form>'


def _page(title: str, body: str) -> str:
    return f"<!doctype html><title>{_e(title)}</title><h1>{_e(title)}</h1>{body}"


def _e(value: object) -> str:
    return html.escape(str(value))
