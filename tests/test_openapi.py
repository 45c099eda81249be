"""The API describes itself: Swagger UI at `/docs`, every client and admin route in
`/openapi.json`, and an example for every request body, one a client could send as it is."""

import json
import re
from collections.abc import Iterator
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from billplane.app import create_app
from billplane.db import Database
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, Setup
from documented import undocumented

API_PREFIXES = ("/v1/", "/admin/api/")
# A well-formed value for each path parameter (records of the `realtyos` fixture where it has them).
PATH_VALUES = {
    "project": "realtyos",
    "plan": "pro",
    "feature": "listings.publish",
    "tenant": "acme",
    "token_id": "tok_0000000000000000",
    "session_id": "cs_test_0000",
    "event_id": "evt_0000",
    "endpoint": "ep_0000",
    "delivery": "dlv_0000",
    "pool": "credits",
    "reservation": "rsv_000000000000000000000000",
}
NOT_OPERATIONS = {"HEAD", "OPTIONS"}

# The calls the README and /docs promise; the route walk below catches any newer one.
DOCUMENTED = {
    ("POST", "/v1/check"),
    ("POST", "/v1/usage"),
    ("POST", "/v1/usage/batch"),
    ("GET", "/v1/tenants/{tenant}/entitlements"),
    ("GET", "/v1/tenants/{tenant}/balances"),
    ("POST", "/admin/api/projects"),
    ("GET", "/admin/api/projects"),
    ("GET", "/admin/api/projects/{project}/features"),
    ("POST", "/admin/api/projects/{project}/features"),
    ("GET", "/admin/api/projects/{project}/plans"),
    ("POST", "/admin/api/projects/{project}/plans"),
    ("PATCH", "/admin/api/projects/{project}/plans/{plan}"),
    ("GET", "/admin/api/projects/{project}/tenants"),
    ("POST", "/admin/api/projects/{project}/tenants"),
    ("GET", "/admin/api/projects/{project}/tenants/{tenant}"),
    ("PATCH", "/admin/api/projects/{project}/tenants/{tenant}"),
    ("GET", "/admin/api/projects/{project}/tokens"),
    ("POST", "/admin/api/projects/{project}/tokens"),
    ("POST", "/admin/api/tokens/{token_id}/rotate"),
    ("DELETE", "/admin/api/tokens/{token_id}"),
    ("POST", "/admin/api/projects/{project}/credit-pools"),
    ("GET", "/admin/api/projects/{project}/credit-pools"),
    ("PATCH", "/admin/api/projects/{project}/credit-pools/{pool}"),
    ("PUT", "/admin/api/projects/{project}/credit-pools/{pool}/allowances/{plan}"),
    ("POST", "/admin/api/projects/{project}/tenants/{tenant}/credit-grants"),
    ("POST", "/v1/reservations"),
    ("POST", "/v1/topups"),
    ("POST", "/v1/reservations/{reservation}/finalize"),
    ("POST", "/v1/reservations/{reservation}/release"),
    ("GET", "/admin/api/signing-keys"),
    ("POST", "/admin/api/signing-keys/rotate"),
    ("POST", "/admin/api/projects/{project}/webhook-endpoints"),
    ("GET", "/admin/api/projects/{project}/webhook-endpoints"),
    ("PATCH", "/admin/api/projects/{project}/webhook-endpoints/{endpoint}"),
    ("POST", "/admin/api/projects/{project}/webhook-endpoints/{endpoint}/rotate-secret"),
    ("GET", "/admin/api/projects/{project}/webhook-endpoints/{endpoint}/deliveries"),
    (
        "POST",
        "/admin/api/projects/{project}/webhook-endpoints/{endpoint}/deliveries/{delivery}/replay",
    ),
}


@pytest.fixture(scope="module")
def app() -> Iterator[FastAPI]:
    # Docs and schema never touch the data, so these tests need no database.
    settings = Settings(database_url="sqlite://", billplane_admin_token=ADMIN_TOKEN)
    database = Database(settings.sqlalchemy_url)
    yield create_app(settings, db=database)
    database.dispose()


