"""Dashboard HTTP for plans: the table (with each price's Stripe status), create and edit, and a
plan's versions (how many tenants are on each, moving them to the newest)."""

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from billplane.dashboard import forms
from billplane.dashboard.auth import OperatorForm
from billplane.dashboard.view import FormView, PageView, View, flash, redirect
from billplane.entitlements import preview
from billplane.entitlements.schemas import PreviewOut
from billplane.errors import BillplaneError
from billplane.plans import prices, repository, service, versions
from billplane.plans.schemas import MigrateIn, MigrateMode, PlanIn, PlanPatch, grant_specs
from billplane.projects import repository as projects
from billplane.projects.service import get_project
from billplane.schemas import Status
from billplane.status.probes import PriceStatus, price_status

router = APIRouter(include_in_schema=False)
ACTOR = "dashboard"


@router.get("/projects/{project}/plans", response_class=HTMLResponse)
def plans_page(project: str, view: PageView) -> Response:
    return _plans(view, project)


def _plans(view: View, key: str, **context: Any) -> Response:
    with view.tx.read() as session:
        found = get_project(session, key)
        features = list(projects.features_of(session, found.id))
        rows = repository.list_plans(session, found.id, limit=100, starting_after=None).data
        described = [service.describe(session, found, plan) for plan in rows]
    # Stripe is asked outside the transaction: a slow network never holds a database connection.
    prices = {plan["key"]: _price(view, plan["stripe_price_id"]) for plan in described}
    view.current_project(found.key)
    return view.render(
        "plans.html",
        page="plans",
        project=found,
        features=features,
        plans=described,
        prices=prices,
        resets=forms.RESETS,
        **context,
    )


def _look_up(view: View, price_id: str | None) -> prices.PriceLookup | None:
    """Stripe's word on the price, stored with the plan as the admin API stores it; asked
    before the transaction opens, so a slow Stripe never holds a database lock."""
    return prices.look_up(view.stripe, price_id, view.now) if price_id else None


def _price(view: View, price_id: str | None) -> PriceStatus | None:
    lookup = _look_up(view, price_id)
    return price_status(lookup) if lookup else None


@router.post("/projects/{project}/plans", response_class=HTMLResponse)
def create_plan(project: str, request: Request, form: OperatorForm, view: FormView) -> Response:
    lookup = _look_up(view, forms.text(form, "stripe_price_id"))
    try:
        with view.tx.write() as session:
            found = get_project(session, project)
            features = projects.features_of(session, found.id)
            data = {
                "key": forms.text(form, "key"),
                "name": forms.text(form, "name"),
                "stripe_price_id": forms.text(form, "stripe_price_id"),
                "trial_days": forms.number(form, "trial_days"),
                "is_default": forms.checked(form, "is_default"),
                "features": forms.plan_grants(form, features),
            }
            body = forms.validated(PlanIn, forms.without_none(data))
            service.create_plan(
                session,
                found,
                body,
                actor=ACTOR,
                now=view.now,
                grace_days=view.settings.billplane_past_due_grace_days,
                price_lookup=lookup,
                stripe_mode=view.stripe.mode,
            )
    except (forms.Invalid, BillplaneError) as exc:
        invalid = forms.as_invalid(exc)
        return _plans(
            view,
            project,
            status_code=422,
            errors=invalid.fields,
            general=invalid.general,
            values=form,
        )
    flash(request, f"Plan {body.key} created.")
    return redirect(f"/projects/{project}/plans")


@router.get("/projects/{project}/plans/{plan}", response_class=HTMLResponse)
def plan_page(project: str, plan: str, view: PageView) -> Response:
    return _plan(view, project, plan)


def _plan(view: View, key: str, plan_key: str, **context: Any) -> Response:
    grace = view.settings.billplane_past_due_grace_days
    with view.tx.read() as session:
        found = get_project(session, key)
        row = service.get_plan(session, found, plan_key)
        plan = service.describe(session, found, row)
        features = list(projects.features_of(session, found.id))
        listed = versions.versions(session, found, row, view.now, grace)
    view.current_project(found.key)
    return view.render(
        "plan.html",
        page="plans",
        project=found,
        plan=plan,
        versions=listed,
        price=_price(view, plan["stripe_price_id"]),
        features=features,
        resets=forms.RESETS,
        apply_to=APPLY_TO,
        **context,
    )


# Who an edit of what the plan grants applies to (`?migrate=` of the admin API).
APPLY_TO: list[tuple[MigrateMode, str]] = [
    ("none", "new subscribers only — tenants who subscribed keep their version"),
    ("all", "everyone on this plan — move every tenant to the new version"),
]


