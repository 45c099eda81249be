"""Bad input on every route: the documented error envelope, a fitting 4xx, nothing half-written.

The generic tests walk every operation of the OpenAPI schema, so a new route is covered the day it
lands; the tables after them probe each call's own fields. After every rejected call, every row of
every table is exactly as before (and, for usage, so is `used` as `/v1/check` reports it).
"""

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billplane.app import create_app
from billplane.db import Database
from billplane.models import AdminTokenFailure, Base
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, Setup


class Response(Protocol):
    """What the tests read of an answer (the test client's httpx flavour varies)."""

    status_code: int

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


# The whole matrix on SQLite, a quarter of each table on PostgreSQL (see `conftest`).
pytestmark = pytest.mark.pg_sample(every=4)

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
MISSING = object()  # a table's way of saying "leave this field out"


def _openapi() -> dict[str, Any]:
    # The schema does not depend on the data, so collection builds it without a database.
    settings = Settings(database_url="sqlite://", billplane_admin_token=ADMIN_TOKEN)
    database = Database(settings.sqlalchemy_url)
    try:
        return create_app(settings, db=database).openapi()
    finally:
        database.dispose()


SCHEMA = _openapi()


class Operation:
    """One operation of the OpenAPI schema, with an example body when it takes one."""

    def __init__(self, method: str, path: str, spec: dict[str, Any]) -> None:
        self.method = method.upper()
        self.path = path
        self.params = {p["name"]: p["in"] for p in spec.get("parameters", [])}
        media = spec.get("requestBody", {}).get("content", {}).get("application/json")
        self.example: dict[str, Any] | None = _example_of(media["schema"]) if media else None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_params(self) -> list[str]:
        return [name for name, where in self.params.items() if where == "path"]

    @property
    def is_client(self) -> bool:
        return self.path.startswith("/v1/")


def _example_of(schema: dict[str, Any]) -> dict[str, Any]:
    name = schema["$ref"].rsplit("/", 1)[-1]
    example: dict[str, Any] = SCHEMA["components"]["schemas"][name]["examples"][0]
    return example


OPERATIONS = [
    Operation(method, path, spec)
    for path, ops in SCHEMA["paths"].items()
    if path.startswith(("/v1/", "/admin/api/"))
    for method, spec in ops.items()
]
WITH_BODY = [op for op in OPERATIONS if op.example is not None]
WITH_PATH_PARAMS = [op for op in OPERATIONS if op.path_params]
WITH_PAGING = [op for op in OPERATIONS if "limit" in op.params]
# Looked up in Stripe, which these tests do not configure: an unknown one is no 404 here.
STRIPE_IDS = {"session_id"}
WITH_RECORD_KEYS = [op for op in WITH_PATH_PARAMS if set(op.path_params) - STRIPE_IDS]


def by_id(ops: list[Operation]) -> dict[str, Any]:
    return {"argvalues": ops, "ids": [op.id for op in ops]}


