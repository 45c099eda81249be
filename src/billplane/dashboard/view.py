"""Rendering a dashboard page: the layout's header status, flash messages and one-time secrets.

A secret (a new or rotated token) is kept by the POST that made it and taken by the next page
rendered, which shows it once: after that it exists nowhere but in the operator's hands. It
waits in the database, sealed with a pad that only the session's cookie holds (see
`operators.service.keep_secret`): never in the cookie itself, which the browser can read.
"""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from billplane import __version__
from billplane.dashboard import auth
from billplane.db import Transactions
from billplane.http import Now, ServedSettings, Stripe, Tx
from billplane.operators import service as operators
from billplane.settings import Settings
from billplane.status import repository
from billplane.status.probes import ago, stripe_status, webhook_status
from billplane.stripe.gateway import StripeGateway

REVEAL = "reveal"  # the cookie's claim on a one-time secret: its row and its pad

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["version"] = __version__


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


# Stripe's zero-decimal currencies: their amounts are whole units, not hundredths.
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)


def money(amount: int | None, currency: str | None) -> str:
    """Minor units as an amount a person reads: `900, "usd"` is "9.00 USD"."""
    if amount is None:
        return "—"
    code = (currency or "").lower()
    shown = str(amount) if code in ZERO_DECIMAL else f"{amount / 100:.2f}"
    return f"{shown} {code.upper()}".strip()


templates.env.filters["when"] = _when
templates.env.globals["money"] = money
templates.env.filters["ago"] = ago


@dataclass
class View:
    request: Request
    settings: Settings
    tx: Transactions
    now: datetime
    stripe: StripeGateway

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        with self.tx.read() as session:
            last = repository.last_event(session)
        session_data = self.request.session
        return templates.TemplateResponse(
            self.request,
            template,
            {
                "stripe": stripe_status(self.stripe),
                "webhook": webhook_status(self.settings, last, self.now),
                "csrf": auth.csrf_token(self.request),
                "flash": session_data.pop("flash", None),
                "reveal": self._revealed(),
                "now": self.now,
                "errors": {},
                "values": {},
                **context,
            },
            status_code=status_code,
        )

    def reveal(self, *, secret: str, what: str) -> None:
        """Keep a new secret for the next page only (POST-redirect-GET)."""
        session_secret = auth.session_secret(self.request)
        if session_secret is None:
            return
        with self.tx.write() as session:
            claim = operators.keep_secret(
                session, session_secret, secret=secret, what=what, now=self.now
            )
        if claim is not None:
            self.request.session[REVEAL] = {"id": claim.id, "pad": claim.pad}

    def _revealed(self) -> dict[str, str] | None:
        claimed = self.request.session.pop(REVEAL, None)
        session_secret = auth.session_secret(self.request)
        if not isinstance(claimed, dict) or session_secret is None:
            return None
        claim = operators.Claim(id=str(claimed.get("id")), pad=str(claimed.get("pad")))
        with self.tx.write() as session:
            taken = operators.take_secret(session, session_secret, claim, self.now)
        return None if taken is None else {"what": taken[0], "secret": taken[1]}

    def current_project(self, key: str) -> None:
        """Remember the project the operator works on, for the Plans and Tenants links."""
        self.request.session["project"] = key


def flash(request: Request, text: str, kind: str = "ok") -> None:
    request.session["flash"] = {"text": text, "kind": kind}


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def form_view(request: Request, settings: ServedSettings, tx: Tx, now: Now, stripe: Stripe) -> View:
    """For a form's handler: its operator_form dependency answers 403 to a stranger."""
    return View(request, settings, tx, now, stripe)


def page_view(request: Request, settings: ServedSettings, tx: Tx, now: Now, stripe: Stripe) -> View:
    """For a page: a visitor without a session is sent to the login page."""
    auth.require_operator(request, tx, now)
    return View(request, settings, tx, now, stripe)


FormView = Annotated[View, Depends(form_view)]
PageView = Annotated[View, Depends(page_view)]
