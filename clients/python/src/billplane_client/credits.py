"""Typed answers of the credits calls: a tenant's balances (`GET /v1/tenants/{t}/balances`), a
top-up's checkout (`POST /v1/topups`) and reservations (`POST /v1/reservations`, finalize,
release). Each keeps its JSON in `raw`, as the other answers do."""

from dataclasses import dataclass, field
from datetime import datetime

from billplane_client.types import Json, _int, parse_time


@dataclass(frozen=True)
class CreditBucket:
    """Where credits came from (`allowance`, `grant` or `topup`) and what is left of them."""

    id: int
    source: str
    source_key: str
    granted: int
    remaining: int
    expires_at: datetime | None
    created_at: datetime | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> "CreditBucket":
        return cls(
            id=int(data["id"]),
            source=str(data["source"]),
            source_key=str(data["source_key"]),
            granted=int(data["granted"]),
            remaining=int(data["remaining"]),
            expires_at=parse_time(data.get("expires_at")),
            created_at=parse_time(data.get("created_at")),
            raw=data,
        )


@dataclass(frozen=True)
class LedgerEntry:
    """One movement of credits: `amount` is signed, into (+) or out of (-) `bucket`; a
    `refund` also says what it could not remove (`unrecovered`: spent already; negative on a
    later row that took back held credits as they returned)."""

    id: int
    kind: str
    amount: int
    bucket: int | None
    idempotency_key: str
    feature: str | None
    quantity: int | None
    reason: str | None
    created_at: datetime | None
    unrecovered: int | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> "LedgerEntry":
        return cls(
            id=int(data["id"]),
            kind=str(data["kind"]),
            amount=int(data["amount"]),
            bucket=_int(data.get("bucket")),
            idempotency_key=str(data["idempotency_key"]),
            feature=data.get("feature"),
            quantity=_int(data.get("quantity")),
            reason=data.get("reason"),
            created_at=parse_time(data.get("created_at")),
            unrecovered=_int(data.get("unrecovered")),
            raw=data,
        )


@dataclass(frozen=True)
class PoolBalance:
    """One credit pool of the tenant: the usable `balance`, the buckets in deduction order
    (soonest-expiring first) and the newest movements, newest first."""

    pool: str
    name: str
    balance: int
    buckets: tuple[CreditBucket, ...]
    ledger: tuple[LedgerEntry, ...]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> "PoolBalance":
        return cls(
            pool=str(data["pool"]),
            name=str(data["name"]),
            balance=int(data["balance"]),
            buckets=tuple(CreditBucket.from_json(b) for b in data.get("buckets", [])),
            ledger=tuple(LedgerEntry.from_json(e) for e in data.get("ledger", [])),
            raw=data,
        )


@dataclass(frozen=True)
class Balances:
    """Every credit pool of the project for `tenant`; `balance("credits")` for one number."""

    tenant: str
    pools: tuple[PoolBalance, ...]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> "Balances":
        pools = tuple(PoolBalance.from_json(p) for p in data.get("pools", []))
        return cls(tenant=str(data["tenant"]), pools=pools, raw=data)

    def pool(self, key: str) -> PoolBalance:
        """The pool named `key`; `KeyError` if the project has none by that key."""
        for pool in self.pools:
            if pool.pool == key:
                return pool
        raise KeyError(key)

    def balance(self, key: str) -> int:
        return self.pool(key).balance


@dataclass(frozen=True)
class Topup:
    """A Stripe Checkout session for a pack of credits: send the person to `url`; `credits`
    land in `pool` once it is paid (confirm it with `confirm_checkout(id)`)."""

    id: str
    url: str | None
    pool: str
    credits: int
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> "Topup":
        return cls(
            id=str(data["id"]),
            url=data.get("url"),
            pool=str(data["pool"]),
            credits=int(data["credits"]),
            raw=data,
        )


@dataclass(frozen=True)
class Reservation:
    """Credits held for a long action (`status` `held`) until it is finalized with what it
    used, released, or expires. `balance` is the pool's usable balance after the call."""

    id: str
    tenant: str
    feature: str
    pool: str
    quantity: int
    amount: int
    status: str
    final_quantity: int | None
    final_amount: int | None
    expires_at: datetime | None
    created_at: datetime | None
    balance: int
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> "Reservation":
        return cls(
            id=str(data["id"]),
            tenant=str(data["tenant"]),
            feature=str(data["feature"]),
            pool=str(data["pool"]),
            quantity=int(data["quantity"]),
            amount=int(data["amount"]),
            status=str(data["status"]),
            final_quantity=_int(data.get("final_quantity")),
            final_amount=_int(data.get("final_amount")),
            expires_at=parse_time(data.get("expires_at")),
            created_at=parse_time(data.get("created_at")),
            balance=int(data["balance"]),
            raw=data,
        )
