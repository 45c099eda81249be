"""The ledger's invariant, checked after the credits tests: every bucket holds exactly the sum
of its ledger rows, none is below zero, and a tenant's balance is the sum of the ledger rows of
its live buckets; each bucket's chain of rows (those out of the tenant's index) holds exactly
its chained rows, newest first."""

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
CHAINED = text(
    "SELECT id, bucket_id, previous_id, kind FROM credit_ledger"
    " WHERE previous_id IS NOT NULL ORDER BY id"
)
HEADS = text("SELECT id, last_deduction_id FROM credit_buckets")
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
    _assert_chains(db)
    return sum(int(s) for _, _, expires, s in rows if _live(expires, now))


def _live(expires: Any, now: datetime) -> bool:
    moment = utc(expires)
    return moment is None or moment > now


def _assert_chains(db: Session | Connection) -> None:
    """Walked from its bucket, each chain meets every row chained to that bucket and no other,
    ids falling, and ends at 0: so the ledger shown (the tenant's index and the chains) misses
    no row."""
    chained = {row.id: row for row in db.execute(CHAINED)}
    for row in chained.values():
        assert row.kind == "deduction", f"ledger row {row.id} is chained but a {row.kind}"
    walked: set[int] = set()
    for bucket_id, head in db.execute(HEADS):
        at = head or 0
        while at:
            assert at in chained, f"bucket {bucket_id}'s chain names {at}, not a chained row"
            row = chained[at]
            assert row.bucket_id == bucket_id, f"row {at} is in bucket {bucket_id}'s chain"
            assert row.previous_id < row.id, f"row {at}'s chain goes forward"
            walked.add(at)
            at = row.previous_id
    assert walked == set(chained), f"rows chained but not reached: {set(chained) - walked}"
