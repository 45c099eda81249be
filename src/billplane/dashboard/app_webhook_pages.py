"""Dashboard HTTP for a project's webhooks to its apps: endpoints (add, enable or disable, rotate
the secret), their recent deliveries with status and body, and a replay of one.

Every change goes through the admin API's service, as actor `dashboard`; a new secret is
revealed once, on the page the POST redirects to.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from billplane.appwebhooks import outbox, repository, service
from billplane.appwebhooks.schemas import EndpointIn, EndpointPatch
from billplane.appwebhooks.sender import DISABLE_AFTER
from billplane.dashboard import forms
from billplane.dashboard.auth import OperatorForm
from billplane.dashboard.view import FormView, PageView, View, flash, redirect
from billplane.errors import BillplaneError
from billplane.projects.service import get_project

router = APIRouter(include_in_schema=False)
ACTOR = "dashboard"
RECENT = 50  # deliveries an endpoint's page shows


@router.get("/projects/{project}/webhooks", response_class=HTMLResponse)
def endpoints_page(project: str, view: PageView) -> Response:
    return _endpoints(view, project)


def _endpoints(view: View, key: str, **context: Any) -> Response:
    with view.tx.read() as session:
        found = get_project(session, key)
        rows = list(repository.endpoints(session, found.id, limit=100, starting_after=None).data)
        counts = {e.id: repository.counts_by_status(session, e.id) for e in rows}
    view.current_project(found.key)
    return view.render(
        "app_webhooks.html",
        page="projects",
        tab="webhooks",
        project=found,
        endpoints=rows,
        counts=counts,
        event_types=outbox.EVENT_TYPES,
        disable_after=DISABLE_AFTER,
        **context,
    )


@router.post("/projects/{project}/webhooks", response_class=HTMLResponse)
def create_endpoint(project: str, request: Request, form: OperatorForm, view: FormView) -> Response:
    data = {
        "url": forms.text(form, "url"),
        "events": [t for t in outbox.EVENT_TYPES if forms.checked(form, f"event.{t}")],
    }
    try:
        body = forms.validated(EndpointIn, forms.without_none(data))
        with view.tx.write() as session:
            found = get_project(session, project)
            created = service.create_endpoint(
                session, found, body, secret_key=view.settings.billplane_secret_key,
                actor=ACTOR, now=view.now,
            )  # fmt: skip
            endpoint_id, secret = created.endpoint.public_id, created.secret
    except (forms.Invalid, BillplaneError) as exc:
        invalid = forms.as_invalid(exc)
        return _endpoints(
            view, project, status_code=422, errors=invalid.fields, general=invalid.general,
            values=form,
        )  # fmt: skip
    view.reveal(secret=secret, what=f"The signing secret of webhook endpoint {endpoint_id}")
    flash(request, f"Webhook endpoint {endpoint_id} added.")
    return redirect(f"/projects/{project}/webhooks#secret")


@router.post("/projects/{project}/webhooks/{endpoint}/status")
def set_status(
    project: str, endpoint: str, request: Request, form: OperatorForm, view: FormView
) -> Response:
    """Disable an endpoint, or enable it again: what waited for it then goes out."""
    status = "enabled" if form.get("status") == "enabled" else "disabled"
    with view.tx.write() as session:
        found = get_project(session, project)
        body = EndpointPatch(status=status)
        service.update_endpoint(session, found, endpoint, body, actor=ACTOR, now=view.now)
    flash(request, f"Webhook endpoint {endpoint} {status}.")
    return redirect(f"/projects/{project}/webhooks")


@router.post("/projects/{project}/webhooks/{endpoint}/rotate-secret")
def rotate_secret(
    project: str, endpoint: str, request: Request, form: OperatorForm, view: FormView
) -> Response:
    with view.tx.write() as session:
        found = get_project(session, project)
        rotated = service.rotate_secret(
            session, found, endpoint, secret_key=view.settings.billplane_secret_key,
            actor=ACTOR, now=view.now,
        )  # fmt: skip
        secret = rotated.secret
    view.reveal(
        secret=secret,
        what=f"The new signing secret of {endpoint}: the old one signs beside it for 24 hours",
    )
    flash(request, f"Webhook endpoint {endpoint}'s secret rotated.")
    return redirect(f"/projects/{project}/webhooks#secret")


@router.get("/projects/{project}/webhooks/{endpoint}", response_class=HTMLResponse)
def deliveries_page(project: str, endpoint: str, view: PageView) -> Response:
    """The endpoint's recent deliveries, newest first, each with its body and attempts."""
    with view.tx.read() as session:
        found = get_project(session, project)
        row = service.get_endpoint(session, found, endpoint)
        page = repository.deliveries(session, row.id, limit=RECENT, starting_after=None)
        deliveries = [
            {**service.describe_delivery(d, e), "attempt_log": service.attempt_log(session, d)}
            for d, e in page.data
        ]
    view.current_project(found.key)
    return view.render(
        "app_webhook.html",
        page="projects",
        tab="webhooks",
        project=found,
        endpoint=row,
        deliveries=deliveries,
    )


@router.post("/projects/{project}/webhooks/{endpoint}/deliveries/{delivery}/replay")
def replay(
    project: str,
    endpoint: str,
    delivery: str,
    request: Request,
    form: OperatorForm,
    view: FormView,
) -> Response:
    """Send a delivery again, as the admin API's replay does."""
    try:
        with view.tx.write() as session:
            found = get_project(session, project)
            service.replay(session, found, endpoint, delivery, actor=ACTOR, now=view.now)
    except BillplaneError as exc:
        if exc.status == 404:
            raise
        flash(request, f"Delivery {delivery} was not replayed: {exc.message}", kind="error")
    else:
        flash(request, f"Delivery {delivery} will be sent again in a moment.")
    return redirect(f"/projects/{project}/webhooks/{endpoint}")
