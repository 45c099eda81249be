"""The ledger's invariant, checked after the credits tests: every bucket holds exactly the sum
of its ledger rows, none is below zero, and a tenant's balance is the sum of the ledger rows of
its live buckets."""

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from billplane.hotpath import utc

BUCKETS = text(
    "SELECT b.id, b.remaining, b.expires_at, COALESCE(SUM(l.amount), 0)"
    " FROM credit_buckets b LEFT JOIN credit_ledger l ON l.bucket_id = b.id"
    " GROUP BY b.id, b.remaining, b.expires_at ORDER BY b.id"
)
ORPHANS = text(
    "SELECT COUNT(*) FROM credit_ledger l WHERE l.bucket_id IS NULL AND l.kind <> 'overage'"
)


def ledger_balance(db: Session | Connection, now: datetime) -> int:
    """Asserts the invariant for every bucket in the database; returns the ledger's sum over the
    live buckets (those not expired at `now`)."""
    rows = db.execute(BUCKETS).all()
    for bucket_id, remaining, _, summed in rows:
        assert remaining >= 0, f"bucket {bucket_id} below zero: {remaining}"
        assert remaining == summed, f"bucket {bucket_id}: {remaining} held, ledger says {summed}"
    assert db.execute(ORPHANS).scalar() == 0, "a ledger row other than overage has no bucket"
    return sum(int(s) for _, _, expires, s in rows if _live(expires, now))


def _live(expires: Any, now: datetime) -> bool:
    moment = utc(expires)
    return moment is None or moment > now
