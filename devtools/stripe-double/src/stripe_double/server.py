"""`StripeDouble`: a fake Stripe with state, served by uvicorn on a free local port, and the
controls a test uses to move billing along and to decide when and how webhooks arrive.

    with running_double(webhook_url=url, webhook_secret="whsec_x") as double:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": double.base_url})
        ...
        double.complete_checkout(session.id)
"""

import copy
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from stripe_double import billing, checkout
from stripe_double.app import build_app
from stripe_double.billing import FailedStatus
from stripe_double.clock import Clock
from stripe_double.control import control_routes
from stripe_double.events import Delivery, Order, Postman, WebhookTarget, signed
from stripe_double.objects import StripeObject
from stripe_double.state import DEFAULT_API_VERSION, DoubleState

DEFAULT_WEBHOOK_SECRET = "whsec_stripe_double"  # noqa: S105 -- the fake's own default
STARTUP_TIMEOUT = 10.0


class StripeDouble:
    """State, lifecycle controls and webhook delivery of one fake Stripe account."""

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        enabled_events: Iterable[str] = ("*",),
        hold_deliveries: bool = False,
        now: int | None = None,
        api_version: str = DEFAULT_API_VERSION,
    ) -> None:
        # Kept so that reset() can return to exactly this configuration.
        self._options: dict[str, Any] = {
            "webhook_url": webhook_url,
            "webhook_secret": webhook_secret,
            "enabled_events": tuple(enabled_events),
            "hold_deliveries": hold_deliveries,
            "now": now,
        }
        self.clock = Clock(now)
        self.state = DoubleState(clock=self.clock, api_version=api_version)
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.enabled_events = tuple(enabled_events)
        self._postman = Postman(self._targets)
        self.state.on_event = self._on_event
        if hold_deliveries:
            self._postman.hold()
        self.app = build_app(self.state, control_routes(self))
        self._server: BackgroundServer | None = None

    # --- serving ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`: give it to the SDK as its API base."""
        if not self.state.base_url:
            raise RuntimeError("the double is not running: use running_double() or start()")
        return self.state.base_url

    def start(self) -> str:
        self._server = BackgroundServer(self.app, name="stripe-double")
        self.state.base_url = self._server.start()
        return self.state.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None
        self._postman.close()
        self.state.base_url = ""

    # --- configuration -----------------------------------------------------------------------

    def set_webhook(
        self,
        url: str | None,
        secret: str | None = None,
        enabled_events: Iterable[str] | None = None,
    ) -> None:
        """Point deliveries at `url` (e.g. once the app under test knows its own port)."""
        self.webhook_url = url
        if secret is not None:
            self.webhook_secret = secret
        if enabled_events is not None:
            self.enabled_events = tuple(enabled_events)

    @property
    def now(self) -> int:
        return self.clock.now

    @contextmanager
    def watching(self, watcher: Callable[[str, str], None]) -> Iterator[None]:
        """Calls `watcher(method, path)` as each API request arrives, while the block runs."""
        self.state.api_watchers.append(watcher)
        try:
            yield
        finally:
            self.state.api_watchers.remove(watcher)

    def advance(self, seconds: int = 0, *, days: int = 0) -> int:
        return self.clock.advance(seconds, days=days)

    def reset(self) -> None:
        """Back to a fresh double (objects, events, deliveries, webhook settings, delivery
        mode, clock) while it keeps serving: lets tests share one server."""
        self._postman.discard_pending()
        self._postman.release()
        self._postman.wait_idle()
        with self.state.lock:
            self.state.reset()
            self.clock.set(
                self._options["now"] if self._options["now"] is not None else int(time.time())
            )
        self._postman.deliveries.clear()
        self.set_webhook(
            self._options["webhook_url"],
            self._options["webhook_secret"],
            self._options["enabled_events"],
        )
        if self._options["hold_deliveries"]:
            self._postman.hold()

    # --- lifecycle controls ------------------------------------------------------------------

    def complete_checkout(self, session_id: str, *, email: str | None = None) -> StripeObject:
        """The customer pays: returns the completed session (its `subscription`, `customer`)."""
        return self._act(checkout.complete, session_id, email=email)

    def renew(self, subscription_id: str) -> StripeObject:
        """The period ends: items move one interval on, a new invoice is paid (or, with
        `cancel_at_period_end`, the subscription ends)."""
        return self._act(billing.renew, subscription_id)

    def fail_payment(
        self, subscription_id: str, *, status: FailedStatus = "past_due"
    ) -> StripeObject:
        """The next period's payment fails (or the open invoice's retry does)."""
        return self._act(billing.fail_payment, subscription_id, status)

    def recover(self, subscription_id: str) -> StripeObject:
        """The open invoice is paid at last; the subscription is active again."""
        return self._act(billing.recover, subscription_id)

    def cancel(self, subscription_id: str, *, at_period_end: bool = False) -> StripeObject:
        return self._act(billing.cancel, subscription_id, at_period_end=at_period_end)

    def delete_customer(self, customer_id: str) -> StripeObject:
        return self._act(billing.delete_customer, customer_id)

    def forget(self, object_id: str) -> None:
        """Stripe no longer has the object at all, as after "Delete all test data" in its
        Dashboard: retrieving it is a 404 (`resource_missing`). Its events stay."""
        with self.state.lock:
            self.state.forget(object_id)

    def _act(self, action: Any, *args: Any, **kwargs: Any) -> StripeObject:
        with self.state.lock:
            result: StripeObject = copy.deepcopy(action(self.state, *args, **kwargs))
        # Deliveries happen outside the lock: receivers may call the double back.
        self._postman.wait_idle()
        return result

    # --- reading state ---------------------------------------------------------------------

    def get(self, object_id: str) -> StripeObject:
        """A copy of any stored object, found by id alone."""
        with self.state.lock:
            found = self.state.find(object_id)
        if found is None:
            raise KeyError(object_id)
        return copy.deepcopy(found)

    def events(self, type: str | None = None) -> list[StripeObject]:
        """Every event so far (of `type`, if given), oldest first."""
        with self.state.lock:
            found = list(reversed(self.state.all("event")))
        return [copy.deepcopy(e) for e in found if type is None or e["type"] == type]

    # --- webhook delivery ------------------------------------------------------------------

    def hold_deliveries(self) -> None:
        """From now on, queue events instead of delivering them, until `deliver()`.
        Deliveries already under way finish first, so what is held is exactly what comes next."""
        self._postman.wait_idle()
        self._postman.hold()

    def resume_deliveries(self) -> None:
        """Deliver at once again (anything still held goes first, in order)."""
        self._postman.release()
        self._postman.wait_idle()

    def pending_events(self) -> list[StripeObject]:
        return copy.deepcopy(self._postman.pending())

    def deliver(
        self,
        *,
        order: Order = "as_is",
        duplicate: bool = False,
        seed: int | None = None,
        types: Iterable[str] | None = None,
    ) -> list[Delivery]:
        """Deliver held events now: `as_is`, `reversed` or `shuffled` (with `seed`), each twice
        if `duplicate`, only those of `types` if given. Returns one Delivery per POST."""
        wanted = None if types is None else set(types)
        return self._postman.deliver(order=order, duplicate=duplicate, seed=seed, types=wanted)

    def redeliver(self, event_id: str) -> list[Delivery]:
        """Send a past event again, as Stripe's retries (or the dashboard's "Resend") do."""
        return self._postman.send(self.get(event_id))

    @property
    def deliveries(self) -> list[Delivery]:
        """Every POST made so far, in order, with the receiver's status code."""
        return list(self._postman.deliveries)

    def wait_for_deliveries(self) -> None:
        self._postman.wait_idle()

    def signed(
        self, event: StripeObject | str, *, secret: str | None = None, timestamp: int | None = None
    ) -> tuple[bytes, str]:
        """`(payload, Stripe-Signature header)` for an event (or event id), without sending it."""
        found = self.get(event) if isinstance(event, str) else event
        return signed(found, secret or self.webhook_secret, timestamp)

    def _on_event(self, event: StripeObject) -> None:
        event["pending_webhooks"] = sum(1 for t in self._targets() if t.wants(event["type"]))
        self._postman.publish(event)

    def _targets(self) -> list[WebhookTarget]:
        targets = []
        if self.webhook_url:
            targets.append(
                WebhookTarget(self.webhook_url, self.webhook_secret, self.enabled_events)
            )
        with self.state.lock:
            for endpoint in self.state.all("webhook_endpoint"):
                if endpoint["status"] == "enabled":
                    secret = self.state.webhook_secrets[endpoint["id"]]
                    events = tuple(endpoint["enabled_events"])
                    targets.append(WebhookTarget(endpoint["url"], secret, events))
        return targets


class BackgroundServer:
    """An ASGI app served by uvicorn on 127.0.0.1, on a free port, in a daemon thread."""

    def __init__(self, app: Any, *, name: str = "asgi-server") -> None:
        self.app = app
        self.name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None

    def start(self) -> str:
        """Serve and return the base URL once the server accepts connections."""
        listener = self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", ws="none", http="h11"
        )
        server = self._server = uvicorn.Server(config)
        # Handing uvicorn the bound socket means no other process can take the port meanwhile.
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.005)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=STARTUP_TIMEOUT)
        if self._listener is not None:
            self._listener.close()
        self._server, self._thread, self._listener = None, None, None


@contextmanager
def running_double(**options: Any) -> Iterator[StripeDouble]:
    """A started `StripeDouble` (options as its constructor's), stopped on exit."""
    double = StripeDouble(**options)
    double.start()
    try:
        yield double
    finally:
        double.stop()
