"""Dashboard HTTP for projects, their features and their tokens (issue, rotate, revoke).

Every change goes through the same service as the admin API, as actor `dashboard`; a new token is
revealed once, on the page the POST redirects to. Rotate and Revoke act only once confirmed.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from billplane.dashboard import confirmation, forms
from billplane.dashboard.auth import OperatorForm
from billplane.dashboard.confirmation import Question
from billplane.dashboard.view import FormView, PageView, View, flash, redirect
from billplane.errors import BillplaneError, TokenNotFound
from billplane.models import Project, Tenant, Token
from billplane.projects import repository, service
from billplane.projects.schemas import FeatureIn, FeaturePatch, ProjectIn, ProjectPatch
from billplane.schemas import Status
from billplane.tenants import repository as tenants
from billplane.tenants.service import get_tenant
from billplane.tokens import repository as tokens
from billplane.tokens import service as token_service
from billplane.tokens.schemas import TokenIn

router = APIRouter(include_in_schema=False)
ACTOR = "dashboard"


@router.get("/projects", response_class=HTMLResponse)
def projects_page(view: PageView) -> Response:
    return _projects(view)


def _projects(view: View, **context: Any) -> Response:
    with view.tx.read() as session:
        rows = list(repository.list_projects(session, limit=100, starting_after=None).data)
        prefixes = tokens.live_project_prefixes(session, [p.id for p in rows])
    return view.render(
        "projects.html", page="projects", projects=rows, prefixes=prefixes, **context
    )


@router.post("/projects", response_class=HTMLResponse)
def create_project(request: Request, form: OperatorForm, view: FormView) -> Response:
    data = {
        "key": forms.text(form, "key"),
        "name": forms.text(form, "name"),
        "origins": forms.lines(form, "origins"),
    }
    try:
        body = forms.validated(ProjectIn, forms.without_none(data))
        with view.tx.write() as session:
            created = service.create_project(
                session,
                key=body.key,
                name=body.name,
                origins=body.origin_strings(),
                actor=ACTOR,
                now=view.now,
            )
            secret = created.token.secret
    except (forms.Invalid, BillplaneError) as exc:
        invalid = forms.as_invalid(exc)
        return _projects(
            view, status_code=422, errors=invalid.fields, general=invalid.general, values=form
        )
    view.reveal(secret=secret, what=f"The project token of {body.key}")
    flash(request, f"Project {body.key} created.")
    return redirect(f"/projects/{body.key}#secret")


@router.get("/projects/{project}", response_class=HTMLResponse)
def project_page(project: str, view: PageView) -> Response:
    return _project(view, project)


def _project(view: View, key: str, **context: Any) -> Response:
    with view.tx.read() as session:
        project = service.get_project(session, key)
        features = list(repository.features_of(session, project.id))
        tenant_rows = list(
            tenants.list_tenants(session, project.id, limit=100, starting_after=None).data
        )
        token_rows = _tokens_of(session, project)
    view.current_project(project.key)
    return view.render(
        "project.html",
        page="projects",
        project=project,
        features=features,
        tenant_options=[("", "Whole project")] + [(t.key, f"Tenant {t.key}") for t in tenant_rows],
        tokens=token_rows,
        **context,
    )


@router.post("/projects/{project}", response_class=HTMLResponse)
def update_project(project: str, request: Request, form: OperatorForm, view: FormView) -> Response:
    """Rename the project or replace its origins."""
    data = {"name": forms.text(form, "name"), "origins": forms.lines(form, "origins")}
    try:
        body = forms.validated(ProjectPatch, forms.without_none(data))
        with view.tx.write() as session:
            service.update_project(
                session,
                project,
                name=body.name,
                origins=body.origin_strings(),
                actor=ACTOR,
                now=view.now,
            )
    except (forms.Invalid, BillplaneError) as exc:
        return _project_form_error(view, project, exc, "project", form)
    flash(request, f"Project {project} saved.")
    return redirect(f"/projects/{project}")


TokenRow = tuple[Token, str | None, dict[str, Question]]


def _tokens_of(session: Session, project: Project) -> list[TokenRow]:
    """Each token with its tenant's key and the questions its Rotate and Revoke buttons ask."""
    rows = tokens.list_tokens(session, project.id, limit=100, starting_after=None).data
    names = {
        t.id: t.key
        for t in tenants.list_tenants(session, project.id, limit=100, starting_after=None).data
    }
    found = [(t, names.get(t.tenant_id) if t.tenant_id else None) for t in rows]
    # Live tokens first, newest first: what an operator looks for.
    found.sort(key=lambda row: (row[0].revoked_at is not None, -row[0].created_at.timestamp()))
    return [(t, tenant, _questions(project.key, t)) for t, tenant in found]