def assert_error(
    response: Response, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The documented envelope, `{"error": {"code": "<snake_case>", "message": "..."}}`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert SNAKE_CASE.match(error["code"]), error
    assert isinstance(error["message"], str), error
    assert error["message"].strip(), error
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error.get("param") == param, error
    return error


def rows(session: Session) -> dict[str, list[Any]]:
    """Every row of every table, in primary-key order: what a half-write would change. (Two
    tables are written on purpose: a wrong admin token is noted in `admin_token_failures` for
    the throttle, and a 402 in `refusals`, the refusal log.)"""
    return {
        table.name: [
            tuple(row)
            for row in session.execute(select(table).order_by(*table.primary_key.columns))
        ]
        for table in Base.metadata.sorted_tables
        if table.name not in ("admin_token_failures", "refusals")
    }


def used(setup: Setup, feature: str) -> int:
    check = setup.api.post("/v1/check", {"tenant": "acme", "feature": feature})
    assert check.status_code == 200, check.text
    value: int = check.json()["used"]
    return value


# A value for each path parameter: records the `realtyos` fixture has (or, for Stripe's and
# webhook events' ids, a well-formed one).
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


def known_path_values(setup: Setup, op: Operation) -> dict[str, str]:
    tokens = setup.admin.call("GET", "/admin/api/projects/realtyos/tokens")["data"]
    known = PATH_VALUES | {"token_id": tokens[0]["id"]}
    if "endpoint" in op.path_params:  # a webhook endpoint with one delivery
        endpoint = setup.seed.webhook_endpoint("realtyos", "https://app.realtyos.test/hooks")
        setup.admin.call(
            "PATCH", "/admin/api/projects/realtyos/tenants/acme", json={"status": "archived"}
        )
        path = f"/admin/api/projects/realtyos/webhook-endpoints/{endpoint.endpoint.public_id}"
        [delivery] = setup.admin.call("GET", f"{path}/deliveries")["data"]
        known |= {"endpoint": endpoint.endpoint.public_id, "delivery": delivery["id"]}
    if "pool" in op.path_params:  # a credit pool
        pool = {"key": "credits", "name": "Credits"}
        setup.admin.call("POST", "/admin/api/projects/realtyos/credit-pools", 201, json=pool)
    return known


def url_for(op: Operation, values: dict[str, str]) -> str:
    missing = set(op.path_params) - set(values)
    assert not missing, f"give {op.id} a known value for its path parameter(s) {missing}"
    return op.path.format(**{name: values[name] for name in op.path_params})


def send(
    setup: Setup,
    op: Operation,
    url: str,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    auth: dict[str, str] | None = None,
) -> Response:
    """The operation as its caller sends it: the right token, the example body unless given one."""
    if auth is None:
        auth = setup.api.headers if op.is_client else setup.admin.headers
    if content is None and op.example is not None:
        content = json.dumps(op.example).encode()
    base = {"content-type": "application/json"} if content is not None else {}
    client: TestClient = setup.admin.client
    return client.request(op.method, url, content=content, headers=auth | base | (headers or {}))


# --- every operation, from the OpenAPI schema ---------------------------------------------------

MALFORMED_JSON = {
    "truncated": b'{"tenant": "acme", ',
    "unquoted_keys": b"{tenant: 1}",
    "single_quotes": b"{'tenant': 'acme'}",
    "trailing_comma": b'{"tenant": "acme",}',
    "two_documents": b"{} {}",
    "bare_word": b"hello",
    "not_utf8": b'{"tenant": "\xff\xfe"}',
    "nested_too_deep": b"[" * 100_000 + b"]" * 100_000,
    "number_too_long": b'{"quantity": ' + b"9" * 5000 + b"}",
}

NOT_AN_OBJECT = {
    "empty_body": b"",
    "list": b"[]",
    "list_of_an_object": b"[{}]",
    "string": b'"acme"',
    "number": b"1",
    "null": b"null",
    "boolean": b"true",
}


@pytest.mark.parametrize("op", **by_id(WITH_BODY))
def test_malformed_json_is_400_invalid_json_and_writes_nothing(
    realtyos: Setup, session: Session, op: Operation
) -> None:
    url = url_for(op, known_path_values(realtyos, op))
    before = rows(session)
    for kind, raw in MALFORMED_JSON.items():
        response = send(realtyos, op, url, content=raw)
        assert response.status_code == 400, f"{kind}: {response.text}"
        assert_error(response, 400, "invalid_json")
    assert rows(session) == before


@pytest.mark.parametrize("op", **by_id(WITH_BODY))
def test_body_that_is_not_an_object_is_422_and_writes_nothing(
    realtyos: Setup, session: Session, op: Operation
) -> None:
    url = url_for(op, known_path_values(realtyos, op))
    before = rows(session)
    for kind, raw in NOT_AN_OBJECT.items():
        response = send(realtyos, op, url, content=raw)
        assert response.status_code == 422, f"{kind}: {response.text}"
        assert_error(response, 422, "validation_error")
    assert rows(session) == before


@pytest.mark.parametrize("op", **by_id(WITH_BODY))
def test_unknown_field_is_refused_by_name_and_writes_nothing(
    realtyos: Setup, session: Session, op: Operation
) -> None:
    url = url_for(op, known_path_values(realtyos, op))
    before = rows(session)
    body = json.dumps({**(op.example or {}), "surprise": 1}).encode()
    response = send(realtyos, op, url, content=body)
    assert_error(response, 422, "validation_error", param="surprise")
    assert rows(session) == before


@pytest.mark.parametrize("sent_as", ["none", "text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("op", **by_id(WITH_BODY))
def test_json_sent_with_another_content_type_is_read_as_json(
    realtyos: Setup, session: Session, op: Operation, sent_as: str
) -> None:
    """`curl -d` sends form-urlencoded, a fetch of a string text/plain, some clients nothing: the
    body is still read as JSON. An unknown field proves it: only a JSON read can name it."""
    url = url_for(op, known_path_values(realtyos, op))
    before = rows(session)
    body = json.dumps({**(op.example or {}), "surprise": 1}).encode()
    auth = realtyos.api.headers if op.is_client else realtyos.admin.headers
    headers = auth if sent_as == "none" else auth | {"content-type": sent_as}
    response = realtyos.admin.client.request(op.method, url, content=body, headers=headers)
    assert_error(response, 422, "validation_error", param="surprise")
    assert rows(session) == before


@pytest.mark.parametrize("sent_as", ["none", "application/x-www-form-urlencoded"])
def test_a_form_body_that_is_not_json_is_refused_naming_the_header(
    realtyos: Setup, session: Session, sent_as: str
) -> None:
    before = rows(session)
    headers = realtyos.api.headers | ({} if sent_as == "none" else {"content-type": sent_as})
    response = realtyos.admin.client.post(
        "/v1/usage", content=b"tenant=acme&feature=ai.tokens", headers=headers
    )
    error = assert_error(response, 400, "invalid_json")
    assert "Content-Type: application/json" in error["message"]
    said = "without a Content-Type" if sent_as == "none" else sent_as
    assert said in error["message"]
    assert rows(session) == before


# Each is refused by the key pattern; a slash splits the path, so no route is found at all.
BAD_PATH_KEYS = {
    "too_long": ("k" * 129, 422, "validation_error"),
    "space": ("a%20b", 422, "validation_error"),
    "leading_dash": ("-abc", 422, "validation_error"),
    "percent_sign": ("a%25b", 422, "validation_error"),
    "nul": ("a%00b", 422, "validation_error"),
    "non_ascii": ("caf%C3%A9", 422, "validation_error"),
    "slash": ("a%2Fb", 404, "not_found"),
}


@pytest.mark.parametrize("op", **by_id(WITH_PATH_PARAMS))
def test_malformed_key_in_the_path_is_refused_and_writes_nothing(
    realtyos: Setup, session: Session, op: Operation
) -> None:
    known = known_path_values(realtyos, op)
    before = rows(session)
    for name in op.path_params:
        for kind, (value, status, code) in BAD_PATH_KEYS.items():
            response = send(realtyos, op, url_for(op, {**known, name: value}))
            assert response.status_code == status, f"{name} {kind}: {response.text}"
            assert_error(response, status, code, param=name if status == 422 else None)
    assert rows(session) == before


@pytest.mark.parametrize("op", **by_id(WITH_RECORD_KEYS))
def test_unknown_key_in_the_path_is_404_naming_what_is_missing(
    realtyos: Setup, session: Session, op: Operation
) -> None:
    known = known_path_values(realtyos, op)
    before = rows(session)
    for name in set(op.path_params) - STRIPE_IDS:
        error = assert_error(send(realtyos, op, url_for(op, {**known, name: "nope"})), 404)
        assert error["code"].endswith("_not_found"), error
        assert error["code"] != "not_found", error
    assert rows(session) == before


BAD_PAGING = {
    "limit": ["0", "-1", "101", "9" * 40, "ten", "1.5"],
    "starting_after": ["a b", "a/b", "k" * 129],
}


@pytest.mark.parametrize("op", **by_id(WITH_PAGING))
def test_bad_paging_parameter_is_422_naming_it(realtyos: Setup, op: Operation) -> None:
    url = url_for(op, known_path_values(realtyos, op))
    for name, values in BAD_PAGING.items():
        if name not in op.params:
            continue
        for value in values:
            response = realtyos.admin.client.get(
                url, params={name: value}, headers=realtyos.admin.headers
            )
            assert_error(response, 422, "validation_error", param=name)


@pytest.mark.parametrize("op", **by_id(OPERATIONS))
def test_missing_or_wrong_kind_of_token_is_401_and_writes_nothing(
    realtyos: Setup, session: Session, op: Operation
) -> None:
    """No token, a malformed header, or the other kind of token: a project token opens no admin
    route and the admin token is no project token."""
    url = url_for(op, known_path_values(realtyos, op))
    other = realtyos.admin.headers if op.is_client else realtyos.api.headers
    before = rows(session)
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}, other):
        response = send(realtyos, op, url, auth=headers)
        assert response.status_code == 401, f"{headers}: {response.text}"
        assert_error(response, 401, "unauthorized")
    assert rows(session) == before
    # Of the four, only a token sent to the admin API is a guess at the admin token.
    guesses = session.scalar(select(func.count()).select_from(AdminTokenFailure))
    assert guesses == (0 if op.is_client else 1)


WRONG_METHODS = {
    path: sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - {m.upper() for m in ops})
    for path, ops in SCHEMA["paths"].items()
}