@pytest.fixture(scope="module")
def docs_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def schema(docs_client: TestClient) -> dict[str, Any]:
    response = docs_client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def operations(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, ops in schema["paths"].items()
        if path.startswith(API_PREFIXES)
        for method in ops
    }


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every client and admin route the app serves, however it was included."""
    # Newer FastAPI keeps included routers as one entry each; this flattens them.
    flatten = getattr(fastapi.routing, "iter_route_contexts", lambda routes: routes)
    return {
        (method, route.path)
        for route in flatten(app.routes)
        if (route.path or "").startswith(API_PREFIXES)
        for method in (route.methods or set()) - NOT_OPERATIONS
    }


def test_docs_serve_swagger_ui_pointing_at_the_schema(docs_client: TestClient) -> None:
    response = docs_client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "swagger-ui" in page
    assert "SwaggerUIBundle" in page
    assert "/openapi.json" in page


def test_schema_is_openapi_3_with_title_and_version(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "billplane"
    assert schema["info"]["version"]


def test_schema_lists_every_client_and_admin_route_the_app_serves(
    app: FastAPI, schema: dict[str, Any]
) -> None:
    served = served_routes(app)
    assert served >= DOCUMENTED, f"not served: {sorted(DOCUMENTED - served)}"
    listed = operations(schema)
    assert served - listed == set(), "served but missing from /openapi.json"
    assert listed - served == set(), "in /openapi.json but not served"


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        node = schema["components"]["schemas"][name]
    return node


def request_examples(schema: dict[str, Any]) -> dict[tuple[str, str], list[Any] | None]:
    """Every operation that takes a body, with the examples it documents (None: none at all)."""
    found: dict[tuple[str, str], list[Any] | None] = {}
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            for media in op.get("requestBody", {}).get("content", {}).values():
                body_schema = _resolve(schema, media.get("schema", {}))
                examples = [e["value"] for e in media.get("examples", {}).values()]
                examples += [media["example"]] if "example" in media else []
                examples += body_schema.get("examples", [])
                examples += [body_schema["example"]] if "example" in body_schema else []
                found[(method.upper(), path)] = examples or None
    return found


def test_every_request_body_carries_an_example(schema: dict[str, Any]) -> None:
    examples = request_examples(schema)
    assert {("POST", "/v1/check"), ("POST", "/v1/usage")} <= set(examples)
    missing = sorted(op for op, found in examples.items() if not found)
    assert missing == [], f"request bodies without an example: {missing}"


def _operations_with_examples() -> list[Any]:
    settings = Settings(database_url="sqlite://", billplane_admin_token=ADMIN_TOKEN)
    database = Database(settings.sqlalchemy_url)
    try:
        found = request_examples(create_app(settings, db=database).openapi())
    finally:
        database.dispose()
    return [
        pytest.param(method, path, example, id=f"{method} {path} #{i}")
        for (method, path), examples in sorted(found.items())
        for i, example in enumerate(examples or [])
    ]


@pytest.mark.parametrize(("method", "path", "example"), _operations_with_examples())
def test_every_request_example_passes_validation(
    realtyos: Setup, method: str, path: str, example: Any
) -> None:
    """Pasted into a real call, an example is never refused as malformed (it may name a tenant or
    plan this database lacks, or one that already exists: those are other answers)."""
    url = path.format(**PATH_VALUES)
    headers = realtyos.api.headers if path.startswith("/v1/") else realtyos.admin.headers
    response = realtyos.admin.client.request(
        method,
        url,
        content=json.dumps(example),
        headers=headers | {"content-type": "application/json"},
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        code = response.json()["error"]["code"]
        assert code not in ("validation_error", "invalid_json"), response.text


def test_entitlements_are_documented_as_json_or_a_signed_snapshot(schema: dict[str, Any]) -> None:
    answer = schema["paths"]["/v1/tenants/{tenant}/entitlements"]["get"]["responses"]["200"]
    assert set(answer["content"]) == {"application/json", "application/jwt"}
    assert answer["content"]["application/jwt"]["schema"]["type"] == "string"
    assert (
        "`signing_not_configured`"
        in schema["paths"]["/v1/tenants/{tenant}/entitlements"]["get"]["responses"]["503"][
            "description"
        ]
    )
    jwks = schema["paths"]["/.well-known/jwks.json"]["get"]
    assert "security" not in jwks
    assert _resolve(schema, jwks["responses"]["200"]["content"]["application/json"]["schema"])[
        "properties"
    ]["keys"]


def test_errors_are_documented_in_the_envelope_the_api_sends(schema: dict[str, Any]) -> None:
    text = json.dumps(schema)
    assert "HTTPValidationError" not in text
    envelope = schema["components"]["schemas"]["ErrorOut"]
    assert envelope["required"] == ["error"]
    detail = _resolve(schema, envelope["properties"]["error"])
    assert {"code", "message"} <= set(detail["required"])
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    media = response["content"]["application/json"]["schema"]
                    assert media == {"$ref": "#/components/schemas/ErrorOut"}, (
                        method,
                        path,
                        status,
                    )


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/v1/check", {"400", "401", "403", "404", "413", "422", "503"}),
        ("get", "/v1/tenants/{tenant}/entitlements", {"401", "403", "404", "422", "503"}),
        ("post", "/v1/usage", {"400", "401", "402", "403", "404", "409", "413", "422", "503"}),
        ("post", "/v1/checkout", {"400", "401", "403", "404", "409", "413", "422", "503"}),
        ("post", "/admin/api/projects", {"400", "401", "409", "413", "422", "429", "503"}),
        ("get", "/admin/api/projects/{project}", {"401", "404", "422", "429", "503"}),
        ("post", "/admin/api/stripe/sync", {"401", "429", "503"}),
        ("post", "/webhooks/stripe", {"400", "413", "500", "503"}),
    ],
)
def test_each_route_documents_the_errors_it_answers(
    schema: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    """A sample; tests/documented.py holds every answer of the suite to the document."""
    documented = {s for s in schema["paths"][path][method]["responses"] if s >= "400"}
    assert documented == statuses
    assert "409" not in schema["paths"]["/v1/check"]["post"]["responses"]


@pytest.mark.parametrize(
    ("method", "path", "also"),
    [
        ("post", "/v1/usage", None),
        ("get", "/admin/api/audit", None),
        ("post", "/v1/checkout", "stripe_unavailable"),
        ("post", "/webhooks/stripe", "webhook_not_configured"),
    ],
)
def test_a_route_that_reads_the_database_documents_its_outage(
    schema: dict[str, Any], method: str, path: str, also: str | None
) -> None:
    outage = schema["paths"][path][method]["responses"]["503"]
    assert "`database_unavailable`" in outage["description"]
    assert also is None or f"`{also}`" in outage["description"]
    assert set(outage["headers"]) == {"Retry-After"}


def test_the_suite_wide_net_catches_an_undocumented_answer(app: FastAPI) -> None:
    seen = [
        ("POST", "/v1/check", 409),  # not a check's error
        ("POST", "/v1/check", 404),
        ("POST", "/v1/usage/batch", 401),
        ("GET", "/v1/tenants/acme/entitlements", 403),
        ("GET", "/v1/no-such-route", 404),  # no operation: not held to any document
    ]
    assert undocumented(app, seen) == [
        "POST /v1/check answered 409; documented: "
        "['200', '400', '401', '403', '404', '413', '422', '503']"
    ]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_billplane(docs_client: TestClient, page: str) -> None:
    html = docs_client.get(page).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets), html
    for asset in assets:
        assert asset.startswith("/docs-assets/"), asset
        assert docs_client.get(asset).status_code == 200, asset
    assert "https://" not in html
