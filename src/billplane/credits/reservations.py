"""Reservations for long actions: credits held at the start (`reserve`), settled at the end
with what the action cost (`finalize`) or nothing (`release`), or released by themselves once
expired. Each runs as one job of the hot path's writer, on the buckets read under lock; a
reservation's own row is locked while it is settled (after the buckets it holds from, the
order every movement takes), so two settlings never both apply nor wait in a circle.
"""

import secrets
from datetime import datetime, timedelta
from typing import Any, TypedDict

from billplane.credits import repository, service
from billplane.credits.repository import ReservationRow
from billplane.credits.service import Priced
from billplane.entitlements import service as entitlements
from billplane.entitlements.service import Access
from billplane.errors import (
    BillplaneError,
    Conflict,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    PaymentRequired,
    present,
)
from billplane.hotpath import Sql
from billplane.tokens import service as tokens


class ReservationNotFound(NotFound):
    code = "reservation_not_found"


class ReservationSettled(Conflict):
    code = "reservation_settled"


class ReservationExpired(Conflict):
    code = "reservation_expired"


class ReservationAnswer(TypedDict):
    """The body of every reservation call (`schemas.ReservationOut`)."""

    id: str
    tenant: str
    feature: str
    pool: str
    quantity: int
    amount: int
    status: str
    final_quantity: int | None
    final_amount: int | None
    expires_at: datetime
    created_at: datetime
    balance: int


def _answer(
    row: ReservationRow, tenant: str, feature: str, pool: str, balance: int
) -> ReservationAnswer:
    return {
        "id": row.public_id,
        "tenant": tenant,
        "feature": feature,
        "pool": pool,
        "quantity": row.quantity,
        "amount": row.amount,
        "status": row.status,
        "final_quantity": row.final_quantity,
        "final_amount": row.final_amount,
        "expires_at": row.expires_at,
        "created_at": row.created_at,
        "balance": balance,
    }


def reserve(
    sql: Sql,
    *,
    price: service.Priced,
    access: Access,
    feature: tuple[int, str],
    quantity: int,
    key: str,
    ttl: int,
    now: datetime,
) -> tuple[ReservationAnswer, bool] | BillplaneError:
    """Hold the cost of `quantity`; (answer, created). A repeat of the key answers the first
    reservation as it is now; one that does not fit the balance is refused (402)."""
    feature_id, feature_key = feature
    earlier = repository.reservation_by_key(sql, access.tenant_id, key)
    if earlier is None:
        taken = service.deduction(sql, price, access, quantity, now, enforce=True)
        if taken.spread.overage:  # a hold never passes the balance, overage or not
            return _insufficient(taken, feature_key, quantity)
        public_id = f"rsv_{secrets.token_hex(12)}"
        values: dict[str, Any] = {
            "public_id": public_id,
            "tenant_id": access.tenant_id,
            "pool_id": price.pool_id,
            "feature_id": feature_id,
            "idempotency_key": key,
            "quantity": quantity,
            "amount": taken.cost,
            "status": "held",
            "final_quantity": None,
            "final_amount": None,
            "expires_at": now + timedelta(seconds=ttl),
            "created_at": now,
        }
        if repository.new_reservation(sql, values) is not None:
            entries = [
                service.reservation_entry(
                    taken.pool, bucket, -credits, public_id, now, part, feature_id
                )
                for part, (bucket, credits) in enumerate(taken.spread.takes)
            ]
            service.write_takes(sql, taken, entries, now)
            row = present(repository.reservation_by_key(sql, access.tenant_id, key), "it")
            answer = _answer(row, access.tenant_key, feature_key, taken.pool.pool_key, 0)
            answer["balance"] = taken.spread.balance
            return answer, True
        earlier = present(  # a racing twin's, committed meanwhile
            repository.reservation_by_key(sql, access.tenant_id, key), "the earlier reservation"
        )
    if earlier.feature_id != feature_id or earlier.quantity != quantity:
        return IdempotencyKeyReused(
            f"Idempotency key '{key}' was already used for another reservation.",
            extra={"param": "idempotency_key"},
        )
    pool = service.view_of_pool(sql, access, price.pool_id, price.unit_cost, now)
    return _answer(earlier, access.tenant_key, feature_key, pool.pool_key, pool.balance(now)), False


def _insufficient(taken: service.Deduction, feature: str, quantity: int) -> PaymentRequired:
    return PaymentRequired(
        "insufficient_credits",
        f"Reserving {quantity} of '{feature}' holds {taken.cost} '{taken.pool.pool_key}' "
        f"credits; the balance is {taken.spread.available}.",
        extra={**taken.numbers, "balance": taken.spread.available},
    )


