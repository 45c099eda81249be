"""Signed webhook delivery of the double's events: at once, or held back for a test to release.

Signing is Stripe's scheme: `Stripe-Signature: t=<unix ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">`.
The signature timestamp is wall-clock time, not the double's clock, because receivers check it
against their own clock (a test that wants a stale signature passes `timestamp=`).
"""

import hashlib
import hmac
import json
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx

from stripe_double.objects import StripeObject

Order = Literal["as_is", "reversed", "shuffled"]
DELIVERY_TIMEOUT = 10.0


@dataclass(frozen=True)
class WebhookTarget:
    """Where events go: the configured webhook URL or an endpoint created through the API."""

    url: str
    secret: str
    enabled_events: tuple[str, ...] = ("*",)

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


@dataclass(frozen=True)
class Delivery:
    """One POST of one event to one target, and how the receiver answered."""

    event_id: str
    event_type: str
    url: str
    status_code: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def encode(event: StripeObject) -> bytes:
    # Stripe sends pretty-printed JSON; receivers must verify the exact bytes, never re-encode.
    return json.dumps(event, indent=2).encode()


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{stamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def signed(event: StripeObject, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and `Stripe-Signature` header Stripe would send for `event`."""
    payload = encode(event)
    return payload, signature_header(payload, secret, timestamp)


class Postman:
    """Delivers events to the targets that want them, now (in order, off-thread) or on request."""

    def __init__(self, targets: Callable[[], list[WebhookTarget]]) -> None:
        self._targets = targets
        self._client = httpx.Client(timeout=DELIVERY_TIMEOUT)
        self._lock = threading.Lock()
        self._held: list[StripeObject] | None = None
        self._queue: queue.Queue[StripeObject | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self.deliveries: list[Delivery] = []

    # --- modes ---------------------------------------------------------------------------

    @property
    def holding(self) -> bool:
        return self._held is not None

    def hold(self) -> None:
        """Queue new events instead of delivering them, until `deliver()` or `release()`."""
        with self._lock:
            if self._held is None:
                self._held = []

    def release(self) -> None:
        """Back to immediate delivery; whatever is still held goes out first, in order."""
        with self._lock:
            held, self._held = self._held, None
        for event in held or []:
            self.publish(event)

    def publish(self, event: StripeObject) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append(event)
                return
            self._ensure_worker()
        self._queue.put(event)

    def pending(self) -> list[StripeObject]:
        with self._lock:
            return list(self._held or [])

    def discard_pending(self) -> None:
        with self._lock:
            if self._held is not None:
                self._held.clear()

    # --- delivering ----------------------------------------------------------------------

    def deliver(
        self,
        *,
        order: Order = "as_is",
        duplicate: bool = False,
        seed: int | None = None,
        types: set[str] | None = None,
    ) -> list[Delivery]:
        """Send held events (of `types`, or all) now, in `order`, each twice if `duplicate`."""
        with self._lock:
            held = self._held if self._held is not None else []
            chosen = [event for event in held if types is None or event["type"] in types]
            chosen_ids = {event["id"] for event in chosen}
            held[:] = [event for event in held if event["id"] not in chosen_ids]
        batch = chosen + chosen if duplicate else chosen
        if order == "reversed":
            batch.reverse()
        elif order == "shuffled":
            random.Random(seed).shuffle(batch)  # noqa: S311 -- a test's repeatable order
        elif order != "as_is":
            raise ValueError(f"unknown order {order!r}")
        return [delivery for event in batch for delivery in self.send(event)]

    def send(self, event: StripeObject) -> list[Delivery]:
        """POST `event` to every target that wants it, now, in the calling thread."""
        done = [
            self._post(event, target) for target in self._targets() if target.wants(event["type"])
        ]
        with self._lock:
            self.deliveries.extend(done)
        return done

    def wait_idle(self) -> None:
        """Return once every event published so far for immediate delivery has been sent."""
        self._queue.join()

    def close(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=DELIVERY_TIMEOUT)
            self._worker = None
        self._client.close()

    def _post(self, event: StripeObject, target: WebhookTarget) -> Delivery:
        payload, header = signed(event, target.secret)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": header,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            response = self._client.post(target.url, content=payload, headers=headers)
        except Exception as exc:
            # A receiver that is down or a bad URL is a failed delivery to record, as Stripe
            # records it, never a crash of the double's delivery thread.
            return Delivery(event["id"], event["type"], target.url, None, repr(exc))
        return Delivery(event["id"], event["type"], target.url, response.status_code)

    def _ensure_worker(self) -> None:
        # One worker keeps immediate deliveries in the order events happened.
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._work, name="stripe-double-webhooks", daemon=True
            )
            self._worker.start()

    def _work(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None:
                    return
                self.send(event)
            finally:
                self._queue.task_done()
