"""A fuzz run of the OpenAPI schema finds no 5xx, and every error it provokes is in the envelope.

Schemathesis generates valid and invalid requests for every operation; they go to the real app
on a real migrated database (a throwaway one per engine: fuzz cases commit), seeded with the
project, tenants and plans the schema's own examples name, so generated calls reach deep paths.
"""

import atexit
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import response_schema_conformance, status_code_conformance

from billplane.app import create_app
from billplane.db import Database
from billplane.settings import Settings
from conftest import ADMIN_TOKEN, Clock, fresh_database

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# While Stripe is not configured (as here) the calls that need it answer 503 in the
# envelope; any other 5xx is a bug.
STRIPE_NOT_CONFIGURED = (503, "stripe_not_configured")
FEATURES = ["exports", "listings.publish", "ai.tokens"]
TENANTS = ["acme", "acme-realty"]
# Path values that exist once the database is seeded; the token ids are filled in by `target`.
KNOWN: dict[str, list[str]] = {
    "project": ["realtyos"],
    "plan": ["free", "pro"],
    "tenant": TENANTS,
    "token_id": [],
    "pool": ["credits"],
}


def _schema_app() -> FastAPI:
    # Only to read the schema from: it never touches its (in-memory) database.
    settings_ = Settings(database_url="sqlite://", billplane_admin_token=ADMIN_TOKEN)
    return create_app(settings_, db=Database(settings_.sqlalchemy_url))


# Hypothesis keeps caches (constants, unicode tables) beside its example database, by default in
# the working directory: keep them out of the repository, as `database=None` keeps the examples.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="billplane-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)

schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_app())


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Mostly a path names records that exist, so the call gets past the first lookup."""
    if not path_parameters:
        return st.just(path_parameters)

    def known_or_generated(name: str, generated: Any) -> Any:
        known = KNOWN.get(name, [])
        return st.sampled_from([*known, *known, generated]) if known else st.just(generated)

    return st.fixed_dictionaries(
        {name: known_or_generated(name, value) for name, value in path_parameters.items()}
    )


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Sometimes aim a generated body at real tenants and features, and now and then slip in a
    value that databases choke on although the schema allows it."""
    aimed = st.builds(_aim, st.just(body), st.sampled_from(TENANTS), st.sampled_from(FEATURES))
    return st.one_of(st.just(body), aimed, aimed.flatmap(_spiked))


# Values at the edges of what PostgreSQL and SQLite store: NUL in text, 32- and 64-bit integers.
SPIKED_STRINGS = ["\x00", "a\x00b"]
SPIKED_INTEGERS = [2**31 - 1, 2**31, 2**63 - 1, 2**63]


def _spiked(value: Any) -> Any:
    """A strategy for `value` with, here and there, one leaf swapped for an edge value."""
    if isinstance(value, dict):
        return st.fixed_dictionaries({k: _spiked(v) for k, v in value.items()})
    if isinstance(value, list):
        return st.tuples(*(_spiked(v) for v in value)).map(list)
    if isinstance(value, str):
        return st.sampled_from([value, value, value + SPIKED_STRINGS[1], SPIKED_STRINGS[0]])
    if isinstance(value, int) and not isinstance(value, bool):
        return st.sampled_from([value, value, *SPIKED_INTEGERS])
    return st.just(value)


def _aim(body: Any, tenant: str, feature: str) -> Any:
    if not isinstance(body, dict):
        return body
    if isinstance(body.get("events"), list):
        return {**body, "events": [_aim(event, tenant, feature) for event in body["events"]]}
    aimed = dict(body)
    if "tenant" in aimed:
        aimed["tenant"] = tenant
    if "feature" in aimed:
        aimed["feature"] = feature
    for grants in ("features", "overrides"):
        if isinstance(aimed.get(grants), dict):
            # Grants for features that exist, starting with the one drawn.
            keys = FEATURES[FEATURES.index(feature) :] + FEATURES[: FEATURES.index(feature)]
            aimed[grants] = dict(zip(keys, aimed[grants].values(), strict=False))
    return aimed