def _questions(project: str, token: Token) -> dict[str, Question]:
    named = f"token “{token.name}” ({token.prefix}…)"
    base = f"/projects/{project}/tokens/{token.public_id}"
    back = f"/projects/{project}#tokens"
    return {
        "rotate": Question(
            heading="Rotate a token",
            question=f"Rotate {named}?",
            consequence=(
                "Apps using its current secret stop working at once (401), until they are given "
                "the new one, shown once next."
            ),
            action=f"{base}/rotate",
            button="Rotate token",
            back=back,
        ),
        "revoke": Question(
            heading="Revoke a token",
            question=f"Revoke {named}?",
            consequence=(
                "Apps using it stop working at once (401), for good: a revoked token cannot be "
                "brought back, only replaced by a new one."
            ),
            action=f"{base}/revoke",
            button="Revoke token",
            back=back,
            danger=True,
        ),
    }


def _ask_first(view: View, project: str, token_id: str, what: str) -> Response | None:
    """The confirmation page for a live token's Rotate or Revoke (a revoked token is left to
    the service, which refuses a rotation and changes nothing on a second revoke)."""
    with view.tx.read() as session:
        token = _token_of(session, project, token_id)
        if token.revoked_at is not None:
            return None
        question = _questions(project, token)[what]
    view.current_project(project)
    return confirmation.ask(view, question, page="projects")


@router.post("/projects/{project}/features", response_class=HTMLResponse)
def create_feature(project: str, request: Request, form: OperatorForm, view: FormView) -> Response:
    data = {
        "key": forms.text(form, "key"),
        "name": forms.text(form, "name"),
        "type": forms.text(form, "type"),
        "unit": forms.text(form, "unit"),
    }
    try:
        body = forms.validated(FeatureIn, forms.without_none(data))
        with view.tx.write() as session:
            service.create_feature(
                session,
                service.get_project(session, project),
                body,
                actor=ACTOR,
                now=view.now,
            )
    except (forms.Invalid, BillplaneError) as exc:
        return _project_form_error(view, project, exc, "feature", form)
    flash(request, f"Feature {body.key} added.")
    return redirect(f"/projects/{project}#features")


@router.post("/projects/{project}/features/{feature}", response_class=HTMLResponse)
def update_feature(
    project: str, feature: str, request: Request, form: OperatorForm, view: FormView
) -> Response:
    """Rename a feature or change its unit (an emptied unit removes it)."""
    data = {"name": forms.text(form, "name"), "unit": forms.text(form, "unit")}
    try:
        body = forms.validated(FeaturePatch, data)
        with view.tx.write() as session:
            found = service.get_project(session, project)
            service.get_feature(session, found, feature)  # an unknown feature is a 404 page
            service.update_feature(
                session,
                found,
                feature,
                service.FeatureChanges(
                    name=body.name, unit=body.unit, clear_unit=body.unit is None
                ),
                actor=ACTOR,
                now=view.now,
                grace_days=view.settings.billplane_past_due_grace_days,
            )
    except (forms.Invalid, BillplaneError) as exc:
        if isinstance(exc, BillplaneError) and exc.status == 404:
            raise
        return _project_form_error(view, project, exc, f"feature:{feature}", form)
    flash(request, f"Feature {feature} saved.")
    return redirect(f"/projects/{project}#features")


@router.post("/projects/{project}/features/{feature}/archive")
def archive_feature(
    project: str, feature: str, request: Request, _form: OperatorForm, view: FormView
) -> Response:
    _set_feature_status(view, project, feature, "archived")
    flash(request, f"Feature {feature} archived: checks of it are refused until it is restored.")
    return redirect(f"/projects/{project}#features")


@router.post("/projects/{project}/features/{feature}/restore")
def restore_feature(
    project: str, feature: str, request: Request, _form: OperatorForm, view: FormView
) -> Response:
    _set_feature_status(view, project, feature, "active")
    flash(request, f"Feature {feature} restored.")
    return redirect(f"/projects/{project}#features")


def _set_feature_status(view: View, project: str, feature: str, status: Status) -> None:
    with view.tx.write() as session:
        service.update_feature(
            session,
            service.get_project(session, project),
            feature,
            service.FeatureChanges(status=status),
            actor=ACTOR,
            now=view.now,
            grace_days=view.settings.billplane_past_due_grace_days,
        )


@router.post("/projects/{project}/tokens", response_class=HTMLResponse)
def issue_token(project: str, request: Request, form: OperatorForm, view: FormView) -> Response:
    data = {"name": forms.text(form, "name"), "tenant": forms.text(form, "tenant")}
    try:
        body = forms.validated(TokenIn, forms.without_none(data))
        with view.tx.write() as session:
            found = service.get_project(session, project)
            tenant: Tenant | None = get_tenant(session, found, body.tenant) if body.tenant else None
            issued = token_service.issue_token(
                session, project=found, name=body.name, tenant=tenant, actor=ACTOR, now=view.now
            )
            secret = issued.secret
    except (forms.Invalid, BillplaneError) as exc:
        return _project_form_error(view, project, exc, "token", form)
    scope = f"tenant {body.tenant}" if body.tenant else f"project {project}"
    view.reveal(secret=secret, what=f"Token “{body.name}” for {scope}")
    return redirect(f"/projects/{project}#secret")


def _project_form_error(
    view: View, project: str, exc: forms.Invalid | BillplaneError, which: str, form: dict[str, str]
) -> Response:
    """The project page again, with the form's problems beside its fields (an unknown project
    is a 404 page, raised again by `_project`)."""
    invalid = forms.as_invalid(exc)
    return _project(
        view,
        project,
        status_code=422,
        form_name=which,
        errors=invalid.fields,
        general=invalid.general,
        values=form,
    )


@router.post("/projects/{project}/tokens/{token_id}/rotate")
def rotate_token(
    project: str, token_id: str, request: Request, form: OperatorForm, view: FormView
) -> Response:
    if not confirmation.confirmed(form):
        asked = _ask_first(view, project, token_id, "rotate")
        if asked is not None:
            return asked
    with view.tx.write() as session:
        _token_of(session, project, token_id)
        issued = token_service.rotate_token(session, token_id, actor=ACTOR, now=view.now)
        secret, name = issued.secret, issued.token.name
    view.reveal(secret=secret, what=f"Token “{name}”, rotated: the old secret no longer works")
    return redirect(f"/projects/{project}#secret")


@router.post("/projects/{project}/tokens/{token_id}/revoke")
def revoke_token(
    project: str, token_id: str, request: Request, form: OperatorForm, view: FormView
) -> Response:
    if not confirmation.confirmed(form):
        asked = _ask_first(view, project, token_id, "revoke")
        if asked is not None:
            return asked
    with view.tx.write() as session:
        token = _token_of(session, project, token_id)
        token_service.revoke_token(session, token_id, actor=ACTOR, now=view.now)
        name = token.name
    flash(request, f"Token “{name}” revoked: calls with it now get 401.")
    return redirect(f"/projects/{project}#tokens")


def _token_of(session: Session, project_key: str, token_id: str) -> Token:
    project = service.get_project(session, project_key)
    token = token_service.get_token(session, token_id)
    if token.project_id != project.id:
        raise TokenNotFound(f"No token '{token_id}' in project '{project_key}'.")
    return token
