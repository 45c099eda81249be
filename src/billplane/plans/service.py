"""Plans and their grants: the operator's description of what each Stripe price unlocks."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy.orm import Session

from billplane.appwebhooks import outbox
from billplane.audit import service as audit
from billplane.entitlements.rules import Grant
from billplane.errors import AlreadyExists, FeatureNotFound, InvalidInput, PlanNotFound
from billplane.models import Feature, Plan, Project
from billplane.plans import prices, repository
from billplane.plans.prices import PriceLookup, PriceVerdict
from billplane.plans.schemas import GrantSpec, PlanIn, PlanPatch, grant_specs
from billplane.projects import repository as projects
from billplane.schemas import Status


class PlanDescription(TypedDict):
    """A plan as the admin API answers it (`schemas.PlanOut`) and the audit trail keeps it."""

    key: str
    name: str
    stripe_price_id: str | None
    trial_days: int
    status: Status
    is_default: bool
    version: int  # the newest, which `features`, the price and the trial are of
    features: dict[str, GrantSpec]
    stripe: PriceVerdict | None  # Stripe's word on the price, as stored


@dataclass(frozen=True)
class PlanChanges:
    name: str | None = None
    stripe_price_id: str | None = None
    clear_price: bool = False
    trial_days: int | None = None
    status: Status | None = None
    is_default: bool | None = None
    features: dict[str, GrantSpec] | None = None


def changes_from(body: PlanPatch) -> PlanChanges:
    """An edit as the admin API and the CLI take it: a `stripe_price_id` given as null clears
    the price, one left out keeps it."""
    return PlanChanges(
        name=body.name,
        stripe_price_id=body.stripe_price_id,
        clear_price="stripe_price_id" in body.model_fields_set and body.stripe_price_id is None,
        trial_days=body.trial_days,
        status=body.status,
        is_default=body.is_default,
        features=None if body.features is None else grant_specs(body.features),
    )


def price_after(plan: Plan, changes: PlanChanges) -> str | None:
    """The Stripe price the plan has once `changes` apply (what an edit looks up in Stripe)."""
    return None if changes.clear_price else (changes.stripe_price_id or plan.stripe_price_id)


def get_plan(session: Session, project: Project, key: str) -> Plan:
    plan = repository.get_plan(session, project.id, key)
    if plan is None:
        raise PlanNotFound(f"No plan '{key}' in project '{project.key}'.")
    return plan


def parse_grants(
    session: Session, project: Project, specs: dict[str, GrantSpec]
) -> dict[int, Grant]:
    """Turn the API's feature map into grants, checking each against its feature's type."""
    features = {f.key: f for f in projects.features_of(session, project.id)}
    grants: dict[int, Grant] = {}
    for key, spec in specs.items():
        feature = features.get(key)
        if feature is None:
            raise FeatureNotFound(
                f"No feature '{key}' in project '{project.key}'; create it first.",
                extra={"param": f"features.{key}"},
            )
        grants[feature.id] = _grant_for(feature, spec)
    return grants


def _grant_for(feature: Feature, spec: GrantSpec) -> Grant:
    param = {"param": f"features.{feature.key}"}
    if isinstance(spec, bool):
        # `true` on a limit feature means "no limit"; `false` switches a feature off.
        return Grant(enabled=spec)
    if feature.type != "limit":
        raise InvalidInput(
            f"Feature '{feature.key}' is {feature.type}: grant it with true or false.", extra=param
        )
    return Grant(enabled=True, limit=spec["limit"], reset=spec.get("reset", "month"))


def render_grants(grants: dict[int, Grant], features: list[Feature]) -> dict[str, GrantSpec]:
    rendered: dict[str, GrantSpec] = {}
    for feature in features:
        grant = grants.get(feature.id)
        if grant is None:
            continue
        if grant.limit is None:
            rendered[feature.key] = grant.enabled
        else:
            rendered[feature.key] = {"limit": grant.limit, "reset": grant.reset or "month"}
    return rendered


def stored_verdict(plan: Plan) -> PriceVerdict | None:
    """The verdict stored with the plan: JSON this module wrote from a `PriceVerdict`."""
    return cast(PriceVerdict | None, plan.stripe_price)


def _stored(verdict: PriceVerdict | None) -> dict[str, Any] | None:
    return None if verdict is None else dict(verdict)


def describe(session: Session, project: Project, plan: Plan) -> PlanDescription:
    features = list(projects.features_of(session, project.id))
    return {
        "key": plan.key,
        "name": plan.name,
        "stripe_price_id": plan.stripe_price_id,
        "trial_days": plan.trial_days,
        "status": plan.status,
        "is_default": plan.is_default,
        "version": plan.version,
        "features": render_grants(repository.grants_of(session, plan.id, plan.version), features),
        "stripe": stored_verdict(plan),
    }


def create_plan(
    session: Session,
    project: Project,
    body: PlanIn,
    *,
    actor: str,
    now: datetime,
    grace_days: int,
    price_lookup: PriceLookup | None = None,
    stripe_mode: str = "test",
) -> Plan:
    """A plan as the admin API, the CLI and the dashboard describe it (one validated body).

    A new default plan, or a plan for a price tenants already pay, alters what they may do:
    their apps hear of it (`tenant.entitlements.updated`; `grace_days` tells whether a
    past-due subscription still grants)."""
    key, stripe_price_id, is_default = body.key, body.stripe_price_id, body.is_default
    if repository.get_plan(session, project.id, key) is not None:
        raise AlreadyExists(
            f"Project '{project.key}' already has a plan '{key}'.", extra={"param": "key"}
        )
    _check_price(session, project, stripe_price_id, is_default, plan=None)
    grants = parse_grants(session, project, grant_specs(body.features))
    with outbox.entitlements_change(session, project, now=now, grace_days=grace_days):
        if is_default:
            repository.clear_default(session, project.id)
        plan = Plan(
            project_id=project.id,
            key=key,
            name=body.name,
            stripe_price_id=stripe_price_id,
            trial_days=body.trial_days,
            is_default=is_default,
            status="active",
            version=1,
            created_at=now,
            updated_at=now,
        )
        repository.add(session, plan)
        repository.add_version(session, plan, grants, now)
    plan.stripe_price = _stored(_price_verdict(session, project, plan, price_lookup, stripe_mode))
    audit.record(
        session,
        actor=actor,
        action="plan.create",
        target=f"plan:{project.key}/{key}",
        project_id=project.id,
        after=describe(session, project, plan),
        now=now,
    )
    return plan


def update_plan(
    session: Session,
    project: Project,
    key: str,
    changes: PlanChanges,
    *,
    actor: str,
    now: datetime,
    grace_days: int,
    price_lookup: PriceLookup | None = None,
    stripe_mode: str = "test",
) -> Plan:
    """Apply the edit; tenants whose plan, grants or access it altered are told to their apps
    (`tenant.entitlements.updated`).

    An edit of what the plan grants (grants, price, trial days) makes a new version: new
    subscribers, and tenants on the default plan without a subscription, get it; tenants who
    subscribed keep theirs until they are migrated (`migrate_tenants`)."""
    plan = get_plan(session, project, key)
    before = describe(session, project, plan)
    price = price_after(plan, changes)
    is_default = plan.is_default if changes.is_default is None else changes.is_default
    status = changes.status or plan.status
    # An archived default would leave every plan-less tenant with no plan at all.
    if status == "archived" and is_default:
        raise InvalidInput(
            "The default plan must be active; to archive it, make another plan the default first.",
            extra={"param": "status"},
        )
    _check_price(session, project, price, is_default, plan=plan)
    current = repository.grants_of(session, plan.id, plan.version)
    grants = (
        current if changes.features is None else parse_grants(session, project, changes.features)
    )
    trial_days = plan.trial_days if changes.trial_days is None else changes.trial_days
    new_version = (grants, price, trial_days) != (current, plan.stripe_price_id, plan.trial_days)
    with outbox.entitlements_change(session, project, now=now, grace_days=grace_days):
        if is_default and not plan.is_default:
            repository.clear_default(session, project.id)
        plan.stripe_price_id = price
        plan.is_default = is_default
        plan.name = changes.name or plan.name
        plan.trial_days = trial_days
        plan.status = status
        plan.updated_at = now
        if new_version:
            plan.version += 1
            repository.add_version(session, plan, grants, now)
    kept = price == before["stripe_price_id"]
    plan.stripe_price = _stored(
        _price_verdict(session, project, plan, price_lookup, stripe_mode, kept=kept)
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="plan.update",
        target=f"plan:{project.key}/{key}",
        project_id=project.id,
        before=before,
        after=describe(session, project, plan),
        now=now,
    )
    return plan


def _price_verdict(
    session: Session,
    project: Project,
    plan: Plan,
    lookup: PriceLookup | None,
    stripe_mode: str,
    *,
    kept: bool = False,
) -> PriceVerdict | None:
    """What Stripe says of the plan's price now; the stored word if Stripe was not asked and
    the price is `kept`."""
    if plan.stripe_price_id is None:
        return None
    if lookup is None or lookup.price_id != plan.stripe_price_id:
        if kept and plan.stripe_price is not None:
            return stored_verdict(plan)
        return {"checked": False, "reason": "Not looked up in Stripe yet."}
    plans = repository.list_plans(session, project.id, limit=1000, starting_after=None).data
    others = {
        currency
        for other in plans
        if other.id != plan.id and (currency := prices.currency_of(other.stripe_price))
    }
    return prices.verdict(lookup, others, stripe_mode=stripe_mode)


def _check_price(
    session: Session, project: Project, price: str | None, is_default: bool, plan: Plan | None
) -> None:
    if price is None and not is_default:
        raise InvalidInput(
            "A plan without 'stripe_price_id' must be the free default plan (is_default: true).",
            extra={"param": "stripe_price_id"},
        )
    if price is not None:
        other = repository.plan_for_price(session, project.id, price)
        if other is not None and (plan is None or other.id != plan.id):
            raise AlreadyExists(
                f"Price '{price}' already belongs to plan '{other.key}'.",
                extra={"param": "stripe_price_id"},
            )
