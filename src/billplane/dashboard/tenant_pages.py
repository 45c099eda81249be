"""Dashboard HTTP for tenants: plan, subscription and usage against limits; create and edit."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from billplane.billing import repository as billing
from billplane.credits import service as credits
from billplane.credits import topups
from billplane.credits.schemas import GrantIn
from billplane.dashboard import charts, forms
from billplane.dashboard.auth import OperatorForm
from billplane.dashboard.view import FormView, PageView, View, flash, redirect
from billplane.errors import BillplaneError
from billplane.models import Feature, Tenant
from billplane.plans.schemas import grant_specs
from billplane.projects import repository as projects
from billplane.projects.service import get_project
from billplane.refusals import service as refusals
from billplane.refusals.schemas import RefusalOut
from billplane.schemas import Status
from billplane.tenants import repository, service
from billplane.tenants.schemas import TenantIn, TenantPatch
from billplane.usage import repository as usage

router = APIRouter(include_in_schema=False)
ACTOR = "dashboard"
HISTORY_SHOWN = 20  # invoices and top-ups on the tenant's page; the admin API pages them all


@router.get("/projects/{project}/tenants", response_class=HTMLResponse)
def tenants_page(project: str, view: PageView) -> Response:
    return _tenants(view, project)


def _tenants(view: View, key: str, **context: Any) -> Response:
    grace = view.settings.billplane_past_due_grace_days
    with view.tx.read() as session:
        found = get_project(session, key)
        rows = repository.list_tenants(session, found.id, limit=100, starting_after=None).data
        details = [service.detail(session, found, tenant, view.now, grace) for tenant in rows]
    view.current_project(found.key)
    return view.render("tenants.html", page="tenants", project=found, tenants=details, **context)


@router.post("/projects/{project}/tenants", response_class=HTMLResponse)
def create_tenant(project: str, request: Request, form: OperatorForm, view: FormView) -> Response:
    data = {
        "key": forms.text(form, "key"),
        "name": forms.text(form, "name"),
        "email": forms.text(form, "email"),
    }
    try:
        body = forms.validated(TenantIn, forms.without_none(data))
        with view.tx.write() as session:
            service.create_tenant(
                session,
                get_project(session, project),
                key=body.key,
                name=body.name,
                email=body.email,
                actor=ACTOR,
                now=view.now,
            )
    except (forms.Invalid, BillplaneError) as exc:
        invalid = forms.as_invalid(exc)
        return _tenants(
            view,
            project,
            status_code=422,
            errors=invalid.fields,
            general=invalid.general,
            values=form,
        )
    flash(request, f"Tenant {body.key} added.")
    return redirect(f"/projects/{project}/tenants")


@router.get("/projects/{project}/tenants/{tenant}", response_class=HTMLResponse)
def tenant_page(project: str, tenant: str, view: PageView) -> Response:
    return _tenant(view, project, tenant)


def _tenant(view: View, key: str, tenant_key: str, **context: Any) -> Response:
    grace = view.settings.billplane_past_due_grace_days
    with view.tx.read() as session:
        found = get_project(session, key)
        tenant = service.get_tenant(session, found, tenant_key)
        detail = service.detail(session, found, tenant, view.now, grace)
        features = list(projects.features_of(session, found.id))
        refused = [
            RefusalOut.model_validate(r, from_attributes=True)
            for r in refusals.recent(session, found.id, tenant=tenant.key, limit=20).data
        ]
        days = _days(session, found.id, tenant, features, view.now)
        held = credits.balances_in(session, found, tenant.id, tenant.key, view.now)["pools"]
        invoices = billing.invoices_of(session, tenant.id, limit=HISTORY_SHOWN)
        bought = topups.history(session, tenant.id, HISTORY_SHOWN)
    view.current_project(found.key)
    return view.render(
        "tenant.html",
        page="tenants",
        project=found,
        tenant=detail,
        features=features,
        resets=forms.RESETS,
        refusals=refused,
        charts=days,
        keep_days=view.settings.billplane_refusals_keep_days,
        credit_pools=held,
        invoices=invoices,
        topups=bought,
        **context,
    )


def _days(
    session: Session, project_id: int, tenant: Tenant, features: list[Feature], now: datetime
) -> list[charts.DailyChart]:
    """A chart per counted feature (and per on/off feature refused lately) of the last days."""
    days, since = charts.last_days(now), charts.since(now)
    used: dict[int, dict[str, int]] = {}
    for feature_id, day, total in usage.daily_usage(session, tenant.id, since):
        used.setdefault(feature_id, {})[day] = total
    refused = refusals.daily_refusals(session, project_id, tenant.key, since)
    return [
        charts.daily(f.key, days, used.get(f.id, {}), refused.get(f.key, {}), unit=f.unit or "")
        for f in features
        if f.type != "boolean" or f.key in refused
    ]


@router.post("/projects/{project}/tenants/{tenant}", response_class=HTMLResponse)
def update_tenant(
    project: str, tenant: str, request: Request, form: OperatorForm, view: FormView
) -> Response:
    try:
        with view.tx.write() as session:
            found = get_project(session, project)
            service.get_tenant(session, found, tenant)  # an unknown tenant is a 404 page
            data = {
                "name": forms.text(form, "name"),
                "email": forms.text(form, "email"),
                "overrides": forms.override_grants(form, projects.features_of(session, found.id)),
            }
            body = forms.validated(TenantPatch, forms.without_none(data))
            changes = service.TenantChanges(
                name=body.name,
                email=body.email,
                overrides=None if body.overrides is None else grant_specs(body.overrides),
            )
            service.update_tenant(
                session,
                found,
                tenant,
                changes,
                actor=ACTOR,
                now=view.now,
                grace_days=view.settings.billplane_past_due_grace_days,
            )
    except (forms.Invalid, BillplaneError) as exc:
        return _refused(view, project, tenant, exc, form)
    flash(request, f"Tenant {tenant} saved.")
    return redirect(f"/projects/{project}/tenants/{tenant}")


@router.post("/projects/{project}/tenants/{tenant}/credits", response_class=HTMLResponse)
def grant_credits(
    project: str, tenant: str, request: Request, form: OperatorForm, view: FormView
) -> Response:
    """An operator's grant of credits, with its reason (audited as the dashboard's)."""
    data = {
        "pool": forms.text(form, "pool"),
        "amount": forms.number(form, "amount"),
        "reason": forms.text(form, "reason"),
    }
    try:
        body = forms.validated(GrantIn, forms.without_none(data))
        with view.tx.write() as session:
            credits.grant(
                session, get_project(session, project), tenant, body, actor=ACTOR, now=view.now
            )
    except (forms.Invalid, BillplaneError) as exc:
        return _refused(view, project, tenant, exc, form)
    flash(request, f"{body.amount} {body.pool} credits granted to {tenant}.")
    return redirect(f"/projects/{project}/tenants/{tenant}")


@router.post("/projects/{project}/tenants/{tenant}/archive")
def archive_tenant(
    project: str, tenant: str, request: Request, _form: OperatorForm, view: FormView
) -> Response:
    _set_status(view, project, tenant, "archived")
    flash(request, f"Tenant {tenant} archived: its checks are refused until it is restored.")
    return redirect(f"/projects/{project}/tenants/{tenant}")


@router.post("/projects/{project}/tenants/{tenant}/restore")
def restore_tenant(
    project: str, tenant: str, request: Request, _form: OperatorForm, view: FormView
) -> Response:
    _set_status(view, project, tenant, "active")
    flash(request, f"Tenant {tenant} restored.")
    return redirect(f"/projects/{project}/tenants/{tenant}")


def _set_status(view: View, project: str, tenant: str, status: Status) -> None:
    with view.tx.write() as session:
        service.update_tenant(
            session,
            get_project(session, project),
            tenant,
            service.TenantChanges(status=status),
            actor=ACTOR,
            now=view.now,
            grace_days=view.settings.billplane_past_due_grace_days,
        )


def _refused(
    view: FormView, project: str, tenant: str, exc: forms.Invalid | BillplaneError, form: Any
) -> Response:
    """The tenant's page again (422) with what the form got wrong beside its fields; a missing
    project or tenant stays the 404 it is."""
    if isinstance(exc, BillplaneError) and exc.status == 404 and "param" not in exc.extra:
        raise exc
    invalid = forms.as_invalid(exc)
    return _tenant(
        view,
        project,
        tenant,
        status_code=422,
        errors=invalid.fields,
        general=invalid.general,
        values=form,
    )
