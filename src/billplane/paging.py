"""Stripe-style list pages: `{"data": [...], "has_more": bool}`, by `limit` and `starting_after`."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    data: Sequence[Row]
    has_more: bool


def page_of(
    session: Session,
    query: Select[Any],
    key: InstrumentedAttribute[Any],
    limit: int,
    starting_after: str | None,
) -> Page[Any]:
    """Rows ordered by their key, after `starting_after`, one more fetched to learn `has_more`."""
    if starting_after is not None:
        query = query.where(key > starting_after)
    rows = session.scalars(query.order_by(key).limit(limit + 1)).all()
    return Page(data=rows[:limit], has_more=len(rows) > limit)


class ListOut(BaseModel, Generic[Row]):
    """The list shape of every admin collection (Stripe's)."""

    data: list[Row]
    has_more: bool
