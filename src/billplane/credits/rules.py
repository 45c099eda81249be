"""The pure rules of credits: which buckets count now, what a period's allowance adds, and how
a deduction is spread over buckets. Nothing here touches the database."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from billplane.credits.repository import AllowanceRow, BucketRow
from billplane.entitlements.rules import Period


def period_start(period: Period) -> datetime | None:
    """When a period began, read from its key (`d:2026-12-04`, `m:2026-12`, `bp:<start>`)."""
    kind, _, value = period.key.partition(":")
    if kind == "d":
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    if kind == "m":
        return datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
    if kind == "bp":
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return None  # `never`: one allowance, for good


def usable(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or expires_at > now


def rolled_over(previous: BucketRow | None, start: datetime | None, cap: int, now: datetime) -> int:
    """What a new period's allowance gets from the previous one: its unused credits, at most
    `cap`, only from the period that ended as this one began (a period the tenant had no
    allowance bucket in carries nothing: `cap` is at most one period's allowance, see
    `service.set_allowance`)."""
    if previous is None or cap <= 0 or start is None or previous.expires_at != start:
        return 0
    return min(previous.remaining, cap) if previous.expires_at <= now else 0


@dataclass(slots=True)
class Spread:
    """How `amount` credits are taken: from which buckets, and what is past the balance."""

    amount: int
    available: int  # usable credits before
    takes: list[tuple[int, int]] = field(default_factory=list)  # (bucket id, credits)
    expired: list[tuple[int, int]] = field(default_factory=list)  # (bucket id, credits left)

    @property
    def overage(self) -> int:
        return self.amount - sum(t for _, t in self.takes)

    @property
    def balance(self) -> int:
        return self.available - sum(t for _, t in self.takes)


def spread(buckets: list[BucketRow], amount: int, now: datetime) -> Spread:
    """Take `amount` from `buckets` (in deduction order: soonest-expiring first); expired ones
    are listed to be emptied."""
    live = [b for b in buckets if usable(b.expires_at, now)]
    out = Spread(amount, sum(b.remaining for b in live))
    out.expired = [(b.id, b.remaining) for b in buckets if not usable(b.expires_at, now)]
    left = amount
    for bucket in live:
        if left == 0:
            break
        taken = min(bucket.remaining, left)
        out.takes.append((bucket.id, taken))
        left -= taken
    return out


def allowance_due(
    allowance: AllowanceRow | None, period: Period | None, buckets: list[BucketRow]
) -> bool:
    """Whether the current period's allowance bucket is still to be made."""
    if allowance is None or period is None:
        return False
    return not any(b.source == "allowance" and b.source_key == period.key for b in buckets)
