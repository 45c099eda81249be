"""The reads behind the set-up status: progress per project and the webhook's deliveries."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from billplane.models import Feature, Plan, PlanGrant, Project, StripeEvent, Tenant


@dataclass(frozen=True)
class ProjectSetup:
    """How far one project is set up, for the checklist."""

    key: str
    name: str
    features: int
    plans: int  # active plans
    tenants: int
    prices: tuple[str, ...]  # the Stripe prices of its active plans
    first_check_at: datetime | None
    granting_plans: int = 0  # active plans that grant at least one feature


def setup_of_projects(session: Session) -> list[ProjectSetup]:
    projects = session.execute(
        select(Project.id, Project.key, Project.name, Project.first_check_at).order_by(
            Project.created_at, Project.id
        )
    ).all()
    features = _count_by_project(session, Feature.project_id)
    tenants = _count_by_project(session, Tenant.project_id)
    plans: dict[int, list[str | None]] = {}
    for project_id, price in session.execute(
        select(Plan.project_id, Plan.stripe_price_id).where(Plan.status == "active")
    ):
        plans.setdefault(project_id, []).append(price)
    # A plan that grants nothing does not answer "can this tenant do this?" with a yes.
    granting = _count_by_project(
        session,
        Plan.project_id,
        where=[
            Plan.status == "active",
            select(PlanGrant.id)
            .where(
                PlanGrant.plan_id == Plan.id,
                PlanGrant.version == Plan.version,  # what the plan sells now
                PlanGrant.enabled.is_(True),
            )
            .exists(),
        ],
    )
    return [
        ProjectSetup(
            key=p.key,
            name=p.name,
            features=features.get(p.id, 0),
            plans=len(plans.get(p.id, [])),
            tenants=tenants.get(p.id, 0),
            prices=tuple(price for price in plans.get(p.id, []) if price),
            first_check_at=p.first_check_at,
            granting_plans=granting.get(p.id, 0),
        )
        for p in projects
    ]


def _count_by_project(
    session: Session,
    column: InstrumentedAttribute[int],
    where: Sequence[ColumnElement[bool]] = (),
) -> dict[int, int]:
    rows = session.execute(select(column, func.count()).where(*where).group_by(column))
    return {project_id: count for project_id, count in rows}


def last_event(session: Session) -> StripeEvent | None:
    return session.scalar(
        select(StripeEvent).order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc()).limit(1)
    )


def recent_events(session: Session, *, limit: int = 50) -> Sequence[StripeEvent]:
    return session.scalars(
        select(StripeEvent)
        .order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc())
        .limit(limit)
    ).all()


def event_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StripeEvent)) or 0
