"""Gating helpers against a real billplane: a FastAPI dependency, a Starlette decorator and a Flask
decorator refuse an API call with 402 `payment_required` and send a page request to the upgrade
URL; `records_usage` counts only actions that did not raise.
"""

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any

import flask
import pytest
from billplane_client import AsyncBillplane, Billplane, Check, Gate, OutagePolicy, records_usage
from billplane_client import fastapi as bp_fastapi
from billplane_client import flask as bp_flask
from billplane_client import starlette as bp_starlette
from billplane_client.gating import wants_html
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from servers import free_port

pytestmark = pytest.mark.e2e

Project = dict[str, str]
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
UPGRADE = "/upgrade?feature={feature}&next={next}"


def header_tenant(request: Any) -> str | None:
    tenant: str | None = request.headers.get("X-Tenant")
    return tenant


def used(billplane_url: str, project: Project, feature: str = "listings.publish") -> int | None:
    with Billplane(billplane_url, project["token"], cache_ttl=0) as bp:
        return bp.entitlements("acme").features[feature].used


# --- FastAPI ------------------------------------------------------------------------------------


def fastapi_app(bp: Billplane) -> FastAPI:
    """A small app: an export gated on `exports`, publishing gated on `listings.publish` and
    counted after it succeeds (a listing id of 0 fails, to show nothing is counted then)."""
    app = FastAPI()
    bp_fastapi.install(app, Gate(bp, tenant=header_tenant, upgrade_url=UPGRADE))

    @app.get("/export")
    def export(check: Annotated[Check, Depends(bp_fastapi.requires_feature("exports"))]) -> Any:
        return {"exported": True, "plan": check.plan}

    @app.post(
        "/listings/{listing}/publish",
        dependencies=[Depends(bp_fastapi.requires_feature("listings.publish"))],
    )
    def publish(listing: int, x_tenant: Annotated[str, Header()]) -> Any:
        with records_usage(bp, x_tenant, "listings.publish", idempotency_key=f"listing-{listing}"):
            if listing == 0:
                raise HTTPException(409, "listing 0 cannot be published")
        return {"published": listing}

    return app


@pytest.fixture
def fastapi_client(billplane_url: str, project: Project) -> Iterator[TestClient]:
    with (
        Billplane(billplane_url, project["token"], timeout=30) as bp,
        TestClient(fastapi_app(bp)) as client,
    ):
        yield client


def test_fastapi_api_call_without_the_feature_gets_402_payment_required(
    fastapi_client: TestClient,
) -> None:
    response = fastapi_client.get(
        "/export", headers={"X-Tenant": "acme", "Accept": "application/json"}
    )

    assert response.status_code == 402
    error = response.json()["error"]
    assert (error["code"], error["reason"], error["feature"]) == (
        "payment_required",
        "not_in_plan",
        "exports",
    )
    assert error["upgrade_url"] == "/upgrade?feature=exports&next=%2Fexport"
    assert error["message"]


