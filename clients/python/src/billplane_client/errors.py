"""Exceptions for billplane's error envelope `{"error": {"code", "message"}}`, one class per status.

Every exception carries the API's `code` (e.g. `limit_reached`), the HTTP `status` (None when no
answer arrived) and the `message`, so callers can branch on the code rather than parse text.
"""

from typing import Any

UNREACHABLE = "billplane_unreachable"


class BillplaneError(Exception):
    """An error answer from billplane, or no answer at all (`BillplaneUnreachable`)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        # Whatever else the envelope carried, e.g. `param` for a validation error.
        self.details = details or {}


class InvalidRequest(BillplaneError):
    """400 or 422: the request was malformed or failed validation."""


class Unauthorized(BillplaneError):
    """401: the token is missing, unknown or revoked."""


class PaymentRequired(BillplaneError):
    """402: usage with `enforce=True` would pass the tenant's limit (code `limit_reached`, ...),
    or credits do not cover it (`insufficient_credits`, with `pool`, `cost` and `balance` in
    `details`)."""


class Forbidden(BillplaneError):
    """403: a tenant-scoped token was used for another tenant."""


class NotFound(BillplaneError):
    """404: unknown tenant, plan, feature or checkout session."""


class Conflict(BillplaneError):
    """409: e.g. an idempotency key reused for another event, or a tenant already subscribed."""


class ServerError(BillplaneError):
    """5xx: billplane (or a proxy in front of it) failed; retried before it is raised."""


class ServiceUnavailable(ServerError):
    """503: e.g. Stripe not configured or unreachable from billplane."""


class BillplaneUnreachable(BillplaneError):
    """No answer: connection refused, DNS failure or timeout, on every attempt."""

    def __init__(self, message: str) -> None:
        super().__init__(UNREACHABLE, message)


_BY_STATUS: dict[int, type[BillplaneError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    402: PaymentRequired,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
    503: ServiceUnavailable,
}


def error_class(status: int) -> type[BillplaneError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else BillplaneError


def error_from_envelope(status: int, body: Any, fallback_text: str = "") -> BillplaneError:
    """The exception for an error answer; tolerates bodies that are not billplane's envelope
    (an HTML 502 page from a proxy, say)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        details = {k: v for k, v in error.items() if k not in ("code", "message")}
        message = str(error.get("message") or error["code"])
        return error_class(status)(error["code"], message, status=status, details=details)
    message = fallback_text.strip()[:200] or f"HTTP {status} without an error body."
    return error_class(status)(f"http_{status}", message, status=status)


def is_outage(error: BillplaneError) -> bool:
    """Whether the error means billplane could not answer (so an outage policy applies)."""
    return isinstance(error, BillplaneUnreachable | ServerError)
