"""What a catalogue change would do to each tenant, told before it is made (`dry_run`).

The change itself runs — the same service call, with the same checks — inside a SAVEPOINT that
is then rolled back, so the preview cannot differ from what applying would do; what every tenant
of the project may do is read before and inside it, all tenants in one statement each time
(`repository.by_project`), and compared.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypedDict

from sqlalchemy.orm import Session

from billplane.entitlements import repository, service
from billplane.hotpath import Sql
from billplane.models import Project


@dataclass(frozen=True, slots=True)
class Granted:
    limit: int | None  # None: unlimited (or an on/off or metered feature)
    used: int | None  # this period's, for a counted feature


@dataclass(frozen=True)
class Standing:
    """What one tenant may do: its plan and each feature its grants give it."""

    plan: str | None
    granted: dict[str, Granted]


class LimitChange(TypedDict):
    feature: str
    before: int | None  # None: unlimited
    after: int | None


class OverLimit(TypedDict):
    feature: str
    limit: int
    used: int


class TenantEffect(TypedDict):
    tenant: str
    plan_before: str | None
    plan_after: str | None
    gained: list[str]
    lost: list[str]
    limits_raised: list[LimitChange]
    limits_lowered: list[LimitChange]
    over_limit: list[OverLimit]  # already past a new, lower limit with this period's usage
    falls_to_no_plan: bool


class Summary(TypedDict):
    tenants_checked: int
    tenants_affected: int
    gaining: int
    losing: int
    limits_raised: int
    limits_lowered: int
    over_limit: int
    falling_to_no_plan: int


class Preview(TypedDict):
    dry_run: Literal[True]
    summary: Summary
    tenants: list[TenantEffect]  # only those the change affects, by tenant key


def of_change(
    session: Session, project: Project, now: datetime, grace_days: int, apply: Callable[[], object]
) -> Preview:
    """Run `apply` (a service call changing the catalogue) in a SAVEPOINT rolled back after,
    and say what it would change for each tenant. Whatever `apply` raises is raised."""
    before = standings(session, project, now, grace_days)
    nested = session.begin_nested()
    try:
        apply()
        session.flush()
        after = standings(session, project, now, grace_days)
    finally:
        nested.rollback()
    effects = [
        effect
        for key in sorted(before.keys() | after.keys())
        if (effect := _effect(key, before.get(key), after.get(key))) is not None
    ]
    return {"dry_run": True, "summary": _summary(len(before), effects), "tenants": effects}


def standings(
    session: Session, project: Project, now: datetime, grace_days: int
) -> dict[str, Standing]:
    """What every tenant of the project may do now, by tenant key."""
    sql = Sql(session.connection().connection.cursor(), session.get_bind().dialect)
    keys = service.period_keys(now)
    found_all = repository.by_project(
        sql,
        project_id=project.id,
        project_key=project.key,
        day_key=keys["day_key"],
        month_key=keys["month_key"],
    )
    standings: dict[str, Standing] = {}
    for found in found_all:
        access = service.access_of(sql, found, now, grace_days)
        granted: dict[str, Granted] = {}
        if not access.tenant_archived:
            for feature in access.features:
                grant = access.grants.get(feature.id)
                if feature.archived or grant is None or not grant.enabled:
                    continue
                limit = grant.limit if feature.type == "limit" else None
                granted[feature.key] = Granted(limit, access.used.get(feature.id))
        plan = access.plan.key if access.plan else None
        standings[access.tenant_key] = Standing(plan, granted)
    return standings


def _effect(key: str, before: Standing | None, after: Standing | None) -> TenantEffect | None:
    was = before or Standing(None, {})
    now = after or Standing(None, {})
    raised: list[LimitChange] = []
    lowered: list[LimitChange] = []
    over: list[OverLimit] = []
    for feature in sorted(was.granted.keys() & now.granted.keys()):
        old, new = was.granted[feature].limit, now.granted[feature].limit
        if old == new:
            continue
        change: LimitChange = {"feature": feature, "before": old, "after": new}
        if new is None or (old is not None and new > old):
            raised.append(change)
            continue
        lowered.append(change)
        used = now.granted[feature].used or 0
        if used > new:
            over.append({"feature": feature, "limit": new, "used": used})
    gained = sorted(now.granted.keys() - was.granted.keys())
    lost = sorted(was.granted.keys() - now.granted.keys())
    falls = was.plan is not None and now.plan is None
    if not (gained or lost or raised or lowered or falls or was.plan != now.plan):
        return None
    return {
        "tenant": key,
        "plan_before": was.plan,
        "plan_after": now.plan,
        "gained": gained,
        "lost": lost,
        "limits_raised": raised,
        "limits_lowered": lowered,
        "over_limit": over,
        "falls_to_no_plan": falls,
    }


def _summary(checked: int, effects: list[TenantEffect]) -> Summary:
    return {
        "tenants_checked": checked,
        "tenants_affected": len(effects),
        "gaining": sum(bool(e["gained"]) for e in effects),
        "losing": sum(bool(e["lost"]) for e in effects),
        "limits_raised": sum(bool(e["limits_raised"]) for e in effects),
        "limits_lowered": sum(bool(e["limits_lowered"]) for e in effects),
        "over_limit": sum(bool(e["over_limit"]) for e in effects),
        "falling_to_no_plan": sum(e["falls_to_no_plan"] for e in effects),
    }