class Target:
    def __init__(self, app: FastAPI, project_token: str) -> None:
        self.app = app
        self.project_token = project_token
        self.seen: set[tuple[str, str, Any]] = set()

    def headers_for(self, path: str) -> dict[str, str]:
        token = self.project_token if path.startswith("/v1/") else ADMIN_TOKEN
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    with fresh_database(request.param, Path(tmp_path_factory.mktemp("fuzz"))) as url:
        database = Database(Settings(database_url=url).sqlalchemy_url)
        app = create_app(
            Settings(
                database_url=url,
                billplane_admin_token=ADMIN_TOKEN,
                # Deliveries are verified (and, unsigned, refused); no Stripe API key is set.
                stripe_webhook_secret="whsec_fuzz",
                # Signing keys can be made and rotated (snapshots are signed).
                billplane_secret_key="fuzz-secret-" + "k" * 32,
            ),
            db=database,
            clock=Clock(datetime(2026, 11, 21, 12, 0, tzinfo=UTC)),
        )
        with TestClient(app) as client:
            project_token = _seed(client)
        try:
            yield Target(app, project_token)
        finally:
            KNOWN["token_id"] = []
            database.dispose()


def _seed(client: TestClient) -> str:
    """The records the schema's examples name; returns a project token the fuzzer never learns
    the id of (it may rotate or revoke the others)."""

    def admin(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = client.request(
            method,
            f"/admin/api{path}",
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert response.status_code in (200, 201), response.text
        return response.json()

    project = admin("POST", "/projects", {"key": "realtyos", "name": "RealtyOS", "origins": []})
    for key, type_ in zip(FEATURES, ["boolean", "limit", "metered"], strict=True):
        admin("POST", "/projects/realtyos/features", {"key": key, "name": key, "type": type_})
    admin(
        "POST",
        "/projects/realtyos/plans",
        {
            "key": "free",
            "name": "Free",
            "is_default": True,
            "features": {"listings.publish": {"limit": 3}, "ai.tokens": True},
        },
    )
    admin(
        "POST",
        "/projects/realtyos/plans",
        {
            "key": "pro",
            "name": "Pro",
            "stripe_price_id": "price_pro",
            "features": {"exports": True, "listings.publish": {"limit": 100}, "ai.tokens": True},
        },
    )
    for tenant in TENANTS:
        admin("POST", "/projects/realtyos/tenants", {"key": tenant})
    admin("PATCH", "/projects/realtyos/tenants/acme", {"overrides": {"exports": True}})
    # Credits: the metered feature costs 2 of a pool the free plan gives 100 of a month.
    pool = {"key": "credits", "name": "Credits", "costs": {"ai.tokens": 2}}
    admin("POST", "/projects/realtyos/credit-pools", pool)
    allowance = {"grant": 100, "reset": "month", "rollover": 50}
    admin("PUT", "/projects/realtyos/credit-pools/credits/allowances/free", allowance)
    for name in ("rotate me", "revoke me"):
        issued = admin("POST", "/projects/realtyos/tokens", {"name": name, "tenant": "acme"})
        KNOWN["token_id"].append(issued["id"])
    token: str = project["token"]
    return token


# Every operation on SQLite, every other one on PostgreSQL (both engines run the same code; the
# sample still meets PostgreSQL's own types with the spiked values).
@pytest.mark.pg_sample(every=2)
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_fuzzed_requests_never_get_a_5xx(case: schemathesis.Case[Any], target: Target) -> None:
    aim_at_known_records(case, target.seen)
    response = case.call(app=target.app, headers=target.headers_for(case.path))
    # Every status answered is one the operation documents, with a body of its documented shape.
    case.validate_response(response, checks=[status_code_conformance, response_schema_conformance])
    if response.status_code < 400:
        return
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert SNAKE_CASE.match(error["code"]), body
    assert error["message"], body
    if (response.status_code, error["code"]) != STRIPE_NOT_CONFIGURED:
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {body}"


def aim_at_known_records(case: schemathesis.Case[Any], seen: set[tuple[str, str, Any]]) -> None:
    """Let valid cases get past the first lookups: examples and boundary values get a path that
    exists (the fuzzing phase mixes paths through the hook), and a create or a usage record gets
    a key not taken yet, or each would stop at "already exists" or "a repeat"."""
    meta = case.meta
    if meta is None or meta.generation.mode != schemathesis.GenerationMode.POSITIVE:
        return
    if meta.phase.name != "fuzzing":
        for name in case.path_parameters or {}:
            if KNOWN.get(name):
                case.path_parameters[name] = KNOWN[name][0]
    if case.method == "POST" and isinstance(case.body, dict):
        body = dict(case.body)  # generated values may be shared between cases: never edit them
        for unique in ("key", "stripe_price_id", "idempotency_key"):
            value = body.get(unique)
            if isinstance(value, str) and (case.path, unique, value) in seen:
                body[unique] = f"{unique[0]}{len(seen)}"
            seen.add((case.path, unique, body.get(unique)))
        case.body = body
