"""All SQL about plans and their per-feature grants."""

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from billplane.entitlements.rules import Grant
from billplane.models import Plan, PlanGrant
from billplane.paging import Page, page_of


def get_plan(session: Session, project_id: int, key: str) -> Plan | None:
    return session.scalar(select(Plan).where(Plan.project_id == project_id, Plan.key == key))


def list_plans(
    session: Session, project_id: int, *, limit: int, starting_after: str | None
) -> Page[Plan]:
    return page_of(
        session, select(Plan).where(Plan.project_id == project_id), Plan.key, limit, starting_after
    )


def add(session: Session, plan: Plan) -> None:
    session.add(plan)
    session.flush()


def plan_for_price(session: Session, project_id: int, stripe_price_id: str) -> Plan | None:
    return session.scalar(
        select(Plan).where(Plan.project_id == project_id, Plan.stripe_price_id == stripe_price_id)
    )


def clear_default(session: Session, project_id: int) -> None:
    session.execute(
        update(Plan)
        .where(Plan.project_id == project_id, Plan.is_default.is_(True))
        .values(is_default=False)
    )
    session.flush()


def grants_of(session: Session, plan_id: int) -> dict[int, Grant]:
    rows = session.execute(
        select(PlanGrant.feature_id, PlanGrant.enabled, PlanGrant.limit, PlanGrant.reset).where(
            PlanGrant.plan_id == plan_id
        )
    )
    return {row.feature_id: Grant(row.enabled, row.limit, row.reset) for row in rows}


def replace_grants(session: Session, plan_id: int, grants: dict[int, Grant]) -> None:
    session.execute(delete(PlanGrant).where(PlanGrant.plan_id == plan_id))
    session.add_all(
        PlanGrant(
            plan_id=plan_id, feature_id=feature_id, enabled=g.enabled, limit=g.limit, reset=g.reset
        )
        for feature_id, g in grants.items()
    )
    session.flush()
