"""Credits a top-up's refund could not take back because a reservation held them: taken back
when they return to the top-up's bucket (a release, a finalize for less, an expiry), so that
giving a hold back never undoes a refund.

What returns is taken back up to what the top-up's refunds are still short of, the oldest
refund made whole first. Each take is a `refund` ledger row under that refund's key (parts 1,
2, …; part 0 is the refund itself) whose `amount` is the credits taken and whose `unrecovered`
is the same amount, negative: a refund's rows add up to what it still could not take, and the
top-up's `credits_unrecovered` goes down with them.

Runs in the writer's transaction after the credits went back, so the bucket is locked before
its top-up; a refund (`topups.refund_topup`) locks them in that order too, so the two never
wait for each other in a circle, and whichever commits second sees what the first did.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from billplane.credits import repository
from billplane.credits.repository import Entry
from billplane.hotpath import Sql


class Returned(NamedTuple):
    """Credits a reservation gave back to a top-up's bucket (locked by the giving back)."""

    bucket_id: int
    checkout_id: str  # the top-up's Checkout session: its bucket's source key
    credits: int


def take_back(
    sql: Sql,
    *,
    tenant_id: int,
    pool_id: int,
    returned: Sequence[Returned],
    reservation: str,
    now: datetime,
) -> None:
    """Take back what returned to refunded top-ups, as far as their refunds are short."""
    for back in returned:
        topup = repository.unrecovered_topup(sql, back.checkout_id, back.bucket_id)
        if topup is None:  # not refunded, or its refunds took everything they claimed
            continue
        topup_id, unrecovered = topup
        left = min(back.credits, unrecovered)
        rows: list[Entry] = []
        for key, short, last_part in repository.refunds_short(sql, tenant_id, back.bucket_id):
            if left == 0:
                break
            taken = min(short, left)
            row = Entry(
                tenant_id, pool_id, back.bucket_id, "refund", last_part + 1, -taken, key,
                None, None, _reason(reservation, taken), None, now,
            )  # fmt: skip
            rows.append(row)
            left -= taken
        total = -sum(row.amount for row in rows)
        if total == 0:
            continue
        repository.take(sql, back.bucket_id, total)
        repository.less_unrecovered(sql, topup_id, total)
        for row in rows:
            repository.insert_refund_row(sql, row, row.amount)


def _reason(reservation: str, taken: int) -> str:
    return (
        f"{taken} credits reservation {reservation} held when this refund came, "
        "taken back as they returned"
    )
