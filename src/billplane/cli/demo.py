"""`billplane demo`: a fresh database filled with a realistic `realtyos` catalogue, made by the
services the admin API runs (its bodies checked by the same schemas) and with usage recorded the
way `/v1/usage` records it; then what to open, the project token, and two checks to paste."""

import json
import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from billplane.cli.demo_catalogue import (
    ALLOWED,
    FEATURES,
    FREE,
    ORIGINS,
    PLACEHOLDER_PRICE,
    PRO,
    PROJECT,
    REFUSED,
    TENANTS,
    DemoTenant,
)
from billplane.cli.edge import ACTOR, fail, settings, transaction, valid
from billplane.cli.output import SHOWN_ONCE, AsJson, price_text
from billplane.clock import utc_now
from billplane.entitlements import service as entitlements
from billplane.errors import BillplaneError
from billplane.hotpath import Sql
from billplane.models import Project
from billplane.plans import prices
from billplane.plans import service as plans
from billplane.plans.schemas import PlanIn
from billplane.projects import repository as projects_repository
from billplane.projects import service as projects
from billplane.projects.schemas import FeatureIn, ProjectIn
from billplane.settings import Settings
from billplane.stripe.gateway import StripeGateway
from billplane.tenants import service as tenants
from billplane.tenants.schemas import TenantIn, TenantPatch
from billplane.usage import service as usage

NEAR = 0.8  # a limit at least this full is "near" in the summary


@dataclass(frozen=True)
class Filled:
    token: str
    plans: list[plans.PlanDescription]
    standing: list[str]  # one line per tenant
    refused: entitlements.Checked
    allowed: entitlements.Checked