@router.post("/projects/{project}/plans/{plan}", response_class=HTMLResponse)
def update_plan(
    project: str, plan: str, request: Request, form: OperatorForm, view: FormView
) -> Response:
    lookup = _look_up(view, forms.text(form, "stripe_price_id"))
    try:
        with view.tx.write() as session:
            found = get_project(session, project)
            # An unknown plan is a 404 page, not a form error.
            editing = service.get_plan(session, found, plan)
            features = list(projects.features_of(session, found.id))
            current = service.render_grants(
                repository.grants_of(session, editing.id, editing.version), features
            )
            data = {
                "name": forms.text(form, "name"),
                "stripe_price_id": forms.text(form, "stripe_price_id"),
                "trial_days": forms.number(form, "trial_days"),
                "is_default": forms.checked(form, "is_default"),
                "status": forms.text(form, "status"),
                "features": forms.plan_grants(form, features, current),
            }
            # An emptied price field clears the price (the service then asks for a default plan).
            body = forms.validated(PlanPatch, data)
            changes = service.PlanChanges(
                name=body.name,
                stripe_price_id=body.stripe_price_id,
                clear_price=body.stripe_price_id is None,
                trial_days=body.trial_days,
                status=body.status,
                is_default=body.is_default,
                features=None if body.features is None else grant_specs(body.features),
            )
            update = partial(
                versions.edit_plan,
                session,
                found,
                plan,
                changes,
                migrate=_apply_to(form),
                actor=ACTOR,
                now=view.now,
                grace_days=view.settings.billplane_past_due_grace_days,
                price_lookup=lookup,
                stripe_mode=view.stripe.mode,
            )
            if forms.text(form, "preview"):  # the Preview button: what it would do, nothing done
                grace = view.settings.billplane_past_due_grace_days
                seen = preview.of_change(session, found, view.now, grace, update)
            else:
                seen = None
                update()
        if seen is not None:
            return _plan(view, project, plan, values=form, preview=PreviewOut.model_validate(seen))
    except (forms.Invalid, BillplaneError) as exc:
        if isinstance(exc, BillplaneError) and exc.status == 404 and "param" not in exc.extra:
            raise
        invalid = forms.as_invalid(exc)
        return _plan(
            view,
            project,
            plan,
            status_code=422,
            errors=invalid.fields,
            general=invalid.general,
            values=form,
        )
    flash(request, f"Plan {plan} saved.")
    return redirect(f"/projects/{project}/plans")


def _apply_to(form: dict[str, str]) -> MigrateMode:
    chosen = forms.text(form, "apply_to") or "none"
    for mode, _ in APPLY_TO:
        if chosen == mode:
            return mode
    raise forms.Invalid({"apply_to": "Choose who the change applies to."})


@router.post("/projects/{project}/plans/{plan}/migrate", response_class=HTMLResponse)
def migrate_tenants(
    project: str, plan: str, request: Request, form: OperatorForm, view: FormView
) -> Response:
    """Move the named tenants (or all) to the plan's newest version, or preview it."""
    grace = view.settings.billplane_past_due_grace_days
    try:
        with view.tx.write() as session:
            found = get_project(session, project)
            moving = service.get_plan(session, found, plan)  # unknown: a 404 page
            named = (forms.text(form, "tenants") or "").replace(",", " ").split()
            chosen = "all" if forms.checked(form, "all") else named
            body = forms.validated(MigrateIn, {"tenants": chosen})
            move = partial(
                versions.migrate_tenants,
                session,
                found,
                moving,
                body.tenants,
                actor=ACTOR,
                now=view.now,
                grace_days=grace,
            )
            result: PreviewOut | versions.Migration
            if forms.text(form, "preview"):
                done = preview.of_change(session, found, view.now, grace, move)
                result = PreviewOut.model_validate(done)
            else:
                result = move()
        if isinstance(result, PreviewOut):
            return _plan(
                view, project, plan, migrate_values=form, preview=result, preview_of="move"
            )
    except (forms.Invalid, BillplaneError) as exc:
        if isinstance(exc, BillplaneError) and exc.status == 404 and "param" not in exc.extra:
            raise
        invalid = forms.as_invalid(exc)
        errors = {"tenants": next(iter(invalid.fields.values()), invalid.general or "")}
        return _plan(
            view, project, plan, status_code=422, migrate_errors=errors, migrate_values=form
        )
    count = len(result["migrated"])
    flash(request, f"Moved {count} tenant{'s' * (count != 1)} to version {result['version']}.")
    return redirect(f"/projects/{project}/plans/{plan}")


@router.post("/projects/{project}/plans/{plan}/archive")
def archive_plan(
    project: str, plan: str, request: Request, _form: OperatorForm, view: FormView
) -> Response:
    """Stop selling a plan; the default plan is refused, with the reason, on the plans page."""
    return _set_status(view, request, project, plan, "archived")


@router.post("/projects/{project}/plans/{plan}/restore")
def restore_plan(
    project: str, plan: str, request: Request, _form: OperatorForm, view: FormView
) -> Response:
    return _set_status(view, request, project, plan, "active")


def _set_status(view: View, request: Request, project: str, plan: str, status: Status) -> Response:
    try:
        with view.tx.write() as session:
            found = get_project(session, project)
            service.update_plan(
                session,
                found,
                plan,
                service.PlanChanges(status=status),
                actor=ACTOR,
                now=view.now,
                grace_days=view.settings.billplane_past_due_grace_days,
                # The price is not changed: what Stripe said of it is kept.
                price_lookup=None,
                stripe_mode=view.stripe.mode,
            )
    except BillplaneError as exc:
        if exc.status == 404:
            raise
        flash(request, f"Plan {plan} was not changed: {exc.message}", kind="error")
        return redirect(f"/projects/{project}/plans")
    done = "archived: checkout refuses it" if status == "archived" else "restored"
    flash(request, f"Plan {plan} {done}.")
    return redirect(f"/projects/{project}/plans")
