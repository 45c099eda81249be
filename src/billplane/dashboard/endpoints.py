"""Dashboard HTTP: login and logout, the overview (status and checklist), the API call builder
and the webhook page. Projects, plans and tenants have their own page modules."""

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from billplane.credits import service as credits
from billplane.dashboard import auth, charts, snippets
from billplane.dashboard.view import FormView, PageView, View, flash, redirect, templates
from billplane.errors import BillplaneError, TooManyAttempts
from billplane.http import CurrentSettings, Now, Tx
from billplane.models import Feature, Plan, Project, Tenant
from billplane.plans import repository as plans
from billplane.projects import repository as projects
from billplane.refusals import service as refusals
from billplane.status import repository
from billplane.status import service as status
from billplane.status.checklist import grouped
from billplane.status.probes import (
    HANDLED_EVENTS,
    endpoint_status,
    webhook_url,
)
from billplane.tenants import repository as tenants
from billplane.webhooks import pipeline

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, settings: CurrentSettings, tx: Tx, now: Now, next: str = "/"
) -> Response:
    if auth.logged_in(request, tx, now):
        return redirect(_local(next))
    return _login(request, settings, next, status_code=200)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, form: auth.LoginForm, settings: CurrentSettings, tx: Tx, now: Now
) -> Response:
    target = _local(form.get("next", "/"))
    try:
        if auth.log_in(request, tx, settings, form.get("token", ""), now):
            return redirect(target)
    except TooManyAttempts as exc:
        errors = {"token": exc.message}
        return _login(
            request, settings, target, status_code=429, errors=errors, headers=exc.headers()
        )
    error = "That is not the admin token (BILLPLANE_ADMIN_TOKEN)."
    return _login(request, settings, target, status_code=401, errors={"token": error})


def _login(request: Request, settings: CurrentSettings, target: str, **kw: Any) -> Response:
    status_code = kw.pop("status_code")
    headers = kw.pop("headers", None)
    context = {
        "csrf": auth.csrf_token(request),
        "next": _local(target),
        "disabled": settings.billplane_admin_token is None,
        "errors": {},
        **kw,
    }
    return templates.TemplateResponse(
        request, "login.html", context, status_code=status_code, headers=headers
    )


