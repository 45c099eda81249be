"""The client API's calls as plain data, shared by the sync and the async client: how each request
is built, which failures are retried (network errors and 5xx only), and how an answer is decoded.

Only the sending differs between the two clients; everything here is I/O-free.
"""

import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from billplane_client.errors import BillplaneUnreachable, error_from_envelope
from billplane_client.types import UsageEvent

JWT = "application/jwt"


@dataclass(frozen=True)
class Call:
    """One request to billplane: sent as is on every attempt, so a retry repeats it exactly."""

    method: str
    path: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; between them an exponential backoff with full jitter, capped.

    Only network errors and 5xx answers are retried: a 4xx would get the same answer again.
    """

    attempts: int = 3
    backoff: float = 0.2
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delays(self) -> Iterator[float]:
        """The pause before each retry (attempts - 1 of them)."""
        for retry in range(self.attempts - 1):
            # Jitter spreads retries out; it guards nothing, so no cryptographic randomness.
            yield random.uniform(0, min(self.max_backoff, self.backoff * 2**retry))  # noqa: S311


# What billplane answers (503) when it cannot sign a snapshot: asking again changes nothing.
SIGNING_UNAVAILABLE = frozenset({"signing_not_configured", "signing_key_unreadable"})


def is_retryable(response: httpx.Response) -> bool:
    return response.status_code >= 500 and not _cannot_sign(response)


def _cannot_sign(response: httpx.Response) -> bool:
    if response.status_code != 503 or "entitlements" not in response.request.url.path:
        return False
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("code") in SIGNING_UNAVAILABLE


def decode(response: httpx.Response) -> Any:
    """The answer's JSON (a signed snapshot's compact JWS as text), or the API's error raised as
    its `BillplaneError` subclass."""
    if response.is_success and response.headers.get("content-type", "").startswith(JWT):
        return response.text
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success:
        return body
    raise error_from_envelope(response.status_code, body, response.text)


def new_idempotency_key() -> str:
    return f"bpc-{uuid.uuid4()}"


def _path_segment(value: str) -> str:
    return quote(value, safe="")


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware (e.g. datetime.now(UTC))")
    return value.isoformat()


def check(tenant: str, feature: str, quantity: int) -> Call:
    return Call("POST", "/v1/check", {"tenant": tenant, "feature": feature, "quantity": quantity})


def usage_body(event: UsageEvent) -> dict[str, Any]:
    """The JSON of one usage event, with its idempotency key generated here if not given."""
    body: dict[str, Any] = {
        "tenant": event.tenant,
        "feature": event.feature,
        "quantity": event.quantity,
        "idempotency_key": event.idempotency_key or new_idempotency_key(),
        "enforce": event.enforce,
    }
    if event.timestamp is not None:
        body["timestamp"] = _timestamp(event.timestamp)
    return body


def usage(event: UsageEvent) -> Call:
    # The key is fixed here, once: every retry of this call sends the same key.
    return Call("POST", "/v1/usage", usage_body(event))


def usage_batch(events: Iterable[UsageEvent]) -> Call:
    return Call("POST", "/v1/usage/batch", {"events": [usage_body(e) for e in events]})


def entitlements(tenant: str, *, signed: bool = False) -> Call:
    """The tenant's entitlements; `signed` asks for billplane's signed snapshot of them."""
    headers = {"Accept": JWT} if signed else {}
    return Call("GET", f"/v1/tenants/{_path_segment(tenant)}/entitlements", headers=headers)


def jwks() -> Call:
    """billplane's public signing keys."""
    return Call("GET", "/.well-known/jwks.json")


def checkout(tenant: str, plan: str, success_url: str, cancel_url: str) -> Call:
    body = {"tenant": tenant, "plan": plan, "success_url": success_url, "cancel_url": cancel_url}
    return Call("POST", "/v1/checkout", body)


def confirm_checkout(session_id: str) -> Call:
    return Call("POST", f"/v1/checkout/{_path_segment(session_id)}/confirm")


def portal(tenant: str, return_url: str) -> Call:
    return Call("POST", "/v1/portal", {"tenant": tenant, "return_url": return_url})


def balances(tenant: str) -> Call:
    return Call("GET", f"/v1/tenants/{_path_segment(tenant)}/balances")


def topup(tenant: str, price: str, success_url: str, cancel_url: str) -> Call:
    body = {"tenant": tenant, "price": price, "success_url": success_url, "cancel_url": cancel_url}
    return Call("POST", "/v1/topups", body)


def reserve(
    tenant: str, feature: str, quantity: int, idempotency_key: str | None, expires_in: int | None
) -> Call:
    # The key is fixed here, once, as for usage: a retry holds nothing twice.
    body: dict[str, Any] = {
        "tenant": tenant,
        "feature": feature,
        "quantity": quantity,
        "idempotency_key": idempotency_key or new_idempotency_key(),
    }
    if expires_in is not None:
        body["expires_in"] = expires_in
    return Call("POST", "/v1/reservations", body)


def finalize(reservation: str, quantity: int) -> Call:
    path = f"/v1/reservations/{_path_segment(reservation)}/finalize"
    return Call("POST", path, {"quantity": quantity})


def release(reservation: str) -> Call:
    return Call("POST", f"/v1/reservations/{_path_segment(reservation)}/release")


def as_event(event: UsageEvent | dict[str, Any]) -> UsageEvent:
    return event if isinstance(event, UsageEvent) else UsageEvent(**event)


def give_up(failure: httpx.Response | Exception, base_url: str) -> NoReturn:
    """Raise for the last failure once every attempt is spent."""
    if isinstance(failure, httpx.Response):
        decode(failure)  # a 5xx: raises its ServerError
        raise AssertionError("unreachable: only failed answers are given up on")
    raise BillplaneUnreachable(
        f"billplane at {base_url} could not be reached ({type(failure).__name__}: {failure})"
    ) from failure
