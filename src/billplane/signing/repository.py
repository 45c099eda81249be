"""All SQL about signing keys: the snapshot's small read on the hot path, and the ORM's rest."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, or_, select, true, update
from sqlalchemy.orm import Session

from billplane.hotpath import Sql, Statement
from billplane.models import Project, SigningKey


class SigningView(NamedTuple):
    """What signing one project's snapshot needs: its lifetime and the current key."""

    ttl_seconds: int | None  # the project's own; None: the server's default
    kid: str | None  # None: no key made yet
    sealed: str | None


def _signing_select(_dialect: str) -> Select[Any]:
    p = Project.__table__
    k = SigningKey.__table__
    return (
        select(p.c.snapshot_ttl_seconds, k.c.kid, k.c.private_key_sealed)
        .select_from(p.outerjoin(k, k.c.is_current == true()))
        .where(p.c.id == bindparam("project_id"))
    )


SIGNING = Statement(_signing_select)


def signing_view(sql: Sql, project_id: int) -> SigningView:
    """One statement, read on every snapshot: which key signs is never remembered by a worker,
    so a rotation made through any of them holds at the next request."""
    rows = sql.run(SIGNING, {"project_id": project_id})
    ttl, kid, sealed = rows[0]
    return SigningView(ttl, kid, sealed)


def current_key(session: Session) -> SigningKey | None:
    return session.scalars(select(SigningKey).where(SigningKey.is_current == true())).first()


def retire_current(session: Session, now: datetime) -> None:
    session.execute(
        update(SigningKey)
        .where(SigningKey.is_current == true())
        .values(is_current=None, retired_at=now)
        .execution_options(synchronize_session="fetch")
    )


def add(session: Session, key: SigningKey) -> None:
    session.add(key)
    session.flush()


def published(session: Session, retired_after: datetime) -> Sequence[SigningKey]:
    """The current key and those retired after `retired_after`, newest first."""
    query = (
        select(SigningKey)
        .where(or_(SigningKey.is_current == true(), SigningKey.retired_at > retired_after))
        .order_by(SigningKey.created_at.desc(), SigningKey.id.desc())
    )
    return session.scalars(query).all()


def all_keys(session: Session) -> Sequence[SigningKey]:
    """Every key, newest first (retired ones stay in the table once they are unpublished): one
    per rotation, a short list."""
    query = select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.id.desc())
    return session.scalars(query).all()
