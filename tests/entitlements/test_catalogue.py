"""The catalogue each worker keeps (entitlements/catalogue.py) and the generation that tells it
when to read the plans again: the database's triggers change it with every write to a project's
plans, versions and grants, whoever writes; and a change rolled back is never answered from.
(Every worker obeying a change on its next request: tests/test_workers_obey_changes.py.)"""

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from billplane.models import Plan, PlanGrant, PlanVersion, Project


def generation(session: Session, key: str = "realtyos") -> int:
    found = session.scalar(select(Project.catalogue_generation).where(Project.key == key))
    assert found is not None
    return found


def test_every_write_to_a_projects_plans_versions_and_grants_gives_it_a_new_generation(
    realtyos: Any, session: Session
) -> None:
    realtyos.seed.project("other")
    free = session.scalars(select(Plan).where(Plan.key == "free")).one()
    feature_id = session.scalars(
        select(PlanGrant.feature_id).where(PlanGrant.plan_id == free.id)
    ).first()
    plan_row = {"project_id": free.project_id, "name": "Gold", "trial_days": 0}
    writes: list[Any] = [
        insert(Plan).values(key="gold", **plan_row, created_at=free.created_at,
                            updated_at=free.updated_at),
        update(Plan).where(Plan.key == "gold").values(name="Golden"),
        insert(PlanVersion).values(plan_id=free.id, version=99, trial_days=0,
                                   created_at=free.created_at),
        update(PlanVersion).where(PlanVersion.version == 99).values(stripe_price_id="price_x"),
        insert(PlanGrant).values(plan_id=free.id, version=99, feature_id=feature_id, limit=1),
        update(PlanGrant).where(PlanGrant.version == 99).values(limit=2),
        delete(PlanGrant).where(PlanGrant.version == 99),
        delete(PlanVersion).where(PlanVersion.version == 99),
        delete(Plan).where(Plan.key == "gold"),
    ]  # fmt: skip
    seen = [generation(session)]
    others = generation(session, "other")
    for write in writes:
        with session.begin_nested():
            session.execute(write)
        seen.append(generation(session))
        assert seen[-1] != seen[-2], write
    assert len(set(seen)) == len(seen)  # never one seen before
    assert generation(session, "other") == others  # another project's plans are its own
    assert others != seen[0]  # and each project starts at a generation of its own


def _limit(realtyos: Any) -> int:
    answer = realtyos.api.post("/v1/check", {"tenant": "acme", "feature": "listings.publish"})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["limit"])


def _set_free_limit(session: Session, limit: int) -> None:
    free = select(Plan.id).where(Plan.key == "free").scalar_subquery()
    session.execute(update(PlanGrant).where(PlanGrant.plan_id == free, PlanGrant.limit == 3)
                    .values(limit=limit))  # fmt: skip


def test_a_change_rolled_back_after_a_check_saw_it_is_never_answered_from(
    realtyos: Any, session: Session
) -> None:
    """A check inside a transaction that changed the plans loads them under that transaction's
    generation; once it is rolled back, another change must not be taken for it (a generation
    counted up would come back: the first change's numbers would be answered for the second)."""
    assert _limit(realtyos) == 3
    rolled_back = session.begin_nested()
    _set_free_limit(session, 7)
    assert _limit(realtyos) == 7  # the change, seen (and kept) inside its own transaction
    rolled_back.rollback()

    with session.begin_nested():  # the next change, before any other check
        _set_free_limit(session, 9)
    assert _limit(realtyos) == 9
