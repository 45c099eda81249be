"""A project's plans as the entitlement answers read them, kept in each worker between changes.

Which plan sells a price, which plan is the default, and what each version of each plan grants
change when an operator edits the catalogue, not between two checks; joined into every check's
statement they cost PostgreSQL most of its time. So each process keeps them per project, under
the project's `catalogue_generation`, which the check's statement reads with everything else.

The database keeps the generation honest: triggers on `plans`, `plan_versions` and `plan_grants`
(migration `2026_12_07_catalogue_generation`) give the project a new random generation in the
transaction that changes its catalogue, whoever writes it. A worker that reads a generation it
does not hold loads the catalogue again, so every worker obeys a change on its very next
request. Random, not counted up: a change rolled back (a preview, a test's transaction) may have
been loaded under its generation, and a later change must never be taken for it.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import bindparam, select

from billplane.entitlements.rules import Grant
from billplane.hotpath import Sql, Statement
from billplane.models import Plan, PlanGrant, PlanVersion


class PlanRow(NamedTuple):
    id: int
    key: str
    version: int  # the version whose grants apply: the one the tenant keeps, else the newest
    newest: int
    kept: bool = False  # whether `version` is one the tenant keeps (it subscribed to it)


@dataclass(frozen=True)
class Catalogue:
    """A project's plans: read-only once loaded (workers share it between requests)."""

    generation: int | None  # None: loaded for one caller, never kept
    by_price: dict[str, PlanRow] = field(default_factory=dict)  # any version's price
    default: PlanRow | None = None  # the active default plan
    grants: dict[tuple[int, int], dict[int, Grant]] = field(default_factory=dict)

    def plan_of(self, price: str | None, kept: dict[int, int]) -> PlanRow | None:
        """The plan selling `price` (whichever version sold it), at the version the tenant
        keeps of it (`kept`: plan id -> version), else at its newest."""
        plan = self.by_price.get(price) if price else None
        if plan is None or plan.id not in kept:
            return plan
        return plan._replace(version=kept[plan.id], kept=True)

    def grants_of(self, plan: PlanRow | None) -> dict[int, Grant]:
        """What `plan` grants at its version, per feature id."""
        return {} if plan is None else self.grants.get((plan.id, plan.version), {})


PROJECT_PLANS = Statement(
    lambda _: (
        select(Plan.id, Plan.key, Plan.version, Plan.is_default, Plan.status)
        .where(Plan.project_id == bindparam("project_id"))
        .order_by(Plan.id)
    )
)
# Every price a plan of the project sells or sold (in an older version).
PROJECT_PRICES = Statement(
    lambda _: (
        select(PlanVersion.plan_id, PlanVersion.stripe_price_id)
        .join(Plan, Plan.id == PlanVersion.plan_id)
        .where(Plan.project_id == bindparam("project_id"), PlanVersion.stripe_price_id.is_not(None))
        .order_by(PlanVersion.plan_id.desc())
    )
)
PROJECT_GRANTS = Statement(
    lambda _: (
        select(
            PlanGrant.plan_id,
            PlanGrant.version,
            PlanGrant.feature_id,
            PlanGrant.enabled,
            PlanGrant.limit,
            PlanGrant.reset,
        )
        .join(Plan, Plan.id == PlanGrant.plan_id)
        .where(Plan.project_id == bindparam("project_id"))
    )
)


def load(sql: Sql, project_id: int, generation: int | None = None) -> Catalogue:
    """The project's plans as the database has them now (three small statements)."""
    project = {"project_id": project_id}
    rows = sql.run(PROJECT_PLANS, project)
    plans = {id_: PlanRow(id_, key, version, version) for id_, key, version, _, _ in rows}
    # Prices are one plan's each (plans.service refuses another's); should two plans share one,
    # the lowest id wins (the rows come highest first).
    by_price = {price: plans[id_] for id_, price in sql.run(PROJECT_PRICES, project)}
    default = next(
        (plans[id_] for id_, _, _, is_default, status in rows if is_default and status == "active"),
        None,
    )
    grants: dict[tuple[int, int], dict[int, Grant]] = {}
    for plan_id, version, feature_id, enabled, limit, reset in sql.run(PROJECT_GRANTS, project):
        grants.setdefault((plan_id, version), {})[feature_id] = Grant(bool(enabled), limit, reset)
    return Catalogue(generation, by_price, default, grants)


# project id -> its catalogue, in this process. A project's entry is replaced, never edited: a
# request holds the one it read whatever another request loads meanwhile.
_kept: dict[int, Catalogue] = {}


def current(sql: Sql, project_id: int, generation: int) -> Catalogue:
    """The project's catalogue at `generation`, as read in the caller's statement: the one this
    process keeps if it is that generation's, else loaded and kept.

    Loaded after the generation was read, so what is kept is that generation's or newer: a
    newer one is loaded again on the next request, which reads the newer generation.
    """
    kept = _kept.get(project_id)
    if kept is not None and kept.generation == generation:
        return kept
    loaded = _kept[project_id] = load(sql, project_id, generation)
    return loaded
