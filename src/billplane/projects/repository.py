"""All SQL about projects and features."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billplane.models import Feature, Project
from billplane.paging import Page, page_of


def get_project(session: Session, key: str) -> Project | None:
    return session.scalar(select(Project).where(Project.key == key))


def list_projects(session: Session, *, limit: int, starting_after: str | None) -> Page[Project]:
    return page_of(session, select(Project), Project.key, limit, starting_after)


def add(session: Session, row: Project | Feature) -> None:
    session.add(row)
    session.flush()


def get_feature(session: Session, project_id: int, key: str) -> Feature | None:
    return session.scalar(
        select(Feature).where(Feature.project_id == project_id, Feature.key == key)
    )


def features_of(session: Session, project_id: int) -> Sequence[Feature]:
    return session.scalars(
        select(Feature).where(Feature.project_id == project_id).order_by(Feature.key)
    ).all()


def list_features(
    session: Session, project_id: int, *, limit: int, starting_after: str | None
) -> Page[Feature]:
    query = select(Feature).where(Feature.project_id == project_id)
    return page_of(session, query, Feature.key, limit, starting_after)


def mark_first_check(session: Session, project_id: int, now: datetime) -> None:
    session.execute(
        update(Project)
        .where(Project.id == project_id, Project.first_check_at.is_(None))
        .values(first_check_at=now)
    )
