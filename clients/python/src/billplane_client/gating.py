"""Gating a route on a feature, independent of any web framework.

A `Gate` knows the client, how to find the tenant of a request, and where the upgrade flow
starts. For a refused check it decides the answer: an API call (JSON) gets 402 with
`{"error": {"code": "payment_required", ...}}`; a page request (HTML) is redirected to the
upgrade URL. The framework modules (`billplane_client.fastapi`, `.starlette`, `.flask`) only turn
that decision into their own response type.
"""

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from billplane_client.aio import AsyncBillplane
from billplane_client.client import Billplane
from billplane_client.errors import UNREACHABLE
from billplane_client.types import Check

log = logging.getLogger("billplane_client")

TenantOf = Callable[[Any], str | Awaitable[str | None] | None]
UpgradeUrl = str | Callable[[Any, str], str]

_MESSAGES = {
    "limit_reached": "The {feature} limit of your plan is reached.",
    "not_in_plan": "Your plan does not include {feature}.",
    "no_plan": "Choose a plan to use {feature}.",
    "subscription_inactive": "Your subscription is not active: renew it to use {feature}.",
    "unknown_feature": "{feature} is not a feature billplane knows for this project.",
    "tenant_archived": "This account is archived: ask to have it restored to use {feature}.",
    "feature_archived": "{feature} is no longer offered.",
}


@dataclass(frozen=True)
class Refusal:
    """What to answer instead of running the route: a JSON body, or a redirect."""

    status: int
    body: dict[str, Any] | None = None
    location: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Gate:
    """How an app gates its routes.

    `tenant(request)` returns the signed-in tenant's key (or None: answered 401); it may be
    async. `upgrade_url` is a template with `{feature}`, `{tenant}` and `{next}` (the refused
    request's path, URL-quoted), or a callable `(request, feature) -> url`.
    """

    client: Billplane | AsyncBillplane
    tenant: TenantOf
    upgrade_url: UpgradeUrl = "/upgrade?feature={feature}&next={next}"

    async def check(
        self, request: Any, feature: str, quantity: int
    ) -> tuple[str | None, Check | None]:
        """The request's tenant and its check; a sync client is run in a worker thread."""
        tenant = self.tenant(request)
        if inspect.isawaitable(tenant):
            tenant = await tenant
        if not tenant:
            return None, None
        if isinstance(self.client, AsyncBillplane):
            return tenant, await self.client.check(tenant, feature, quantity)
        return tenant, await asyncio.to_thread(self.client.check, tenant, feature, quantity)

    def check_sync(
        self, request: Any, feature: str, quantity: int
    ) -> tuple[str | None, Check | None]:
        """As `check`, for sync frameworks (Flask): needs a sync client and tenant function."""
        if not isinstance(self.client, Billplane):
            raise TypeError("a sync framework needs the sync Billplane client")
        tenant = self.tenant(request)
        if inspect.isawaitable(tenant):
            raise TypeError("a sync framework needs a sync tenant function")
        if not tenant:
            return None, None
        return tenant, self.client.check(tenant, feature, quantity)

    def refusal(
        self,
        request: Any,
        *,
        feature: str,
        tenant: str | None,
        check: Check | None,
        accept: str | None,
        next_url: str,
    ) -> Refusal | None:
        """None when the route may run; otherwise what to answer instead."""
        if tenant is None or check is None:
            return _error(401, "unauthorized", "Sign in first: this request has no tenant.")
        if check.allowed:
            return None
        if check.reason == UNREACHABLE:
            # Billing is away and the feature fails closed: upgrading would not help.
            return _error(503, UNREACHABLE, "Billing is unavailable right now; try again soon.")
        if check.reason == "unknown_feature":
            why = check.message or "billplane does not know it: define it"
            log.warning("gated on %r: %s", feature, why)
        url = self._upgrade_url(request, feature, tenant, next_url)
        if wants_html(accept):
            return Refusal(status=303, location=url)
        return payment_required(check, url)

    def _upgrade_url(self, request: Any, feature: str, tenant: str, next_url: str) -> str:
        if callable(self.upgrade_url):
            return self.upgrade_url(request, feature)
        values = {k: quote(v, safe="") for k, v in (("feature", feature), ("tenant", tenant))}
        return self.upgrade_url.format(next=quote(next_url, safe=""), **values)


def payment_required(check: Check, upgrade_url: str) -> Refusal:
    message = _MESSAGES.get(check.reason, "Upgrade to use {feature}.").format(feature=check.feature)
    details = {"feature": check.feature, "reason": check.reason, "upgrade_url": upgrade_url}
    for name in ("limit", "used", "remaining"):
        if getattr(check, name) is not None:
            details[name] = getattr(check, name)
    return _error(402, "payment_required", message, **details)


def _error(status: int, code: str, message: str, **details: Any) -> Refusal:
    return Refusal(status=status, body={"error": {"code": code, "message": message, **details}})


def wants_html(accept: str | None) -> bool:
    """Whether the request prefers an HTML page over JSON (a browser navigating, not `fetch`).

    No Accept header, `*/*`, or JSON ranked at least as high as HTML all mean an API call.
    """
    html = json = 0.0
    for media_range in (accept or "").split(","):
        kind, _, params = media_range.strip().partition(";")
        quality = _quality(params)
        if kind.strip().lower() in ("text/html", "application/xhtml+xml"):
            html = max(html, quality)
        elif kind.strip().lower() == "application/json":
            json = max(json, quality)
    return html > json


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0