@pytest.mark.parametrize("path", WRONG_METHODS)
def test_wrong_method_is_405_with_allow_header(
    client: TestClient, session: Session, path: str
) -> None:
    served = {m.upper() for m in SCHEMA["paths"][path]}
    url = path.format(**PATH_VALUES)
    before = rows(session)
    for method in WRONG_METHODS[path]:
        response = client.request(
            method, url, json={}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert_error(response, 405, "method_not_allowed")
        allow = {m.strip() for m in response.headers["allow"].split(",")}
        assert served <= allow, (method, allow)
        assert method not in allow, (method, allow)
    assert rows(session) == before


UNKNOWN_ROUTES = [
    ("GET", "/v1/nope"),
    ("POST", "/v1/nope"),
    ("POST", "/v2/check"),
    ("POST", "/v1/check/extra"),
    ("GET", "/v1/tenants/acme"),
    ("GET", "/v1/tenants/acme/entitlements/more"),
    ("GET", "/admin/api/nope"),
    ("DELETE", "/admin/api/projects/realtyos/plans/pro/features"),
    ("PATCH", "/admin/api/projects/realtyos/nope"),
    ("GET", "/admin/api"),
]


@pytest.mark.parametrize(
    ("method", "path"), UNKNOWN_ROUTES, ids=[" ".join(r) for r in UNKNOWN_ROUTES]
)
def test_unknown_route_is_404_not_found_in_the_envelope(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path, json={}, headers={"Authorization": "Bearer bp_x"})
    assert_error(response, 404, "not_found")


# --- POST /v1/check and POST /v1/usage: the fields ------------------------------------------------


def changed(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**body, **changes}
    return {k: v for k, v in merged.items() if v is not MISSING}


def expecting(expect: str) -> tuple[int, str, str | None]:
    """`"422 validation_error quantity"`: status, error code, and the `param` named (if any)."""
    status, code, *param = expect.split()
    return int(status), code, param[0] if param else None


def field(name: str, expect: str, /, **changes: Any) -> Any:
    """A row of the field tables: the changes to a good body (MISSING drops a field)."""
    return pytest.param(changes, *expecting(expect), id=name)


CHECK = {"tenant": "acme", "feature": "listings.publish", "quantity": 1}

FIELD_ERRORS = [
    field("quantity_as_string", "422 validation_error quantity", quantity="5"),
    field("quantity_fraction", "422 validation_error quantity", quantity=1.5),
    field("quantity_whole_float", "422 validation_error quantity", quantity=2.0),
    field("quantity_boolean", "422 validation_error quantity", quantity=True),
    field("quantity_null", "422 validation_error quantity", quantity=None),
    field("quantity_list", "422 validation_error quantity", quantity=[1]),
    field("quantity_zero", "422 validation_error quantity", quantity=0),
    field("quantity_negative", "422 validation_error quantity", quantity=-1),
    field("quantity_just_over_max", "422 validation_error quantity", quantity=1_000_000_001),
    field("quantity_absurd", "422 validation_error quantity", quantity=10**30),
    field("tenant_number", "422 validation_error tenant", tenant=123),
    field("tenant_null", "422 validation_error tenant", tenant=None),
    field("tenant_object", "422 validation_error tenant", tenant={"key": "acme"}),
    field("tenant_empty", "422 validation_error tenant", tenant=""),
    field("tenant_too_long", "422 validation_error tenant", tenant="t" * 129),
    field("tenant_slash", "422 validation_error tenant", tenant="ac/me"),
    field("tenant_space", "422 validation_error tenant", tenant="ac me"),
    field("tenant_newline", "422 validation_error tenant", tenant="acme\n"),
    field("tenant_missing", "422 validation_error tenant", tenant=MISSING),
    field("tenant_unknown", "404 tenant_not_found", tenant="nobody"),
    field("feature_number", "422 validation_error feature", feature=5),
    field("feature_too_long", "422 validation_error feature", feature="f" * 65),
    field("feature_space", "422 validation_error feature", feature="listings publish"),
    field("feature_missing", "422 validation_error feature", feature=MISSING),
    field("unknown_field", "422 validation_error tenat", tenat="acme"),
]


@pytest.mark.parametrize(("changes", "status", "code", "param"), FIELD_ERRORS)
def test_check_refuses_bad_fields(
    realtyos: Setup, changes: dict[str, Any], status: int, code: str, param: str | None
) -> None:
    response = realtyos.api.post("/v1/check", changed(CHECK, changes))
    assert_error(response, status, code, param)


USAGE = {"tenant": "acme", "feature": "listings.publish", "quantity": 1, "idempotency_key": "k-1"}
KEY = "idempotency_key"

USAGE_ERRORS = [
    *FIELD_ERRORS,
    field("key_too_long", "422 validation_error idempotency_key", idempotency_key="k" * 256),
    field("key_empty", "422 validation_error idempotency_key", idempotency_key=""),
    field("key_number", "422 validation_error idempotency_key", idempotency_key=12345),
    field("key_list", "422 validation_error idempotency_key", idempotency_key=["k-1"]),
    field("key_nul", "422 validation_error idempotency_key", idempotency_key="k\x001"),
    field("key_missing", "400 invalid_request idempotency_key", idempotency_key=MISSING),
    field("key_null", "400 invalid_request idempotency_key", idempotency_key=None),
    field("enforce_as_string", "422 validation_error enforce", enforce="true"),
    field("enforce_as_number", "422 validation_error enforce", enforce=1),
    field("timestamp_word", "422 validation_error timestamp", timestamp="yesterday"),
    field("timestamp_naive", "422 validation_error timestamp", timestamp="2026-11-21T11:00:00"),
    field(
        "timestamp_future", "422 timestamp_out_of_range timestamp", timestamp="2027-01-01T00:00:00Z"
    ),
    field(
        "timestamp_too_old",
        "422 timestamp_out_of_range timestamp",
        timestamp="2026-01-01T00:00:00Z",
    ),
    field(
        "timestamp_year_one",
        "422 timestamp_out_of_range timestamp",
        timestamp="0001-01-01T00:00:00+14:00",
    ),
    field("feature_unknown", "404 unknown_feature", feature="nope"),
    field("feature_boolean", "400 invalid_request feature", feature="exports"),
    field("over_the_limit", "402 limit_reached", quantity=4, enforce=True),
]


@pytest.mark.parametrize(("changes", "status", "code", "param"), USAGE_ERRORS)
def test_rejected_usage_counts_nothing_and_keeps_the_key_free(
    realtyos: Setup,
    session: Session,
    changes: dict[str, Any],
    status: int,
    code: str,
    param: str | None,
) -> None:
    used_before = used(realtyos, "listings.publish")
    before = rows(session)
    response = realtyos.api.post("/v1/usage", changed(USAGE, changes))
    assert_error(response, status, code, param)
    assert rows(session) == before
    assert used(realtyos, "listings.publish") == used_before
    # The refused call's key was not claimed: using it now records, as a first time.
    retry = realtyos.api.post("/v1/usage", USAGE)
    assert retry.status_code == 201, retry.text
    assert retry.json()["used"] == used_before + 1


ABSURD_QUANTITIES = {
    "overflowing_float": (b"1e400", "422 validation_error quantity"),
    "nan": (b"NaN", "422 validation_error quantity"),
    "minus_infinity": (b"-Infinity", "422 validation_error quantity"),
    "5000_digits": (b"9" * 5000, "400 invalid_json"),
}


@pytest.mark.parametrize(("raw", "expect"), ABSURD_QUANTITIES.values(), ids=ABSURD_QUANTITIES)
@pytest.mark.parametrize("path", ["/v1/check", "/v1/usage"])
def test_absurd_quantity_in_raw_json_is_refused_and_counts_nothing(
    realtyos: Setup, session: Session, path: str, raw: bytes, expect: str
) -> None:
    before = rows(session)
    body = b'{"tenant": "acme", "feature": "ai.tokens", "idempotency_key": "n", "quantity": '
    if path == "/v1/check":
        body = b'{"tenant": "acme", "feature": "ai.tokens", "quantity": '
    headers = realtyos.api.headers | {"content-type": "application/json"}
    response = realtyos.api.client.post(path, content=body + raw + b"}", headers=headers)
    assert_error(response, *expecting(expect))
    assert rows(session) == before


@pytest.mark.parametrize(
    ("header", "expect"),
    [
        pytest.param("k" * 256, "422 validation_error", id="too_long"),
        pytest.param("", "400 invalid_request", id="empty"),
    ],
)
def test_bad_idempotency_key_header_counts_nothing(
    realtyos: Setup, session: Session, header: str, expect: str
) -> None:
    before = rows(session)
    response = realtyos.api.post(
        "/v1/usage", changed(USAGE, {KEY: MISSING}), headers={"Idempotency-Key": header}
    )
    error = assert_error(response, *expecting(expect))
    assert "idempotency" in error["param"].replace("-", "_"), error
    assert rows(session) == before


def test_reusing_a_key_for_another_quantity_or_feature_is_409_and_counts_nothing(
    realtyos: Setup, session: Session
) -> None:
    assert realtyos.api.post("/v1/usage", USAGE).status_code == 201
    before = rows(session)
    response = realtyos.api.post("/v1/usage", {**USAGE, "quantity": 2})
    assert_error(response, 409, "idempotency_key_reused", KEY)
    response = realtyos.api.post("/v1/usage", {**USAGE, "feature": "ai.tokens"})
    assert_error(response, 409, "idempotency_key_reused", KEY)
    assert rows(session) == before
    repeat = realtyos.api.post("/v1/usage", USAGE)
    assert repeat.status_code == 200
    assert repeat.json()["duplicate"] is True
    assert used(realtyos, "listings.publish") == 1


# --- POST /v1/usage/batch -------------------------------------------------------------------------


def event(key: str, **changes: Any) -> dict[str, Any]:
    return changed({**USAGE, "feature": "ai.tokens", KEY: key}, changes)


BATCH_ERRORS = {
    "events_missing": {},
    "events_empty": {"events": []},
    "events_an_object": {"events": event("b-1")},
    "events_a_string": {"events": "b-1"},
    "events_over_1000": {"events": [event(f"b-{i}") for i in range(1001)]},
    "unknown_field": {"events": [event("b-1")], "atomic": True},
}


@pytest.mark.parametrize("body", BATCH_ERRORS.values(), ids=BATCH_ERRORS)
def test_rejected_batch_records_nothing(
    realtyos: Setup, session: Session, body: dict[str, Any]
) -> None:
    before = rows(session)
    response = realtyos.api.post("/v1/usage/batch", body)
    assert_error(response, 422, "validation_error")
    assert rows(session) == before


def test_batch_records_the_good_events_and_reports_each_bad_one(realtyos: Setup) -> None:
    # (event, status, error code)
    expected: list[tuple[Any, int, str | None]] = [
        (event("good-1", quantity=2), 201, None),
        (event("bad-type", quantity="5"), 422, "validation_error"),
        (event("good-2", quantity=3), 201, None),
        (event("bad-tenant", tenant="nobody"), 404, "tenant_not_found"),
        (event("k" * 256), 422, "validation_error"),
        (None, 422, "validation_error"),
        (["not", "an", "object"], 422, "validation_error"),
        (event("bad-feature", feature="nope"), 404, "unknown_feature"),
        (event("bad-boolean", feature="exports"), 400, "invalid_request"),
        (event("bad-no-key", idempotency_key=MISSING), 400, "invalid_request"),
        (event("bad-extra", surprise=1), 422, "validation_error"),
        (event("good-1", quantity=2), 200, None),  # a repeat: answered, not counted again
    ]
    used_before = used(realtyos, "ai.tokens")
    response = realtyos.api.post("/v1/usage/batch", {"events": [e for e, _, _ in expected]})
    assert response.status_code == 200, response.text
    results = response.json()["data"]
    assert [r["status"] for r in results] == [status for _, status, _ in expected]
    for result, (_, _, code) in zip(results, expected, strict=True):
        if code is None:
            assert result["error"] is None
            assert result["result"]["recorded"] is True
        else:
            assert result["result"] is None
            assert result["error"]["code"] == code, result
            assert result["error"]["message"], result
    assert results[-1]["result"]["duplicate"] is True
    assert used(realtyos, "ai.tokens") == used_before + 5


def test_batch_enforce_refuses_only_the_event_over_the_limit(realtyos: Setup) -> None:
    events = [
        event("e-1", feature="listings.publish", quantity=2, enforce=True),
        event("e-2", feature="listings.publish", quantity=2, enforce=True),
        event("e-3", feature="listings.publish", quantity=1, enforce=True),
    ]
    response = realtyos.api.post("/v1/usage/batch", {"events": events})
    results = response.json()["data"]
    assert [r["status"] for r in results] == [201, 402, 201]
    assert results[1]["error"]["code"] == "limit_reached"
    assert used(realtyos, "listings.publish") == 3
    # The refused event's key is still free.
    retry = realtyos.api.post("/v1/usage", event("e-2"))
    assert retry.status_code == 201, retry.text


# --- admin writes ---------------------------------------------------------------------------------

PROJECTS = "/admin/api/projects"
PLANS = "/admin/api/projects/realtyos/plans"
TENANTS = "/admin/api/projects/realtyos/tenants"
TOKENS = "/admin/api/projects/realtyos/tokens"
GRANT = {"limit": 5, "reset": "month"}


def grants(**by_feature: Any) -> dict[str, Any]:
    """A plan's `features` (or a tenant's `overrides`); `listings_publish` is `listings.publish`."""
    return {key.replace("_", "."): value for key, value in by_feature.items()}


def limit(value: Any, **extra: Any) -> dict[str, Any]:
    return grants(listings_publish={"limit": value, **extra})


def writes(prefix: str, method: str, path: str, good: dict[str, Any]) -> Any:
    """Rows for one admin write: a name, what to expect, and the changes to a good body."""

    def row(name: str, expect: str, /, **changes: Any) -> Any:
        body = changed(good, changes)
        return pytest.param(method, path, body, *expecting(expect), id=f"{prefix}_{name}")

    return row


new_project = writes(
    "project",
    "POST",
    PROJECTS,
    {"key": "reeltours", "name": "ReelTours", "origins": ["https://app.reeltours.test"]},
)
edit_realtyos = writes("project_edit", "PATCH", f"{PROJECTS}/realtyos", {})
new_feature = writes(
    "feature",
    "POST",
    f"{PROJECTS}/realtyos/features",
    {"key": "seats", "name": "Seats", "type": "limit", "unit": "seat"},
)
new_plan = writes(
    "plan",
    "POST",
    PLANS,
    {"key": "team", "name": "Team", "stripe_price_id": "price_team", "features": {}},
)
edit_pro = writes("pro_plan", "PATCH", f"{PLANS}/pro", {})
edit_free = writes("free_plan", "PATCH", f"{PLANS}/free", {})
edit_gold = writes("unknown_plan", "PATCH", f"{PLANS}/gold", {})
new_tenant = writes(
    "tenant", "POST", TENANTS, {"key": "globex", "name": "Globex", "email": "ops@globex.test"}
)
edit_acme = writes("acme", "PATCH", f"{TENANTS}/acme", {})
edit_globex = writes("unknown_tenant", "PATCH", f"{TENANTS}/globex", {})
new_token = writes("token", "POST", TOKENS, {"name": "globex app"})
new_endpoint = writes(
    "webhook_endpoint",
    "POST",
    f"{PROJECTS}/realtyos/webhook-endpoints",
    {"url": "https://app.realtyos.test/hooks", "events": ["tenant.usage.threshold"]},
)

ADMIN_ERRORS = [
    edit_realtyos(
        "snapshot_ttl_59", "422 validation_error snapshot_ttl_seconds", snapshot_ttl_seconds=59
    ),
    edit_realtyos(
        "snapshot_ttl_over_a_day",
        "422 validation_error snapshot_ttl_seconds",
        snapshot_ttl_seconds=86_401,
    ),
    new_project("key_too_long", "422 validation_error key", key="p" * 65),
    new_project("key_slash", "422 validation_error key", key="reel/tours"),
    new_project("key_space", "422 validation_error key", key="reel tours"),
    new_project("key_number", "422 validation_error key", key=123),
    new_project("key_missing", "422 validation_error key", key=MISSING),
    new_project("name_missing", "422 validation_error name", name=MISSING),
    new_project("name_blank", "422 validation_error name", name="   "),
    new_project("name_too_long", "422 validation_error name", name="n" * 201),
    new_project("name_nul", "422 validation_error name", name="Reel\x00"),
    new_project("origins_not_a_list", "422 validation_error origins", origins="https://a.test"),
    new_project("origin_not_a_url", "422 validation_error origins.0", origins=["not a url"]),
    new_project("origin_ftp", "422 validation_error origins.0", origins=["ftp://a.test"]),
    new_project("origin_with_query", "422 validation_error origins", origins=["https://a.test/?x"]),
    new_project(
        "origins_over_50",
        "422 validation_error origins",
        origins=[f"https://a{i}.test" for i in range(51)],
    ),
    new_project("key_taken", "409 already_exists", key="realtyos"),
    new_feature("type_unknown", "422 validation_error type", type="counter"),
    new_feature("type_missing", "422 validation_error type", type=MISSING),
    new_feature("key_space", "422 validation_error key", key="team seats"),
    new_feature("unit_empty", "422 validation_error unit", unit=""),
    new_feature("unit_too_long", "422 validation_error unit", unit="u" * 65),
    new_feature("unit_nul", "422 validation_error unit", unit="se\x00at"),
    new_feature("name_nul", "422 validation_error name", name="Se\x00ats"),
    new_feature("key_taken", "409 already_exists", key="exports"),
    new_plan("limit_as_string", "422 validation_error", features=limit("5")),
    new_plan("limit_negative", "422 validation_error", features=limit(-1)),
    new_plan("limit_fraction", "422 validation_error", features=limit(1.5)),
    new_plan("limit_boolean", "422 validation_error", features=limit(True)),
    new_plan("limit_past_int32", "422 validation_error", features=limit(2**31)),
    new_plan("limit_absurd", "422 validation_error", features=limit(10**30)),
    new_plan("reset_unknown", "422 validation_error", features=limit(5, reset="week")),
    new_plan("grant_extra_field", "422 validation_error", features=limit(5, rest="day")),
    new_plan(
        "grant_without_limit",
        "422 validation_error",
        features=grants(listings_publish={"reset": "day"}),
    ),
    new_plan("grant_1_for_a_limit", "422 validation_error", features=grants(listings_publish=1)),
    new_plan("grant_yes_for_true", "422 validation_error", features=grants(exports="yes")),
    new_plan("feature_key_space", "422 validation_error", features={"listings publish": True}),
    new_plan(
        "features_over_500",
        "422 validation_error features",
        features={f"f{i}": True for i in range(501)},
    ),
    new_plan("trial_negative", "422 validation_error trial_days", trial_days=-1),
    new_plan("trial_over_730", "422 validation_error trial_days", trial_days=731),
    new_plan("trial_as_string", "422 validation_error trial_days", trial_days="14"),
    new_plan("price_with_space", "422 validation_error stripe_price_id", stripe_price_id="p x"),
    new_plan("price_empty", "422 validation_error stripe_price_id", stripe_price_id=""),
    new_plan("key_taken", "409 already_exists key", key="pro"),
    new_plan("price_taken", "409 already_exists stripe_price_id", stripe_price_id="price_pro"),
    new_plan(
        "free_but_not_default", "400 invalid_request stripe_price_id", stripe_price_id=MISSING
    ),
    new_plan("feature_unknown", "404 feature_not_found features.nope", features={"nope": True}),
    new_plan(
        "limit_on_a_boolean_feature",
        "400 invalid_request features.exports",
        features=grants(exports=GRANT),
    ),
    new_plan(
        "limit_on_a_metered_feature",
        "400 invalid_request features.ai.tokens",
        features=grants(ai_tokens=GRANT),
    ),
    new_plan(
        "good_grant_with_a_bad_one",
        "400 invalid_request features.exports",
        features=grants(listings_publish=GRANT, exports=GRANT),
    ),
    edit_pro("status_unknown", "422 validation_error status", status="gone"),
    edit_pro("limit_past_int32", "422 validation_error", features=limit(2**31)),
    edit_pro("trial_as_string", "422 validation_error trial_days", trial_days="7"),
    edit_pro(
        "rename_with_unknown_feature",
        "404 feature_not_found",
        name="Renamed",
        features={"nope": True},
    ),
    edit_pro(
        "good_grant_with_a_bad_one",
        "400 invalid_request features.exports",
        features=grants(listings_publish={"limit": 7}, exports=GRANT),
    ),
    edit_free("archived_while_default", "400 invalid_request status", status="archived"),
    edit_free("no_longer_default", "400 invalid_request stripe_price_id", is_default=False),
    edit_gold("rename", "404 plan_not_found", name="Gold"),
    new_tenant("key_too_long", "422 validation_error key", key="t" * 129),
    new_tenant("key_slash", "422 validation_error key", key="glo/bex"),
    new_tenant("key_space", "422 validation_error key", key="glo bex"),
    new_tenant("key_number", "422 validation_error key", key=123),
    new_tenant("key_empty", "422 validation_error key", key=""),
    new_tenant("email_invalid", "422 validation_error email", email="not-an-email"),
    new_tenant("email_nul", "422 validation_error email", email="o\x00@globex.test"),
    new_tenant("email_too_long", "422 validation_error email", email="o" * 320 + "@globex.test"),
    new_tenant("name_nul", "422 validation_error name", name="Glo\x00bex"),
    new_tenant("key_taken", "409 already_exists", key="acme"),
    edit_acme("limit_negative", "422 validation_error", overrides=limit(-1)),
    edit_acme("limit_past_int32", "422 validation_error", overrides=limit(2**31)),
    edit_acme("grant_1_for_a_limit", "422 validation_error", overrides=grants(listings_publish=1)),
    edit_acme("email_invalid", "422 validation_error email", email="ops@acme"),
    edit_acme(
        "rename_with_unknown_feature", "404 feature_not_found", name="X", overrides={"nope": True}
    ),
    edit_acme(
        "email_with_a_bad_grant",
        "400 invalid_request features.exports",
        email="new@acme.test",
        overrides=grants(exports=GRANT),
    ),
    edit_globex("rename", "404 tenant_not_found", name="Globex"),
    new_token("name_missing", "422 validation_error name", name=MISSING),
    new_token("name_blank", "422 validation_error name", name=" "),
    new_token("name_nul", "422 validation_error name", name="app\x00"),
    new_token("name_too_long", "422 validation_error name", name="n" * 201),
    new_token("tenant_space", "422 validation_error tenant", tenant="ac me"),
    new_token("tenant_number", "422 validation_error tenant", tenant=123),
    new_token("tenant_unknown", "404 tenant_not_found", tenant="nobody"),
    new_endpoint("url_missing", "422 validation_error url", url=MISSING),
    new_endpoint("url_ftp", "422 validation_error url", url="ftp://app.realtyos.test/hooks"),
    new_endpoint("url_fragment", "422 validation_error url", url="https://a.test/hooks#here"),
    new_endpoint("url_too_long", "422 validation_error url", url="https://a.test/" + "h" * 2048),
    new_endpoint("events_empty", "422 validation_error events", events=[]),
    new_endpoint("event_unknown", "422 validation_error events.0", events=["tenant.created"]),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code", "param"), ADMIN_ERRORS)
def test_rejected_admin_write_changes_nothing(
    realtyos: Setup,
    session: Session,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
    param: str | None,
) -> None:
    before = rows(session)
    response = realtyos.admin.client.request(
        method, path, json=body, headers=realtyos.admin.headers
    )
    assert_error(response, status, code, param)
    assert rows(session) == before


def test_rejected_plan_create_leaves_the_plan_list_as_it_was(realtyos: Setup) -> None:
    listed = realtyos.admin.call("GET", PLANS)
    body = {
        "key": "team",
        "name": "Team",
        "stripe_price_id": "price_team",
        "features": grants(listings_publish=GRANT, exports=GRANT),
    }
    response = realtyos.admin.client.post(PLANS, json=body, headers=realtyos.admin.headers)
    assert_error(response, 400, "invalid_request", "features.exports")
    assert realtyos.admin.call("GET", PLANS) == listed


def test_rotating_a_revoked_token_is_404_and_changes_nothing(
    realtyos: Setup, session: Session
) -> None:
    issued = realtyos.admin.call("POST", TOKENS, 201, json={"name": "old app"})
    realtyos.admin.call("DELETE", f"/admin/api/tokens/{issued['id']}")
    before = rows(session)
    response = realtyos.admin.client.post(
        f"/admin/api/tokens/{issued['id']}/rotate", headers=realtyos.admin.headers
    )
    assert_error(response, 404, "token_not_found")
    assert rows(session) == before


def accepted(name: str, method: str, path: str, body: dict[str, Any], status: int) -> Any:
    return pytest.param(method, path, body, status, id=name)


# The edges above are the real edges, not a rule that refuses everything near them.
ACCEPTED_AT_THE_EDGE = [
    accepted("tenant_key_of_128", "POST", TENANTS, {"key": "t" * 128}, 201),
    accepted("project_key_of_64", "POST", PROJECTS, {"key": "p" * 64, "name": "P"}, 201),
    accepted(
        "plan_limit_of_int32_max",
        "POST",
        PLANS,
        {"key": "team", "name": "Team", "stripe_price_id": "p_t", "features": limit(2**31 - 1)},
        201,
    ),
    accepted(
        "plan_trial_of_730",
        "POST",
        PLANS,
        {"key": "team", "name": "Team", "stripe_price_id": "p_t", "trial_days": 730},
        201,
    ),
    accepted(
        "tenant_override_of_int32_max",
        "PATCH",
        f"{TENANTS}/acme",
        {"overrides": limit(2**31 - 1)},
        200,
    ),
    accepted("usage_key_of_255", "POST", "/v1/usage", {**USAGE, KEY: "k" * 255}, 201),
    accepted("usage_key_of_255_non_ascii", "POST", "/v1/usage", {**USAGE, KEY: "é" * 255}, 201),
    accepted("usage_quantity_of_max", "POST", "/v1/usage", event("big", quantity=10**9), 201),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), ACCEPTED_AT_THE_EDGE)
def test_values_at_the_edge_are_accepted(
    realtyos: Setup, method: str, path: str, body: Any, status: int
) -> None:
    headers = realtyos.api.headers if path.startswith("/v1") else realtyos.admin.headers
    response = realtyos.admin.client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, response.text
