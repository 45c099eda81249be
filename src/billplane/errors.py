"""Domain errors: each carries its HTTP status and a stable snake_case code.

Services raise these; one handler (see `billplane.http`) renders them into the documented envelope
`{"error": {"code": ..., "message": ...}}`.
"""

from typing import Any, TypeVar

T = TypeVar("T")


class BillplaneError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}

    def headers(self) -> dict[str, str] | None:
        """HTTP headers the answer carries besides the envelope."""
        return None


class InvalidInput(BillplaneError):
    status = 400
    code = "invalid_request"


class TimestampOutOfRange(BillplaneError):
    status = 422
    code = "timestamp_out_of_range"


class Unauthorized(BillplaneError):
    status = 401
    code = "unauthorized"


class Forbidden(BillplaneError):
    status = 403
    code = "forbidden"


class NotFound(BillplaneError):
    status = 404
    code = "not_found"


class TenantNotFound(NotFound):
    code = "tenant_not_found"


class FeatureNotFound(NotFound):
    code = "feature_not_found"


class UnknownFeature(NotFound):
    """A client API call named a feature its project does not have: a typo, most often."""

    code = "unknown_feature"


class PlanNotFound(NotFound):
    code = "plan_not_found"


class PoolNotFound(NotFound):
    code = "pool_not_found"


class ProjectNotFound(NotFound):
    code = "project_not_found"


class TokenNotFound(NotFound):
    code = "token_not_found"


class EventNotFound(NotFound):
    code = "event_not_found"


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"


class Conflict(BillplaneError):
    status = 409
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class EndpointDisabled(Conflict):
    code = "endpoint_disabled"


class PaymentRequired(BillplaneError):
    """The call asked for enforcement and the tenant may not use this much of the feature."""

    status = 402

    def __init__(self, code: str, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message, extra=extra)
        self.code = code


class TooManyAttempts(BillplaneError):
    """Too many wrong admin tokens from one client lately: it may try again after a while."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class StripeUnavailable(BillplaneError):
    status = 503
    code = "stripe_unavailable"


class SigningNotConfigured(BillplaneError):
    """Signed snapshots were asked for, or a signing key, without BILLPLANE_SECRET_KEY."""

    status = 503
    code = "signing_not_configured"


class SigningKeyUnreadable(BillplaneError):
    """The current signing key was sealed under another BILLPLANE_SECRET_KEY than this one."""

    status = 503
    code = "signing_key_unreadable"


class SecretKeyNotConfigured(BillplaneError):
    """A secret that must be kept sealed (an app webhook endpoint's) was to be made without
    BILLPLANE_SECRET_KEY."""

    status = 503
    code = "secret_key_not_configured"


class EndpointSecretUnreadable(BillplaneError):
    """An app webhook endpoint's secret was sealed under another BILLPLANE_SECRET_KEY."""

    status = 503
    code = "endpoint_secret_unreadable"


class NotReady(BillplaneError):
    """The server cannot serve yet: its database does not answer (`database_unreachable`) or is
    not at the migrations' head (`database_not_migrated`)."""

    status = 503

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def present(value: T | None, what: str) -> T:
    """`value`, which the caller's own reads guarantee is there (say, a row it just wrote or
    holds a lock on). None is a bug, not a caller's mistake: it fails the request as a 500."""
    if value is None:
        raise LookupError(f"{what} should exist here and does not")
    return value
