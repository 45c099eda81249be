"""What each tenant of a project may do, compared before and after a change: whether an edit of
a plan, an override, a subscription or a tenant's status altered it (app webhooks tell the app).

The rules and the reading are the preview's: `repository.by_project` reads the whole project
(or the tenants asked about) in a handful of statements, since one plan edit may concern every
tenant, and `service.access_of` applies the rules. Usage is no part of the terms: what was used
changes on every call.
"""

from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from billplane.entitlements import repository, service
from billplane.entitlements.rules import Grant
from billplane.hotpath import Sql

# One feature as granted: (key, on, limit, reset, archived).
FeatureTerms = tuple[str, bool, int | None, str | None, bool]


class Terms(NamedTuple):
    tenant_key: str
    archived: bool
    plan: str | None
    features: tuple[FeatureTerms, ...]  # in key order

    def rendered(self) -> dict[str, Any]:
        """As an app webhook tells it: the plan, and per feature `true`/`false` (on or off) or
        `{"limit": N, "reset": ...}`, as plans are written; an archived tenant or feature is
        off whatever its grant."""
        features: dict[str, Any] = {}
        for key, enabled, limit, reset, archived in self.features:
            on = enabled and not archived and not self.archived
            features[key] = {"limit": limit, "reset": reset} if on and limit is not None else on
        return {
            "plan": self.plan,
            "status": "archived" if self.archived else "active",
            "features": features,
        }


def terms_of(
    session: Session,
    project_id: int,
    now: datetime,
    grace_days: int,
    tenant_ids: Collection[int] | None = None,
) -> dict[int, Terms]:
    """Tenant id -> its terms, for every tenant of the project (or those of `tenant_ids`)."""
    session.flush()  # read on the session's connection, with what it has changed so far
    sql = Sql(session.connection().connection.cursor(), session.get_bind().dialect)
    keys = service.period_keys(now)
    found_all = repository.by_project(
        sql,
        project_id=project_id,
        project_key="",
        day_key=keys["day_key"],
        month_key=keys["month_key"],
        tenant_ids=tenant_ids,
    )
    found: dict[int, Terms] = {}
    for each in found_all:
        access = service.access_of(sql, each, now, grace_days)
        found[access.tenant_id] = Terms(
            tenant_key=access.tenant_key,
            archived=access.tenant_archived,
            plan=access.plan.key if access.plan else None,
            features=tuple(
                _feature_terms(f.key, access.grants.get(f.id), f.archived) for f in access.features
            ),
        )
    return found


def _feature_terms(key: str, grant: Grant | None, archived: bool) -> FeatureTerms:
    if grant is None:
        return (key, False, None, None, archived)
    limit = grant.limit
    return (
        key,
        grant.enabled,
        limit,
        grant.reset or ("month" if limit is not None else None),
        archived,
    )
