"""A webhook receiver for tests: accepts only what the official SDK verifies, and records it.

Kept apart from the double itself, which never needs the SDK; this module does, on purpose, so
that "the signature verifies" means what it means for a real Stripe integration.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import stripe
from stripe_double.server import BackgroundServer


class WebhookRecorder:
    """A Starlette app at `/webhook` that verifies `Stripe-Signature` with `secret`."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.url = ""
        self.events: list[stripe.Event] = []
        self.rejected = 0
        # What to answer to accepted events: set to 500 to play a failing endpoint.
        self.answer = 200
        self.app = Starlette(routes=[Route("/webhook", self._receive, methods=["POST"])])

    def reset(self) -> None:
        self.events.clear()
        self.rejected = 0
        self.answer = 200

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    def ids(self) -> list[str]:
        return [event.id for event in self.events]

    async def _receive(self, request: Request) -> Response:
        payload = await request.body()
        header = request.headers.get("stripe-signature", "")
        try:
            event = stripe.Webhook.construct_event(payload, header, self.secret)
        except (stripe.SignatureVerificationError, ValueError):
            self.rejected += 1
            return Response(status_code=400)
        self.events.append(event)
        return Response(status_code=self.answer)


@contextmanager
def running_recorder(secret: str) -> Iterator[WebhookRecorder]:
    """A recorder served on a free local port; its `url` is set while the block runs."""
    recorder = WebhookRecorder(secret)
    server = BackgroundServer(recorder.app, name="webhook-recorder")
    recorder.url = server.start() + "/webhook"
    try:
        yield recorder
    finally:
        server.stop()