def test_fastapi_page_request_is_sent_to_the_upgrade_url(fastapi_client: TestClient) -> None:
    response = fastapi_client.get(
        "/export?format=csv",
        headers={"X-Tenant": "acme", "Accept": BROWSER},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/upgrade?feature=exports&next=%2Fexport%3Fformat%3Dcsv"


def test_fastapi_allowed_request_runs_and_receives_the_check(
    billplane_url: str, project: Project, override: Any, fastapi_client: TestClient
) -> None:
    override(billplane_url, project["key"], "acme", {"exports": True})

    response = fastapi_client.get("/export", headers={"X-Tenant": "acme"})

    assert response.status_code == 200
    assert response.json() == {"exported": True, "plan": "free"}


def test_fastapi_request_without_a_tenant_is_unauthorized(fastapi_client: TestClient) -> None:
    response = fastapi_client.get("/export")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_fastapi_gate_and_records_usage_stop_at_the_limit(
    billplane_url: str, project: Project, fastapi_client: TestClient
) -> None:
    headers = {"X-Tenant": "acme"}
    published = [fastapi_client.post(f"/listings/{n}/publish", headers=headers) for n in (1, 2)]
    republished = fastapi_client.post("/listings/2/publish", headers=headers)
    failed = fastapi_client.post("/listings/0/publish", headers=headers)
    third = fastapi_client.post("/listings/3/publish", headers=headers)
    refused = fastapi_client.post("/listings/4/publish", headers=headers)

    assert [r.status_code for r in published] == [200, 200]
    assert republished.status_code == 200  # same listing, same key: counted once
    assert failed.status_code == 409  # the action raised: nothing counted
    assert third.status_code == 200
    assert refused.status_code == 402
    assert refused.json()["error"] | {"message": "-"} == {
        "code": "payment_required",
        "message": "-",
        "feature": "listings.publish",
        "reason": "limit_reached",
        "upgrade_url": "/upgrade?feature=listings.publish&next=%2Flistings%2F4%2Fpublish",
        "limit": 3,
        "used": 3,
        "remaining": 0,
    }
    assert used(billplane_url, project) == 3


# --- Starlette, with the async client -----------------------------------------------------------


def starlette_app(bp: AsyncBillplane) -> Starlette:
    @bp_starlette.requires_feature("exports")
    async def export(request: Request) -> Response:
        return JSONResponse({"reason": request.state.billplane_check.reason})

    @bp_starlette.requires_feature("listings.publish")
    async def publish(request: Request) -> Response:
        listing = request.path_params["listing"]
        async with records_usage(bp, "acme", "listings.publish", idempotency_key=f"l-{listing}"):
            pass
        return JSONResponse({"published": listing})

    app = Starlette(
        routes=[
            Route("/export", export),
            Route("/listings/{listing}/publish", publish, methods=["POST"]),
        ]
    )
    bp_starlette.install(app, Gate(bp, tenant=header_tenant, upgrade_url="/pricing#{feature}"))
    return app


def test_starlette_decorator_gates_with_the_async_client(
    billplane_url: str, project: Project, override: Any
) -> None:
    bp = AsyncBillplane(billplane_url, project["token"], timeout=30)
    with TestClient(starlette_app(bp)) as client:
        api = client.get("/export", headers={"X-Tenant": "acme", "Accept": "application/json"})
        page = client.get(
            "/export", headers={"X-Tenant": "acme", "Accept": BROWSER}, follow_redirects=False
        )
        published = client.post("/listings/7/publish", headers={"X-Tenant": "acme"})
        override(billplane_url, project["key"], "acme", {"exports": True})
        bp.cache.clear()
        allowed = client.get("/export", headers={"X-Tenant": "acme"})
        assert client.portal is not None  # the TestClient's event loop, inside its `with`
        client.portal.call(bp.aclose)

    assert (api.status_code, api.json()["error"]["code"]) == (402, "payment_required")
    assert (page.status_code, page.headers["location"]) == (303, "/pricing#exports")
    assert published.status_code == 200
    assert (allowed.status_code, allowed.json()) == (200, {"reason": "ok"})
    assert used(billplane_url, project) == 1


# --- Flask --------------------------------------------------------------------------------------


def flask_app(bp: Billplane) -> flask.Flask:
    app = flask.Flask(__name__)
    bp_flask.init_app(app, Gate(bp, tenant=lambda request: request.headers.get("X-Tenant")))

    @app.get("/export")
    @bp_flask.requires_feature("exports")
    def export() -> Any:
        return {"reason": flask.g.billplane_check.reason}

    @app.post("/listings/<int:listing>/publish")
    @bp_flask.requires_feature("listings.publish")
    @records_usage(
        bp,
        tenant=lambda listing: "acme",
        feature="listings.publish",
        idempotency_key=lambda listing: f"listing-{listing}",
    )
    def publish(listing: int) -> Any:
        if listing == 0:
            raise ValueError("listing 0 cannot be published")
        return {"published": listing}

    return app


def test_flask_decorator_answers_json_with_402_and_pages_with_a_redirect(
    billplane_url: str, project: Project
) -> None:
    with Billplane(billplane_url, project["token"], timeout=30) as bp:
        client = flask_app(bp).test_client()
        api = client.get("/export", headers={"X-Tenant": "acme", "Accept": "application/json"})
        page = client.get("/export", headers={"X-Tenant": "globex", "Accept": BROWSER})
        anonymous = client.get("/export")

    assert api.status_code == 402
    assert api.get_json()["error"]["code"] == "payment_required"
    assert api.get_json()["error"]["upgrade_url"] == "/upgrade?feature=exports&next=%2Fexport"
    assert page.status_code == 303
    assert page.headers["Location"] == "/upgrade?feature=exports&next=%2Fexport"
    assert anonymous.status_code == 401


def test_flask_records_usage_decorator_counts_only_actions_that_succeed(
    billplane_url: str, project: Project
) -> None:
    with Billplane(billplane_url, project["token"], timeout=30) as bp:
        client = flask_app(bp).test_client()
        ok = client.post("/listings/5/publish", headers={"X-Tenant": "acme"})
        failed = client.post("/listings/0/publish", headers={"X-Tenant": "acme"})
        again = client.post("/listings/5/publish", headers={"X-Tenant": "acme"})

    assert (ok.status_code, failed.status_code, again.status_code) == (200, 500, 200)
    assert used(billplane_url, project) == 1


# --- billplane unreachable ----------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "status"), [("open", 200), ("closed", 503)])
def test_gate_follows_the_outage_policy_when_billplane_is_away(policy: str, status: int) -> None:
    away = f"http://127.0.0.1:{free_port()}"
    outage = OutagePolicy(default=policy)  # type: ignore[arg-type]
    with (
        Billplane(away, "bp_x", retries=0, outage=outage) as bp,
        TestClient(fastapi_app(bp)) as client,
    ):
        response = client.get("/export", headers={"X-Tenant": "acme", "Accept": BROWSER})

    assert response.status_code == status
    if status == 503:
        assert response.json()["error"]["code"] == "billplane_unreachable"


# --- records_usage with the async client, as a decorator ----------------------------------------


def test_records_usage_decorates_coroutines(billplane_url: str, project: Project) -> None:
    async def scenario() -> list[Any]:
        async with AsyncBillplane(billplane_url, project["token"], timeout=30) as bp:

            @records_usage(
                bp,
                tenant=lambda n, tokens: "acme",
                feature="ai.tokens",
                quantity=lambda n, tokens: tokens,
            )
            async def generate(n: int, tokens: int) -> int:
                if n < 0:
                    raise RuntimeError("no")
                return n

            results: list[Any] = [await generate(1, 40), await generate(2, 2)]
            with pytest.raises(RuntimeError):
                await generate(-1, 1000)
            results.append((await bp.entitlements("acme")).features["ai.tokens"].used)
            return results

    assert asyncio.run(scenario()) == [1, 2, 42]


# --- content negotiation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        (BROWSER, True),
        ("text/html", True),
        ("application/json, text/html", False),
        ("application/json;q=0.5, text/html", True),
        ("text/html;q=0.1, application/json", False),
    ],
)
def test_wants_html_tells_a_page_request_from_an_api_call(accept: str | None, html: bool) -> None:
    assert wants_html(accept) is html