def _local(target: str) -> str:
    """Only a path on this server: never an open redirect (`//host`, `https://…`, `/\\host`)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


@router.post("/logout")
def logout(request: Request, _form: auth.OperatorForm, tx: Tx) -> Response:
    auth.log_out(request, tx)
    return redirect("/login")


@router.get("/", response_class=HTMLResponse)
def overview(view: PageView) -> Response:
    seen = status.overview(view.tx, view.settings, view.stripe, view.now)
    days = charts.last_days(view.now)
    with view.tx.read() as session:
        checked = refusals.daily_checks(session, days[0])
    activity = {
        key: charts.daily(
            f"{key}: checks per day",
            days,
            {day: checks for day, (checks, _) in per_day.items()},
            {day: refused for day, (_, refused) in per_day.items()},
            unit="checks",
        )
        for key, per_day in checked.items()
    }
    return view.render(
        "overview.html",
        page="overview",
        items=seen.items,
        groups=grouped(seen.items),
        next=seen.next,
        done=sum(item.state == "done" for item in seen.items),
        projects=seen.projects,
        activity=activity,
    )


@router.get("/plans")
def plans_shortcut(view: PageView) -> Response:
    return redirect(_project_path(view, "plans"))


@router.get("/tenants")
def tenants_shortcut(view: PageView) -> Response:
    return redirect(_project_path(view, "tenants"))


def _project_path(view: View, section: str) -> str:
    """The operator's current project's section, or the projects page when there is none yet."""
    remembered = view.request.session.get("project")
    with view.tx.read() as session:
        project = projects.get_project(session, remembered) if remembered else None
        if project is None:
            page = projects.list_projects(session, limit=1, starting_after=None)
            project = page.data[0] if page.data else None
    return f"/projects/{project.key}/{section}" if project else "/projects"


@router.get("/builder", response_class=HTMLResponse)
def builder(
    view: PageView,
    project: str | None = None,
    tenant: str | None = None,
    feature: str | None = None,
    plan: str | None = None,
    lang: str = "curl",
) -> Response:
    language = lang if lang in snippets.LANGUAGES else "curl"
    with view.tx.read() as session:
        all_projects = list(projects.list_projects(session, limit=100, starting_after=None).data)
        chosen = _pick(all_projects, project or view.request.session.get("project"))
        options = _options(session, chosen)
    choice = snippets.Choice(
        tenant=_pick_key(options["tenants"], tenant, "TENANT_KEY"),
        feature=_pick_key(options["features"], feature, "FEATURE_KEY"),
        plan=_pick_key(options["plans"], plan, "PLAN_KEY"),
        origin=chosen.origins[0] if chosen and chosen.origins else "https://app.example.com",
    )
    choice = _with_credits(choice, options.pop("pools"))
    base = view.settings.billplane_public_url
    built = [(call, snippets.snippet(language, base, call)) for call in snippets.calls(choice)]
    return view.render(
        "builder.html",
        page="builder",
        projects=all_projects,
        project=chosen,
        choice=choice,
        language=language,
        languages=snippets.LANGUAGES,
        base_url=base,
        calls=built,
        **options,
    )


def _pick(rows: list[Project], key: str | None) -> Project | None:
    return next((row for row in rows if row.key == key), rows[0] if rows else None)


def _pick_key(rows: list[Any], key: str | None, placeholder: str) -> str:
    keys = [row.key for row in rows]
    if key is not None and key in keys:
        return key
    return keys[0] if keys else placeholder


def _options(session: Session, project: Project | None) -> dict[str, Any]:
    if project is None:
        return {"tenants": [], "features": [], "plans": [], "pools": []}
    found_tenants: list[Tenant] = list(
        tenants.list_tenants(session, project.id, limit=100, starting_after=None).data
    )
    features: list[Feature] = list(projects.features_of(session, project.id))
    all_plans: list[Plan] = list(
        plans.list_plans(session, project.id, limit=100, starting_after=None).data
    )
    # Checkout needs a plan with a price: those come first.
    priced = sorted(all_plans, key=lambda p: (p.stripe_price_id is None, p.status != "active"))
    pools = credits.list_pools(session, project)
    return {"tenants": found_tenants, "features": features, "plans": priced, "pools": pools}


def _with_credits(choice: snippets.Choice, pools: list[credits.PoolDescription]) -> snippets.Choice:
    """The credit snippets' feature (the chosen one if a pool prices it, else the first priced)
    and the first pack a pool sells; placeholders while there are none."""
    priced = [feature for pool in pools for feature in pool["costs"]]
    packs = [price for pool in pools for price in pool["packs"]]
    feature = choice.feature if choice.feature in priced else next(iter(priced), "FEATURE_KEY")
    return replace(choice, credit_feature=feature, pack=next(iter(packs), "PRICE_ID"))


@router.get("/webhook", response_class=HTMLResponse)
def webhook_page(view: PageView) -> Response:
    settings = view.settings
    with view.tx.read() as session:
        events = list(repository.recent_events(session))
    return view.render(
        "webhook.html",
        page="webhook",
        url=webhook_url(settings),
        handled=HANDLED_EVENTS,
        secret_set=bool(settings.stripe_webhook_secret),
        endpoint=endpoint_status(view.stripe, settings),
        events=events,
    )


@router.post("/webhook/events/{event_id}/replay")
def replay_event(
    event_id: str, request: Request, _form: auth.OperatorForm, view: FormView
) -> Response:
    """Process a failed event again from its stored payload, as the admin API's replay does."""
    try:
        receipt = pipeline.replay_stored(
            view.tx,
            view.stripe,
            event_id,
            view.request.app.state.clock,
            grace_days=view.settings.billplane_past_due_grace_days,
        )
    except BillplaneError as exc:
        flash(request, f"Replaying {event_id} failed: {exc.message}", kind="error")
    else:
        flash(request, f"Event {event_id} replayed: {receipt.outcome}.")
    return redirect("/webhook#events")