def demo(
    port: Annotated[
        int, typer.Option(help="The port the server will serve on (`make demo PORT=8100`)")
    ] = 8000,
    pro_price: Annotated[
        str | None,
        typer.Option(help="A recurring Stripe price for the pro plan (default: a placeholder)"),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Fill a database that has no `realtyos` project with a demo catalogue, and say what to try."""
    configured = settings()
    stripe = StripeGateway.from_settings(configured)
    price = pro_price or PLACEHOLDER_PRICE
    lookup = prices.look_up(stripe, price, utc_now())
    with transaction() as session:
        if projects_repository.get_project(session, PROJECT) is not None:
            fail(
                f"error (already_exists): this database already has a project '{PROJECT}'; "
                "the demo fills only a database without one (`make demo` starts a fresh one)."
            )
        filled = _fill(session, configured, lookup, stripe.mode, utc_now())
    base = (
        configured.billplane_public_url if configured.public_url_set else f"http://127.0.0.1:{port}"
    )
    if as_json:
        typer.echo(json.dumps(_as_json(filled, base), indent=2, default=datetime.isoformat))
        return
    for line in _report(filled, configured, base, port, placeholder=pro_price is None):
        typer.echo(line)


def _fill(
    session: Session,
    configured: Settings,
    lookup: prices.PriceLookup,
    stripe_mode: str,
    now: datetime,
) -> Filled:
    body = valid(ProjectIn, key=PROJECT, name="RealtyOS", origins=ORIGINS)
    created = projects.create_project(
        session, key=body.key, name=body.name, origins=body.origin_strings(), actor=ACTOR, now=now
    )
    project = created.project
    for key, type_, name, unit in FEATURES:
        feature = valid(FeatureIn, key=key, name=name, type=type_, unit=unit)
        projects.create_feature(
            session,
            project,
            feature,
            actor=ACTOR,
            now=now,
        )
    free = valid(PlanIn, key="free", name="Free", is_default=True, features=FREE)
    pro = valid(PlanIn, key="pro", name="Pro", stripe_price_id=lookup.price_id, features=PRO)
    grace_days = configured.billplane_past_due_grace_days
    made = [plans.create_plan(session, project, free, actor=ACTOR, now=now, grace_days=grace_days)]
    made.append(
        plans.create_plan(
            session,
            project,
            pro,
            actor=ACTOR,
            now=now,
            grace_days=grace_days,
            price_lookup=lookup,
            stripe_mode=stripe_mode,
        )
    )
    for demo_tenant in TENANTS:
        _add_tenant(session, project, demo_tenant, created.token.secret, now, grace_days)
    return Filled(
        token=created.token.secret,
        plans=[plans.describe(session, project, plan) for plan in made],
        standing=[_standing(session, project, t, now, grace_days) for t in TENANTS],
        refused=_check(session, created.token.secret, *REFUSED, now, grace_days),
        allowed=_check(session, created.token.secret, *ALLOWED, now, grace_days),
    )


def _add_tenant(
    session: Session, project: Project, spec: DemoTenant, token: str, now: datetime, grace: int
) -> None:
    email = f"ops@{spec.key}.example"
    body = valid(TenantIn, key=spec.key, name=spec.name, email=email)
    tenants.create_tenant(
        session, project, key=body.key, name=body.name, email=body.email, actor=ACTOR, now=now
    )
    if spec.pro:
        patch = valid(TenantPatch, overrides=PRO)
        tenants.update_tenant(
            session,
            project,
            spec.key,
            tenants.changes_from(patch),
            actor=ACTOR,
            now=now,
            grace_days=grace,
        )
    for feature, quantities in spec.usage.items():
        for n, quantity in enumerate(quantities, 1):
            request = usage.UsageRequest(feature, quantity, f"demo-{feature}-{n}")
            _record(session, token, spec.key, request, now, grace)


def _sql(session: Session) -> Sql:
    """The hot path's statements on the session's own connection, inside its transaction."""
    session.flush()
    return Sql(session.connection().connection.cursor(), session.get_bind().dialect)


def _record(
    session: Session,
    token: str,
    tenant: str,
    request: usage.UsageRequest,
    now: datetime,
    grace_days: int,
) -> None:
    """What `POST /v1/usage` does with this body and the project token: read, then write."""
    sql = _sql(session)
    found = entitlements.lookup(sql, token, tenant, request.feature, now)
    prepared = usage.prepare(sql, found, request, now, grace_days)
    outcome = usage.record(sql, prepared) if isinstance(prepared, usage.Write) else prepared
    if isinstance(outcome, BillplaneError):
        raise outcome


def _check(
    session: Session, token: str, tenant: str, feature: str, now: datetime, grace_days: int
) -> entitlements.Checked:
    """What `POST /v1/check` answers for this tenant and feature now (and changes nothing)."""
    sql = _sql(session)
    found = entitlements.lookup(sql, token, tenant, feature, now)
    access = entitlements.access_of(sql, found, now, grace_days)
    return entitlements.check(sql, found, access, feature, 1, now)


def _standing(
    session: Session, project: Project, spec: DemoTenant, now: datetime, grace_days: int
) -> str:
    """`oak-street  free  near: listings.publish 4/5`: the tenant's plan and its fullest limits."""
    tenant = tenants.get_tenant(session, project, spec.key)
    answer = entitlements.entitlements_of(session, project, tenant, now, grace_days)
    plan = f"{answer['plan']} + pro's grants as overrides" if spec.pro else str(answer["plan"])
    over, near = [], []
    for feature in answer["features"]:
        limit, used = feature.get("limit"), feature.get("used") or 0
        if limit is None:
            continue
        text = f"{feature['feature']} {used}/{limit}"
        if used >= limit:
            over.append(text)
        elif used >= NEAR * limit:
            near.append(text)
    notes = []
    if over:
        notes.append(f"at or over: {', '.join(over)}")
    if near:
        notes.append(f"near: {', '.join(near)}")
    return "  ".join([spec.key.ljust(16), plan.ljust(36), *notes]).rstrip()


def _report(
    filled: Filled, configured: Settings, base: str, port: int, *, placeholder: bool
) -> list[str]:
    counts = {
        t: sum(1 for _, type_, _, _ in FEATURES if type_ == t)
        for t in ("boolean", "limit", "metered")
    }
    free, pro = filled.plans
    lines = [
        f"billplane demo: project {PROJECT} is ready.",
        f"  features: {len(FEATURES)} (" + ", ".join(f"{n} {t}" for t, n in counts.items()) + ")",
        f"  plans: {free['key']} (the default, no Stripe price), "
        f"{pro['key']} (Stripe price {pro['stripe_price_id']}: {price_text(pro['stripe'])})",
    ]
    if placeholder:
        lines.append(
            f"    {PLACEHOLDER_PRICE} is a placeholder, not a Stripe price: checkout for pro works "
            f"once it is a real one: billplane plan update {PROJECT} pro --price price_..."
        )
    lines += [
        f"  tenants ({len(TENANTS)}):",
        *(f"    {line}" for line in filled.standing),
        "    A tenant is on pro only by a Stripe subscription, which billplane learns from Stripe "
        "(checkout, webhooks, sync) and never makes up: the demo gives pro's grants as "
        "overrides instead.",
        "",
        f"Dashboard: {base}/  {_login(configured)}",
        f"API call builder: {base}/builder?project={PROJECT}",
        "",
        f"Project token (for the client API): {filled.token}",
        SHOWN_ONCE,
        "",
        f"With the server running (`make demo` starts it; or: billplane serve --port {port}), "
        "paste:",
        f"# refused ({_says(filled.refused)}):",
        check_command(base, filled.token, *REFUSED),
        f"# allowed ({_says(filled.allowed)}):",
        check_command(base, filled.token, *ALLOWED),
    ]
    return lines


def _as_json(filled: Filled, base: str) -> dict[str, Any]:
    """What the report says, for a script: where to go, the token, and each check's answer."""
    checks = {"refused": (REFUSED, filled.refused), "allowed": (ALLOWED, filled.allowed)}
    return {
        "project": PROJECT,
        "dashboard": f"{base}/",
        "builder": f"{base}/builder?project={PROJECT}",
        "token": filled.token,
        "plans": filled.plans,
        "checks": {
            name: {"command": check_command(base, filled.token, *asked), "answer": answer}
            for name, (asked, answer) in checks.items()
        },
    }


def _login(configured: Settings) -> str:
    if configured.billplane_admin_token:
        return "(log in with BILLPLANE_ADMIN_TOKEN: `make demo` and `make run` keep it in .env)"
    return "(BILLPLANE_ADMIN_TOKEN is not set: the dashboard is off until it is)"


def _says(answer: entitlements.Checked) -> str:
    text = f"{answer['tenant']}: {answer['reason']}"
    if answer.get("limit") is not None:
        text += f", {answer.get('used')} of {answer.get('limit')} {answer['feature']} used"
    return text


def check_command(base: str, token: str, tenant: str, feature: str) -> str:
    """A `curl` of `POST /v1/check` to paste as it is."""
    body = json.dumps({"tenant": tenant, "feature": feature})
    return (
        f"curl -sS -X POST {shlex.quote(base + '/v1/check')} "
        f"-H {shlex.quote('Authorization: Bearer ' + token)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
