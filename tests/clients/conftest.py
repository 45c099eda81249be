"""Fixtures for the client libraries' tests: a real billplane server per module, fresh projects
seeded through the admin API, transports that log what a client sent, and a flaky proxy that
puts 5xx answers between a client and the real server.

Each module that needs Stripe (checkout, portal) overrides `billplane_url` with a server wired
to the Stripe double; see `stripe_server`.
"""

import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

import stripe
from conftest import ADMIN_TOKEN, fresh_database
from servers import running_server
from stripe_double import BackgroundServer, StripeDouble, running_double

STRIPE_KEY = "sk_test_billplane_clients"
STRIPE_WEBHOOK_SECRET = "whsec_billplane_clients"
APP_ORIGIN = "https://app.realtyos.test"

# What every seeded project holds, as in the README's first project.
FEATURES = [
    {"key": "exports", "name": "Exports", "type": "boolean"},
    {"key": "listings.publish", "name": "Published listings", "type": "limit", "unit": "listing"},
    {"key": "ai.tokens", "name": "AI tokens", "type": "metered", "unit": "token"},
]
FREE_LIMIT = 3
PRO_LIMIT = 100

Project = dict[str, str]
Seed = Callable[..., Project]


@pytest.fixture(scope="session", autouse=True)
def _outboxes_in_a_temporary_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A client's default outbox lives in the user's cache ($XDG_CACHE_HOME): here, a temporary
    one, so the tests write nothing outside their own directories."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def billplane_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real billplane server (SQLite) for the whole test module."""
    with (
        fresh_database("sqlite", tmp_path_factory.mktemp("clients")) as url,
        running_server(url, ADMIN_TOKEN) as base_url,
    ):
        yield base_url


@dataclass
class StripeBillplane:
    """A billplane server whose Stripe is the double."""

    url: str
    double: StripeDouble

    def new_price(self, amount: int = 2900, *, monthly: bool = True) -> str:
        """A monthly price in the double (or a one-time one, for a pack of credits), created
        as an operator would in Stripe."""
        client = stripe.StripeClient(
            STRIPE_KEY, base_addresses={"api": self.double.base_url}, max_network_retries=0
        )
        product = client.v1.products.create(params={"name": "Pro" if monthly else "Credits"})
        params: dict[str, Any] = {"product": product.id, "unit_amount": amount, "currency": "usd"}
        if monthly:
            params["recurring"] = {"interval": "month"}
        return client.v1.prices.create(params=params).id  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stripe_billplane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripeBillplane]:
    """One billplane server for the module, with the Stripe double as its Stripe."""
    with running_double(webhook_secret=STRIPE_WEBHOOK_SECRET) as double:
        env = {
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_API_BASE": double.base_url,
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        }
        with (
            fresh_database("sqlite", tmp_path_factory.mktemp("stripe")) as url,
            running_server(url, ADMIN_TOKEN, extra_env=env) as base_url,
        ):
            yield StripeBillplane(base_url, double)


def seed_project(
    base_url: str,
    *,
    origins: list[str] | None = None,
    pro_price: str | None = None,
    tenants: tuple[str, ...] = ("acme", "globex"),
) -> Project:
    """A fresh project: the three features, a free default plan (3 listings a month), a pro plan
    (exports, 100 listings), the tenants (`acme`, `globex`), and a token scoped to `acme`."""
    key = f"p{secrets.token_hex(4)}"
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
    ) as admin:

        def post(path: str, body: dict[str, Any]) -> Any:
            response = admin.post(path, json=body)
            assert response.status_code == 201, response.text
            return response.json()

        project = post(
            "/admin/api/projects", {"key": key, "name": key, "origins": origins or [APP_ORIGIN]}
        )
        for feature in FEATURES:
            post(f"/admin/api/projects/{key}/features", feature)
        for plan in _plans(pro_price):
            post(f"/admin/api/projects/{key}/plans", plan)
        for tenant in tenants:
            post(f"/admin/api/projects/{key}/tenants", {"key": tenant, "email": f"{tenant}@x.test"})
        scoped = post(f"/admin/api/projects/{key}/tokens", {"name": "acme", "tenant": "acme"})
    return {"key": key, "token": project["token"], "tenant_token": scoped["token"]}


