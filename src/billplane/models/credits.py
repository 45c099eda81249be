"""Credits: pools a project prices features in, plans' allowances, each tenant's buckets, and
the append-only ledger every movement of credits is written to."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from billplane.models.base import Base
from billplane.schemas import Reset


class CreditPool(Base):
    """A currency of one project (e.g. `credits`); features are priced in it (`CreditCost`)."""

    __tablename__ = "credit_pools"
    __table_args__ = (UniqueConstraint("project_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class CreditCost(Base):
    """What one unit of a counted feature costs in a pool: a feature has at most one price."""

    __tablename__ = "credit_costs"

    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), primary_key=True
    )
    pool_id: Mapped[int] = mapped_column(ForeignKey("credit_pools.id", ondelete="CASCADE"))
    cost: Mapped[int] = mapped_column(BigInteger)


class CreditPack(Base):
    """A top-up: a one-time Stripe price that buys this many credits of the pool."""

    __tablename__ = "credit_packs"
    __table_args__ = (UniqueConstraint("pool_id", "stripe_price_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("credit_pools.id", ondelete="CASCADE"))
    stripe_price_id: Mapped[str] = mapped_column(String(255))
    credits: Mapped[int] = mapped_column(BigInteger)


class PlanAllowance(Base):
    """What a plan gives of a pool each period, and what it allows beyond."""

    __tablename__ = "plan_allowances"
    __table_args__ = (UniqueConstraint("plan_id", "pool_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("credit_pools.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger)
    reset: Mapped[Reset] = mapped_column(String(16))
    # How much of a period's unused allowance the next period gets (0: none), at most `amount`.
    rollover_cap: Mapped[int] = mapped_column(BigInteger, default=0)
    # Set: a deduction past the balance is admitted, the part past it counted as usage of this
    # metered feature (billed by usage); unset: a deduction must fit the balance.
    overage_feature_id: Mapped[int | None] = mapped_column(
        ForeignKey("features.id", ondelete="SET NULL")
    )


class CreditBucket(Base):
    """Credits of one origin held by a tenant: a period's allowance, a grant or a top-up.

    `remaining` is only ever changed together with a ledger row of the same amount, and the
    database refuses it below zero.
    """

    __tablename__ = "credit_buckets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "pool_id", "source", "source_key"),
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        Index("ix_credit_buckets_tenant_id_pool_id", "tenant_id", "pool_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("credit_pools.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))  # allowance | grant | topup
    # Unique per source: an allowance's period key, a grant's idempotency key.
    source_key: Mapped[str] = mapped_column(String(255))
    granted: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # The newest ledger row chained to this bucket (see `CreditEntry.previous_id`), and the one
    # before it (0: none), which the take that chained the newest returns and a take given back
    # restores.
    last_deduction_id: Mapped[int | None]
    previous_deduction_id: Mapped[int | None]


# The ledger rows that are not a credit-priced usage's own (`deduction`, `overage`): those the
# ledger's unique key holds (see `CreditEntry`).
MOVEMENT = text("kind NOT IN ('deduction', 'overage')")
# The ledger rows the tenant's index holds: all but those chained to their bucket.
UNCHAINED = text("previous_id IS NULL")


class CreditEntry(Base):
    """One movement of credits, never changed once written.

    A movement touching several buckets (a deduction spanning two) writes a row per bucket,
    numbered by `part`; (tenant, idempotency key, kind, part) is unique, so a movement retried
    lands once. A deduction or an overage is kept once by what writes it, in the same
    transaction: the usage event that claimed its key, or the reservation settled from `held`.
    An overage row has no bucket: it is what was used past the balance.
    """

    __tablename__ = "credit_ledger"
    __table_args__ = (
        # A usage's own rows are left out (`MOVEMENT`): they are written only by the usage
        # that claimed its event's key, which is unique already (`usage_events`), and each
        # index a row enters is one more page a credit-priced usage writes. A query that wants
        # this index says `MOVEMENT` too (SQLite uses a partial index only then).
        Index(
            "uq_credit_ledger_movement",
            "tenant_id",
            "idempotency_key",
            "kind",
            "part",
            unique=True,
            sqlite_where=MOVEMENT,
            postgresql_where=MOVEMENT,
        ),
        # A tenant's rows, newest first, but for those chained to their bucket (see
        # `previous_id`). A query that wants this index says `UNCHAINED` too.
        Index(
            "ix_credit_ledger_tenant_id_pool_id_id",
            "tenant_id",
            "pool_id",
            "id",
            sqlite_where=UNCHAINED,
            postgresql_where=UNCHAINED,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("credit_pools.id", ondelete="CASCADE"))
    # The bucket moved, with no foreign key: a bucket goes only with its tenant or pool, whose
    # cascades take its rows too, and a key would want an index on this column, one more page
    # written per movement (the rows of one bucket are found by tenant first).
    bucket_id: Mapped[int | None]
    # allowance | rollover | grant | topup | deduction | overage | expiry | reservation |
    # release | refund
    kind: Mapped[str] = mapped_column(String(16))
    part: Mapped[int] = mapped_column(default=0)
    amount: Mapped[int] = mapped_column(BigInteger)  # signed: + into a bucket, - out of it
    idempotency_key: Mapped[str] = mapped_column(String(255))
    feature_id: Mapped[int | None] = mapped_column(ForeignKey("features.id", ondelete="SET NULL"))
    quantity: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str | None] = mapped_column(String(255))
    # A refund row only: the credits the refund took back that were spent already, so could not
    # be removed (`amount` is what was removed); negative on a later row of the refund that took
    # back held credits as they returned (see `credits.unrecovered`).
    unrecovered: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    # A credit-priced usage's `deduction` row in the common case (its cost whole out of one
    # bucket) is chained to that bucket instead of entering the tenant's index: this is the
    # bucket's previous chained row (0: the first), the bucket knows the newest. An index entry
    # is a page of its own to write at a random place per usage (a tenant's range), while the
    # chain costs two columns on the bucket row the take updates anyway: measured on SQLite,
    # the index alone took a credit-priced usage from 0.89-0.90x to 0.80-0.85x of a plain one.
    # NULL: the row is in the tenant's index.
    previous_id: Mapped[int | None]


class CreditTopup(Base):
    """A paid top-up: the Checkout session that bought it, the payment behind it, and how much
    of it was refunded. Made with its bucket when the credits land; a refund moves the
    `*_refunded` totals (Stripe's charge says how much it gave back so far) and writes the
    ledger row of what it took out of the bucket."""

    __tablename__ = "credit_topups"
    __table_args__ = (
        Index("ix_credit_topups_stripe_payment_intent_id", "stripe_payment_intent_id"),
        Index("ix_credit_topups_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("credit_pools.id", ondelete="CASCADE"))
    bucket_id: Mapped[int] = mapped_column(ForeignKey("credit_buckets.id", ondelete="CASCADE"))
    stripe_checkout_session_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    stripe_price_id: Mapped[str] = mapped_column(String(255))
    credits: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)  # paid, in the currency's minor units
    currency: Mapped[str] = mapped_column(String(8))
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    # What the refunds take back (their share of `credits`), and of that what was spent already
    # (less held credits taken back since, as they returned).
    credits_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_unrecovered: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]
    refunded_at: Mapped[datetime | None]


class CreditReservation(Base):
    """Credits held for a long action (`POST /v1/reservations`): taken out of the buckets at
    once (ledger rows `reservation`), then settled by `finalize` (what the action cost; the rest
    goes back) or `release` (all goes back), or by expiry (released)."""

    __tablename__ = "credit_reservations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_credit_reservations_tenant_id_pool_id_status", "tenant_id", "pool_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # rsv_…, in URLs
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("credit_pools.id", ondelete="CASCADE"))
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(BigInteger)  # the estimate, in the feature's units
    amount: Mapped[int] = mapped_column(BigInteger)  # the credits held
    status: Mapped[str] = mapped_column(String(16))  # held | finalized | released | expired
    final_quantity: Mapped[int | None] = mapped_column(BigInteger)
    final_amount: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    settled_at: Mapped[datetime | None]
