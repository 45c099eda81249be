"""The refusal log: every refused check and every 402, kept for a while to answer "why?".

Diagnosis, not billing: a refusal is noted in the worker's memory and written with others in
the background (`hotpath.Later`), so the refused request waits for no database round trip of
its own. A crash loses the refusals of the last second or so. Rows older than
`BILLPLANE_REFUSALS_KEEP_DAYS` go, and a project keeps at most
`BILLPLANE_REFUSALS_MAX_PER_PROJECT` (the newest).
"""

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from billplane.db import Transactions
from billplane.hotpath import Job, Sql
from billplane.models import Refusal
from billplane.paging import Page
from billplane.refusals import repository
from billplane.refusals.repository import Noted
from billplane.settings import Settings

LATER = "refusals"
CHECKS = "checks"
FLUSH_SECONDS = 1.0  # how long a refusal waits in memory at most
FLUSH_AT = 500  # ... or until this many wait
CAP_EVERY_SECONDS = 600.0  # how often a worker trims a project to its most rows


def note(tx: Transactions, settings: Settings, noted: Noted) -> None:
    """Keep `noted`, soon: handed to the writer within `FLUSH_SECONDS`, not now."""
    keep = Keeper(
        settings.billplane_refusals_keep_days, settings.billplane_refusals_max_per_project
    )
    tx.later(LATER, keep, noted, every=FLUSH_SECONDS, most=FLUSH_AT)


def count_check(tx: Transactions, project_id: int, now: datetime, *, refused: bool) -> None:
    """Count a check in its project's day (for the dashboard), soon: as `note`."""
    day = now.astimezone(UTC).date().isoformat()
    tx.later(CHECKS, _count_checks, (project_id, day, refused), every=FLUSH_SECONDS, most=FLUSH_AT)


def _count_checks(items: list[tuple[int, str, bool]]) -> Job:
    checks: Counter[tuple[int, str]] = Counter()
    refused: Counter[tuple[int, str]] = Counter()
    for project_id, day, was_refused in items:
        checks[project_id, day] += 1
        refused[project_id, day] += was_refused

    def job(sql: Sql) -> None:
        for project_id, day in sorted(checks):
            added = checks[project_id, day], refused[project_id, day]
            repository.add_checks(sql, project_id, day, *added)

    return job


@dataclass
class Keeper:
    """Makes the job that writes a batch of refusals and trims the log."""

    keep_days: int
    most_per_project: int
    capped_at: float | None = None  # when this worker last trimmed projects to their most

    def __call__(self, noted: list[Noted]) -> Job:
        def job(sql: Sql) -> None:
            repository.store(sql, noted)
            repository.prune_before(sql, noted[-1].at - timedelta(days=self.keep_days))
            now = time.monotonic()
            if self.capped_at is None or now - self.capped_at >= CAP_EVERY_SECONDS:
                self.capped_at = now
                for project_id in sorted({n.project_id for n in noted}):
                    repository.prune_beyond(sql, project_id, self.most_per_project)

        return job


def recent(
    session: Session,
    project_id: int,
    *,
    tenant: str | None = None,
    feature: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    starting_after: int | None = None,
) -> Page[Refusal]:
    """A project's refusals, newest first, filtered and paged (`starting_after` an id)."""
    rows: Sequence[Refusal] = repository.recent(
        session,
        project_id,
        tenant=tenant,
        feature=feature,
        reason=reason,
        since=since,
        until=until,
        limit=limit,
        starting_after=starting_after,
    )
    return Page(data=rows[:limit], has_more=len(rows) > limit)


def daily_checks(session: Session, since: str) -> dict[str, dict[str, tuple[int, int]]]:
    """Per project key, its days from `since` (YYYY-MM-DD) on: (checks, refused)."""
    days: dict[str, dict[str, tuple[int, int]]] = {}
    for key, day, checks, refused in repository.daily_checks(session, since):
        days.setdefault(key, {})[day] = (checks, refused)
    return days


def daily_refusals(
    session: Session, project_id: int, tenant: str, since: datetime
) -> dict[str, dict[str, int]]:
    """Per feature key, a tenant's refusals per UTC day since `since`."""
    days: dict[str, dict[str, int]] = {}
    for feature, day, count in repository.daily_refusals(session, project_id, tenant, since):
        days.setdefault(feature, {})[day] = count
    return days
