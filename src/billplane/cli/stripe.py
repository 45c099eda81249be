"""The CLI's Stripe commands: `billplane stripe check|sync` and `billplane events list|replay`.

Each command is an edge like a request: it reads the settings once, opens its own transactions
and turns expected failures into one line on stderr and a non-zero exit.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.exc import ArgumentError, DBAPIError

from billplane.api.webhooks import event_out
from billplane.billing import repository
from billplane.cli.output import AsJson, Fields, price_text, show, show_list
from billplane.clock import utc_now
from billplane.db import Database, Transactions
from billplane.errors import BillplaneError, present
from billplane.schemas import EventOutcome
from billplane.settings import Settings, SettingsError, load_settings
from billplane.status.probes import PricedPlan, StripeReport, stripe_report
from billplane.stripe.gateway import StripeGateway
from billplane.webhooks import pipeline
from billplane.webhooks import repository as events
from billplane.webhooks.schemas import EventOut
from billplane.webhooks.sync import sync

stripe_app = typer.Typer(help="What billplane sees of Stripe, and repairs from it.")
events_app = typer.Typer(help="Stripe events received by the webhook.")


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@contextmanager
def _edge() -> Iterator[tuple[Settings, Transactions, StripeGateway]]:
    try:
        settings = load_settings()
        db = Database.from_settings(settings)
    except SettingsError as exc:
        _fail(str(exc), 2)
    except (ArgumentError, ValueError):
        _fail("billplane cannot start: DATABASE_URL is not a valid database URL.", 2)
    try:
        yield settings, Transactions(db), StripeGateway.from_settings(settings)
    except BillplaneError as exc:
        _fail(f"error ({exc.code}): {exc.message}")
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        _fail(f"error (database): {reason}")
    finally:
        db.dispose()


@stripe_app.command("check")
def stripe_check(as_json: AsJson = False) -> None:
    """The key (valid? test or live?), each plan's price, and the webhook endpoint in Stripe.
    Exits 1 when something needs doing."""
    with _edge() as (settings, tx, stripe):
        with tx.read() as session:
            plans = [PricedPlan(*row) for row in repository.priced_plans(session)]
        report = stripe_report(stripe, settings, plans, utc_now)
    if as_json:
        typer.echo(report.model_dump_json(indent=2, exclude_unset=True))
    else:
        for line in _check_lines(report):
            typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


def _check_lines(report: StripeReport) -> Iterator[str]:
    key = report.key
    if not key.valid:
        # Only a key Stripe refused (or none at all) is an error; silence from Stripe is not.
        verdict = "unknown" if key.problem in {"unreachable", "rate_limited", "failed"} else "error"
        yield f"Stripe: {verdict}: {key.error}"
        return
    yield f"Stripe: connected, {report.mode} mode (the key is valid)"
    if not report.plans:
        yield "Plans: none has a Stripe price yet"
    for plan in report.plans:
        yield f"Plan {plan.project}/{plan.plan} ({plan.price}): {price_text(plan.stripe)}"
    hook = report.webhook
    yield f"Webhook secret: {'set' if hook.secret_set else 'missing (STRIPE_WEBHOOK_SECRET)'}"
    if hook.registered is None:
        yield f"Webhook endpoint {hook.url}: unknown ({hook.error})"
    elif not hook.registered:
        yield f"Webhook endpoint {hook.url}: not registered in Stripe; add it with the events:"
        yield from (f"  - {event}" for event in hook.missing_events or [])
    elif hook.missing_events or not hook.enabled:
        state = "enabled" if hook.enabled else "DISABLED"
        yield f"Webhook endpoint {hook.url}: registered ({state}), missing events:"
        yield from (f"  - {event}" for event in hook.missing_events or [])
    else:
        yield f"Webhook endpoint {hook.url}: registered, enabled, with every needed event"


@stripe_app.command("sync")
def stripe_sync(as_json: AsJson = False) -> None:
    """Pull customers and subscriptions from Stripe and repair what missed webhooks left
    wrong; prints every change."""
    progress: Callable[[str], None] = lambda step: typer.echo(f"... {step}", err=True)  # noqa: E731
    with _edge() as (settings, tx, stripe):
        grace_days = settings.billplane_past_due_grace_days
        report = sync(tx, stripe, utc_now, progress, grace_days=grace_days).as_dict()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{report['customers']} customers and {report['subscriptions']} subscriptions "
        f"checked; {report['changed']} changes."
        + (f" {report['topups']} top-ups checked." if report["topups"] else "")
    )
    for change in report["changes"]:
        typer.echo(f"  {change['action']} {change['target']}: {_difference(change)}")
    for problem in report["problems"]:
        typer.echo(f"  not repaired: {problem}")


def _difference(change: dict[str, Any]) -> str:
    before, after = change["before"] or {}, change["after"] or {}
    keys = [k for k in {**before, **after} if before.get(k) != after.get(k)]
    return ", ".join(f"{k} {before.get(k)} -> {after.get(k)}" for k in keys) or "recorded"


def event_fields(out: EventOut) -> Fields:
    return out.model_dump()


@events_app.command("list")
def events_list(
    outcome: Annotated[
        EventOutcome | None, typer.Option(help="Only events with this outcome")
    ] = None,
    limit: int = 20,
    as_json: AsJson = False,
) -> None:
    """The newest received events."""
    with _edge() as (_, tx, _stripe), tx.read() as session:
        page = events.recent(session, limit=limit, outcome=outcome)
        outs = [event_out(e) for e in page.data]
    columns = ["id", "type", "outcome", "received_at", "error", "reason"]
    show_list(outs, as_json, event_fields, columns, has_more=page.has_more)


@events_app.command("replay")
def events_replay(event_id: str, as_json: AsJson = False) -> None:
    """Process a received event again (e.g. a failed one, once its cause is fixed)."""
    with _edge() as (settings, tx, stripe):
        grace_days = settings.billplane_past_due_grace_days
        pipeline.replay_stored(tx, stripe, event_id, utc_now, grace_days=grace_days)
        with tx.read() as session:
            out = event_out(present(events.get(session, event_id), f"event {event_id}"))
    show(out, as_json, event_fields)