def _plans(pro_price: str | None) -> list[dict[str, Any]]:
    return [
        {
            "key": "free",
            "name": "Free",
            "is_default": True,
            "features": {
                "listings.publish": {"limit": FREE_LIMIT, "reset": "month"},
                "ai.tokens": True,
            },
        },
        {
            "key": "pro",
            "name": "Pro",
            "stripe_price_id": pro_price or f"price_{secrets.token_hex(4)}",
            "features": {
                "exports": True,
                "listings.publish": {"limit": PRO_LIMIT, "reset": "month"},
                "ai.tokens": True,
            },
        },
    ]


def grant_override(base_url: str, project: str, tenant: str, overrides: dict[str, Any]) -> None:
    response = httpx.patch(
        f"{base_url}/admin/api/projects/{project}/tenants/{tenant}",
        json={"overrides": overrides},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="session")
def seed() -> Seed:
    """`seed(base_url, origins=..., pro_price=...)`: a fresh project (see `seed_project`)."""
    return seed_project


@pytest.fixture(scope="session")
def override() -> Callable[[str, str, str, dict[str, Any]], None]:
    """`override(base_url, project, tenant, {"exports": True})`: a tenant's own grants."""
    return grant_override


@pytest.fixture
def project(billplane_url: str) -> Project:
    """A fresh project on this module's server, so tests never share usage."""
    return seed_project(billplane_url)


@pytest.fixture
def sent() -> list[httpx.Request]:
    """Every request a `recorder`/`async_recorder` transport passed on, in order."""
    return []


@pytest.fixture
def recorder(sent: list[httpx.Request]) -> Iterator[httpx.BaseTransport]:
    """A real HTTP transport that logs each attempt (even those that fail) into `sent`."""
    transport = _Recording(sent)
    yield transport
    transport.close()


@pytest.fixture
def async_recorder(sent: list[httpx.Request]) -> httpx.AsyncBaseTransport:
    return _AsyncRecording(sent)


class _Recording(httpx.HTTPTransport):
    def __init__(self, sent: list[httpx.Request]) -> None:
        super().__init__()
        self.sent = sent

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return super().handle_request(request)


class _AsyncRecording(httpx.AsyncHTTPTransport):
    def __init__(self, sent: list[httpx.Request]) -> None:
        super().__init__()
        self.sent = sent

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return await super().handle_async_request(request)


@dataclass
class FlakyProxy:
    """An ASGI proxy in front of a real billplane. The first `failures` requests get a 502 —
    after being passed on to billplane when `forward_failures` (the answer was lost on its way
    back), or without reaching it. Every request body it saw is kept in `bodies`."""

    upstream: str
    failures: int
    forward_failures: bool
    bodies: list[bytes] = field(default_factory=list)
    url: str = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        self.bodies.append(body)
        failing = len(self.bodies) <= self.failures
        answer: Response = Response("<html>502 Bad Gateway</html>", 502, media_type="text/html")
        if not failing or self.forward_failures:
            forwarded = await self._forward(request, body)
            if not failing:
                answer = forwarded
        await answer(scope, receive, send)

    async def _forward(self, request: Request, body: bytes) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with httpx.AsyncClient(base_url=self.upstream, timeout=60) as upstream:
            reply = await upstream.request(
                request.method, request.url.path, content=body, headers=headers
            )
        return Response(reply.content, reply.status_code, media_type="application/json")


ProxyFactory = Callable[..., AbstractContextManager[FlakyProxy]]


@pytest.fixture
def flaky_proxy(billplane_url: str) -> ProxyFactory:
    """`with flaky_proxy(failures=1, forward_failures=True) as proxy:` serves on `proxy.url`."""

    @contextmanager
    def serve(*, failures: int, forward_failures: bool) -> Iterator[FlakyProxy]:
        proxy = FlakyProxy(billplane_url, failures, forward_failures)
        server = BackgroundServer(proxy, name="flaky-proxy")
        proxy.url = server.start()
        try:
            yield proxy
        finally:
            server.stop()

    return serve


class FakeClock:
    """A monotonic clock the test moves by hand: cache expiry without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