def settle(
    sql: Sql,
    *,
    public_id: str,
    access: Access,
    feature_key: str,
    final_quantity: int | None,
    now: datetime,
) -> ReservationAnswer | BillplaneError:
    """Finalize with `final_quantity` (None: release). Idempotent: settling again the same way
    answers the settled reservation; another way, 409 `reservation_settled`. An expired one is
    released (409 `reservation_expired` to a finalize)."""
    repository.lock_settling_buckets(sql, access.tenant_id, public_id)
    row = present(repository.reservation_by_id(sql, public_id), public_id)  # the read found it
    unit_cost = row.amount // row.quantity
    price = service.Priced(row.pool_id, unit_cost)
    pool = service.view_of_pool(sql, access, row.pool_id, unit_cost, now)
    if row.status == "held" and row.expires_at <= now:
        service.release_expired(sql, pool, now)
        row = present(repository.reservation_by_id(sql, public_id), public_id)
    if row.status != "held":
        return _settled_answer(sql, row, access, feature_key, final_quantity, now, price)
    if final_quantity is None:
        service.give_back_held(sql, pool, row, row.amount, now)
        repository.settle(sql, row.id, "released", now)
    else:
        final_amount = unit_cost * final_quantity
        if final_amount <= row.amount:
            service.give_back_held(sql, pool, row, row.amount - final_amount, now)
        else:
            extra = final_amount - row.amount
            taken = service.deduction(sql, price, access, extra // unit_cost, now, enforce=True)
            if taken.spread.overage:
                return _insufficient(taken, feature_key, extra // unit_cost)
            entries = [
                service.reservation_entry(
                    taken.pool, bucket, -credits, row.public_id, now, part, row.feature_id,
                    kind="deduction",
                )
                for part, (bucket, credits) in enumerate(taken.spread.takes)
            ]  # fmt: skip
            service.write_takes(sql, taken, entries, now)
        repository.settle(sql, row.id, "finalized", now, final_quantity, final_amount)
    settled = present(repository.reservation_by_id(sql, public_id), public_id)
    pool = service.view_of_pool(sql, access, row.pool_id, unit_cost, now)
    return _answer(settled, access.tenant_key, feature_key, pool.pool_key, pool.balance(now))


def _settled_answer(
    sql: Sql,
    row: ReservationRow,
    access: Access,
    feature_key: str,
    final_quantity: int | None,
    now: datetime,
    price: service.Priced,
) -> ReservationAnswer | BillplaneError:
    wanted = "released" if final_quantity is None else "finalized"
    same = row.status == wanted and (final_quantity is None or row.final_quantity == final_quantity)
    if row.status == "expired" and final_quantity is None:
        same = True  # released either way
    if not same:
        if row.status == "expired":
            return ReservationExpired(
                f"Reservation '{row.public_id}' expired at "
                f"{row.expires_at.isoformat()} and was released.",
            )
        return ReservationSettled(
            f"Reservation '{row.public_id}' is already {row.status}.",
            extra={"status": row.status},
        )
    pool = service.view_of_pool(sql, access, row.pool_id, price.unit_cost, now)
    return _answer(row, access.tenant_key, feature_key, pool.pool_key, pool.balance(now))


def price_of(access: Access, feature_key: str, quantity: int, now: datetime) -> Priced:
    """The price of the feature a reservation is for: it must cost credits, and the tenant's
    plan must let it use `quantity` of it (402 as an enforced usage would answer)."""
    feature = access.features[0]
    price = service.priced(feature)
    if price is None:
        raise InvalidInput(
            f"Feature '{feature_key}' costs no credits: there is nothing to reserve.",
            extra={"param": "feature"},
        )
    decision = entitlements.decide(access, feature, access.used.get(feature.id, 0), quantity, now)
    if not decision.allowed:
        raise PaymentRequired(
            decision.reason,
            f"Tenant '{access.tenant_key}' may not use {quantity} of '{feature_key}' "
            f"({decision.reason}).",
            extra={"limit": decision.limit, "used": decision.used},
        )
    return price


def whose(sql: Sql, token: str | None, public_id: str) -> tuple[int, str, str]:
    """(tenant id, tenant key, feature key) of a reservation in the token's project: 401 for
    a token that is not one, then 404 if there is no such reservation."""
    found = repository.reservation_view(sql, tokens.token_hash_of(token), public_id)
    if found is None:
        raise tokens.unknown_token()
    tenant_id, tenant, feature = found
    if tenant_id is None or tenant is None or feature is None:
        raise ReservationNotFound(f"No reservation '{public_id}'.")
    return tenant_id, tenant, feature


def require_owner(access: Access, tenant_id: int, public_id: str) -> None:
    """A reservation of another project's tenant is, to this token, one that does not exist."""
    if access.tenant_id != tenant_id:
        raise ReservationNotFound(f"No reservation '{public_id}'.")
