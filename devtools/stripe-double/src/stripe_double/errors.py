"""Stripe-shaped API errors, so the SDK raises the exceptions it raises against Stripe."""

from typing import Any


class StripeError(Exception):
    """An error the double answers as `{"error": {...}}` with an HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def resource_missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(
        f"No such {kind}: '{object_id}'", status=404, code="resource_missing", param=param
    )


def parameter_missing(param: str) -> StripeError:
    return StripeError(f"Missing required param: {param}.", code="parameter_missing", param=param)


def parameter_invalid(param: str, message: str) -> StripeError:
    return StripeError(message, code="parameter_invalid", param=param)


def authentication_failed(message: str) -> StripeError:
    return StripeError(message, status=401, type="authentication_error")


def unknown_route(method: str, path: str) -> StripeError:
    return StripeError(f"Unrecognized request URL ({method}: {path}).", status=404)
