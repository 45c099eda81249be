"""The only module that imports the Stripe SDK: each call in, facts out, errors as our own.

`STRIPE_API_BASE` points the SDK elsewhere (the tests' Stripe double, localstripe). No message
from here ever carries the secret key: errors are told in our own words, and what the SDK said
is logged only through the redacting logger.
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import stripe
from billplane import metrics
from billplane.errors import InvalidInput, StripeUnavailable, present
from billplane.logs import billplane_logger, redact
from billplane.settings import Settings
from billplane.stripe import facts
from billplane.stripe.errors import (
    InvalidSignature,
    StripeKeyForbidden,
    StripeKeyRefused,
    StripeNotConfigured,
    StripeRateLimited,
    StripeRejected,
    StripeUnreachable,
)
from billplane.stripe.facts import (
    ChargeFacts,
    CheckoutSessionFacts,
    CustomerFacts,
    InvoiceFacts,
    PriceFacts,
    SubscriptionFacts,
    WebhookEndpointFacts,
)

log = billplane_logger()

NOT_CONFIGURED = "Stripe is not configured"
# Stripe's own default: a signature older than five minutes is a replay, not a delivery.
SIGNATURE_TOLERANCE_SECONDS = 300
# Connect fast or give up: a Stripe outage must not hold a client app's request for long.
TIMEOUT = (5.0, 30.0)


class StripeGateway:
    """One Stripe account, as billplane's secret key sees it."""

    def __init__(self, secret_key: str | None, api_base: str | None = None) -> None:
        self._key = secret_key or None
        self._api_base = api_base or None
        self._client: stripe.StripeClient | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> "StripeGateway":
        return cls(settings.stripe_secret_key, settings.stripe_api_base)

    @property
    def configured(self) -> bool:
        return self._key is not None

    @property
    def livemode(self) -> bool:
        """Whether the key is a live one (`sk_live_`/`rk_live_`), as Stripe tells them apart."""
        return self._key is not None and self._key[3:8] == "live_"

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"

    def __repr__(self) -> str:
        # Never the key, even in a debugger or a traceback's locals.
        return f"StripeGateway(configured={self.configured}, mode={self.mode})"

    # --- catalog and account ---------------------------------------------------------------

    def verify_key(self) -> None:
        """Raises StripeUnavailable unless Stripe accepts the key."""
        with self._speaking("customers.list", "checking the secret key"):
            self._sdk().v1.customers.list(params={"limit": 1})

    def find_price(self, price_id: str) -> PriceFacts | None:
        with self._speaking("prices.retrieve", f"looking up price {price_id}"), _missing_is_none():
            return facts.price_from(self._sdk().v1.prices.retrieve(price_id).to_dict())
        return None

    def webhook_endpoints(self) -> list[WebhookEndpointFacts]:
        with self._speaking("webhook_endpoints.list", "listing webhook endpoints"):
            page = self._sdk().v1.webhook_endpoints.list(params={"limit": 100})
            return [facts.webhook_endpoint_from(e.to_dict()) for e in page.auto_paging_iter()]

    # --- customers -------------------------------------------------------------------------

    def create_customer(
        self,
        *,
        metadata: dict[str, str],
        email: str | None,
        name: str | None,
        idempotency_key: str,
    ) -> CustomerFacts:
        params: dict[str, Any] = {"metadata": metadata}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        with self._speaking("customers.create", "creating a customer"):
            created = self._sdk().v1.customers.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
            return facts.customer_from(created.to_dict())

    def find_customer(self, customer_id: str) -> CustomerFacts | None:
        """The customer (`deleted` set once it is deleted), or None if Stripe has no such id."""
        with (
            self._speaking("customers.retrieve", f"looking up customer {customer_id}"),
            _missing_is_none(),
        ):
            return facts.customer_from(self._sdk().v1.customers.retrieve(customer_id).to_dict())
        return None

    def customers(self) -> Iterator[CustomerFacts]:
        with self._speaking("customers.list", "listing customers"):
            page = self._sdk().v1.customers.list(params={"limit": 100})
            for customer in page.auto_paging_iter():
                yield facts.customer_from(customer.to_dict())

    # --- subscriptions and invoices --------------------------------------------------------

    def find_subscription(self, subscription_id: str) -> SubscriptionFacts | None:
        with (
            self._speaking("subscriptions.retrieve", f"looking up subscription {subscription_id}"),
            _missing_is_none(),
        ):
            found = self._sdk().v1.subscriptions.retrieve(subscription_id)
            return facts.subscription_from(found.to_dict())
        return None

    def subscriptions_of(self, customer_id: str) -> list[SubscriptionFacts]:
        """Every subscription of a customer, ended ones included."""
        with self._speaking("subscriptions.list", f"listing the subscriptions of {customer_id}"):
            page = self._sdk().v1.subscriptions.list(
                params={"customer": customer_id, "status": "all", "limit": 100}
            )
            return [facts.subscription_from(s.to_dict()) for s in page.auto_paging_iter()]

    def find_invoice(self, invoice_id: str) -> InvoiceFacts | None:
        with (
            self._speaking("invoices.retrieve", f"looking up invoice {invoice_id}"),
            _missing_is_none(),
        ):
            return facts.invoice_from(self._sdk().v1.invoices.retrieve(invoice_id).to_dict())
        return None

    # --- checkout and portal ---------------------------------------------------------------

    def open_checkout(
        self,
        *,
        customer: str,
        price: str,
        success_url: str,
        cancel_url: str,
        client_reference_id: str,
        metadata: dict[str, str],
        trial_days: int,
    ) -> CheckoutSessionFacts:
        subscription_data: dict[str, Any] = {"metadata": metadata}
        if trial_days > 0:
            subscription_data["trial_period_days"] = trial_days
        return self._open_checkout(
            "opening a checkout session",
            "subscription",
            customer=customer,
            price=price,
            success_url=success_url,
            cancel_url=cancel_url,
            client_reference_id=client_reference_id,
            metadata=metadata,
            subscription_data=subscription_data,
        )

    def open_payment_checkout(
        self,
        *,
        customer: str,
        price: str,
        success_url: str,
        cancel_url: str,
        client_reference_id: str,
        metadata: dict[str, str],
    ) -> CheckoutSessionFacts:
        """A Checkout session in payment mode: one one-time price, paid once (a top-up)."""
        return self._open_checkout(
            "opening a top-up checkout session",
            "payment",
            customer=customer,
            price=price,
            success_url=success_url,
            cancel_url=cancel_url,
            client_reference_id=client_reference_id,
            metadata=metadata,
        )

    def _open_checkout(
        self, doing: str, mode: str, *, price: str, **params: Any
    ) -> CheckoutSessionFacts:
        """`checkout.sessions.create` of one unit of `price` in `mode`, with the other `params`
        (customer, return URLs, reference, metadata, and any of the mode's own); `doing` names
        it in a refusal."""
        params |= {"mode": mode, "line_items": [{"price": price, "quantity": 1}]}
        with self._speaking("checkout.sessions.create", doing):
            opened = self._sdk().v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
            return facts.checkout_session_from(opened.to_dict())

    def find_checkout_session(self, session_id: str) -> CheckoutSessionFacts | None:
        with (
            self._speaking(
                "checkout.sessions.retrieve", f"looking up checkout session {session_id}"
            ),
            _missing_is_none(),
        ):
            found = self._sdk().v1.checkout.sessions.retrieve(session_id)
            return facts.checkout_session_from(found.to_dict())
        return None

    def checkout_sessions_of_payment(self, payment_intent: str) -> list[CheckoutSessionFacts]:
        """The Checkout sessions a PaymentIntent paid (one, for a session billplane opened)."""
        with self._speaking(
            "checkout.sessions.list", f"looking up the checkout of payment {payment_intent}"
        ):
            page = self._sdk().v1.checkout.sessions.list(
                params={"payment_intent": payment_intent, "limit": 10}
            )
            return [facts.checkout_session_from(s.to_dict()) for s in page.data]

    def checkout_sessions_of(self, customer_id: str) -> list[CheckoutSessionFacts]:
        """Every Checkout session of a customer, newest first."""
        with self._speaking("checkout.sessions.list", f"listing the checkouts of {customer_id}"):
            page = self._sdk().v1.checkout.sessions.list(
                params={"customer": customer_id, "limit": 100}
            )
            return [facts.checkout_session_from(s.to_dict()) for s in page.auto_paging_iter()]

    # --- payments --------------------------------------------------------------------------

    def charge_of_payment(self, payment_intent: str) -> ChargeFacts | None:
        """The charge that paid a PaymentIntent (its latest), as Stripe has it now."""
        with self._speaking("charges.list", f"looking up the charge of {payment_intent}"):
            page = self._sdk().v1.charges.list(
                params={"payment_intent": payment_intent, "limit": 1}
            )
            return facts.charge_from(page.data[0].to_dict()) if page.data else None

    def find_charge(self, charge_id: str) -> ChargeFacts | None:
        with (
            self._speaking("charges.retrieve", f"looking up charge {charge_id}"),
            _missing_is_none(),
        ):
            return facts.charge_from(self._sdk().v1.charges.retrieve(charge_id).to_dict())
        return None

    def open_portal(self, *, customer: str, return_url: str) -> tuple[str, str]:
        """(id, url) of a customer portal session."""
        with self._speaking("billing_portal.sessions.create", "opening a customer portal session"):
            opened = self._sdk().v1.billing_portal.sessions.create(
                params={"customer": customer, "return_url": return_url}
            )
            return str(opened.id), str(opened.url)

    # --- webhooks --------------------------------------------------------------------------

    @staticmethod
    def verify_webhook(payload: bytes, header: str | None, secret: str) -> dict[str, Any]:
        """The event JSON, once `Stripe-Signature` proves Stripe sent it lately."""
        try:
            stripe.WebhookSignature.verify_header(
                payload, header, secret, SIGNATURE_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError:
            raise InvalidSignature(
                "The Stripe-Signature header does not match this body and "
                "STRIPE_WEBHOOK_SECRET, or its timestamp is too old."
            ) from None
        # The SDK refuses only old timestamps; one far ahead would let a captured delivery be
        # replayed until then (a signing secret leaked once keeps working for a year, say).
        if _signed_at(present(header, "a verified signature")) > time.time() + (
            SIGNATURE_TOLERANCE_SECONDS
        ):
            raise InvalidSignature(
                "The Stripe-Signature timestamp lies in the future: check the clocks of this "
                "server and of whatever sent it."
            )
        try:
            decoded: dict[str, Any] = json.loads(payload)
        except ValueError:
            raise InvalidInput("The webhook body is not JSON.") from None
        return decoded

    # --- plumbing --------------------------------------------------------------------------

    def _sdk(self) -> stripe.StripeClient:
        if self._key is None:
            raise StripeNotConfigured(f"{NOT_CONFIGURED}: set STRIPE_SECRET_KEY.")
        with self._lock:
            if self._client is None:
                self._client = stripe.StripeClient(
                    self._key,
                    base_addresses={"api": self._api_base} if self._api_base else None,
                    max_network_retries=1,
                    http_client=stripe.RequestsClient(timeout=TIMEOUT),
                )
            return self._client

    @contextmanager
    def _speaking(self, operation: str, action: str) -> Iterator[None]:
        """Stripe's errors told as billplane's: 503 when Stripe cannot serve us, 409 when it
        refuses what we asked. Each call is timed, and counted when it fails, in `/metrics`
        under `operation` (the API's resource and method: `action` names ids)."""
        start = time.perf_counter()
        failure: str | None = None
        asked = True
        try:
            yield
        except StripeNotConfigured:
            asked = False  # no key: Stripe was not called
            raise
        except stripe.StripeError as exc:
            failure = type(exc).__name__
            log.warning("stripe: %s failed: %s: %s", action, failure, redact(str(exc)))
            raise _translated(exc, action) from None
        finally:
            if asked:
                metrics.stripe_call(operation, time.perf_counter() - start, failure)


def _translated(exc: stripe.StripeError, action: str) -> Exception:
    if isinstance(exc, stripe.AuthenticationError):
        return StripeKeyRefused(
            f"Stripe refused billplane's secret key while {action}: check STRIPE_SECRET_KEY."
        )
    if isinstance(exc, stripe.PermissionError):
        return StripeKeyForbidden(f"billplane's Stripe key may not do this ({action}).")
    if isinstance(exc, stripe.APIConnectionError):
        return StripeUnreachable(f"Stripe could not be reached while {action}; try again later.")
    if isinstance(exc, stripe.RateLimitError):
        return StripeRateLimited(f"Stripe is rate-limiting billplane ({action}); try again later.")
    if isinstance(exc, stripe.InvalidRequestError | stripe.IdempotencyError):
        return StripeRejected(f"Stripe refused {action}: {redact(exc.user_message or str(exc))}")
    return StripeUnavailable(
        f"Stripe answered with an error while {action} (HTTP {exc.http_status or '?'})."
    )


def _signed_at(header: str) -> int:
    """The `t=` of a Stripe-Signature header the SDK has verified (so it has one)."""
    stamps = [
        value
        for key, _, value in (item.partition("=") for item in header.split(","))
        if key.strip() == "t"
    ]
    return int(stamps[0])


@contextmanager
def _missing_is_none() -> Iterator[None]:
    """Inside `_speaking`: a 404 for a retrieved object means "no such object", not trouble."""
    try:
        yield
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise
