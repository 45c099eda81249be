"""What the benchmark needs in a fresh database, created through the admin HTTP API.

One project with 21 features (on/off, limits and metered), a default plan that grants them all
(the counted feature `api.calls` with a limit so high that enforced usage never answers 402), one
hot tenant `acme` with three overrides, and `MANY_TENANTS` more tenants to spread usage over. Each
client call is tried once before the load, so a broken set-up fails here with the server's own
answer instead of as a wall of errors in wrk's counts.
"""

from dataclasses import dataclass
from typing import Any

import httpx

PROJECT = "bench"
FEATURE = "api.calls"
TENANT = "acme"
MANY_TENANTS = 200
HUGE_LIMIT = 2_000_000_000  # far above any run; grants are 32-bit (limit <= 2**31 - 1)
# 20 more features beside FEATURE, seven of each kind but one: 21 in all.
EXTRA_FEATURES = (
    [(f"flag.{i:02d}", "boolean") for i in range(7)]
    + [(f"limit.{i:02d}", "limit") for i in range(7)]
    + [(f"meter.{i:02d}", "metered") for i in range(6)]
)
OVERRIDES = {"flag.00": False, "limit.00": {"limit": 5000, "reset": "day"}, "meter.00": True}
PLAN_LIMIT = 1000  # the plan's grant of each extra limit feature
REFUSED_FEATURE = "limit.01"  # a limit feature the tenant has no override for

SEEDED_USAGE = 1  # the one usage event `_try_client_calls` records
# Credits: one of the extra limit features, priced at 1 credit of the pool `credits`, and a grant
# to each of the many tenants far above any run (the `usage-credits` target, against the plain
# `usage-many`). The project keeps its 21 features.
CREDIT_FEATURE = "limit.06"
CREDIT_GRANT = 10**12


class SeedFailed(Exception):
    """An admin or client call did not answer as the API documents."""


@dataclass(frozen=True)
class Fixture:
    project_token: str
    tenant: str
    feature: str
    many_tenants: int
    credit_feature: str = CREDIT_FEATURE

    def check_body(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "feature": self.feature, "quantity": 1}

    def refused_check_body(self) -> dict[str, Any]:
        """A check the same tenant is refused (`limit_reached`): more than its plan's limit."""
        return {"tenant": self.tenant, "feature": REFUSED_FEATURE, "quantity": PLAN_LIMIT + 1}


def tenant_key(index: int) -> str:
    """The key of the index-th of the many tenants (the Lua scripts build the same keys)."""
    return f"t{index:04d}"


def plan_grants() -> dict[str, Any]:
    """What the free default plan grants: every feature, the extra limits at `PLAN_LIMIT`."""
    grants: dict[str, Any] = {FEATURE: {"limit": HUGE_LIMIT, "reset": "month"}}
    for key, kind in EXTRA_FEATURES:
        grants[key] = {"limit": PLAN_LIMIT, "reset": "month"} if kind == "limit" else True
    grants[CREDIT_FEATURE] = {"limit": HUGE_LIMIT, "reset": "month"}  # only credits bound it
    return grants


def seed(base_url: str, admin_token: str) -> Fixture:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as admin:
        project = _post(admin, "/admin/api/projects", {"key": PROJECT, "name": "Bench"})
        api = f"/admin/api/projects/{PROJECT}"
        _post(admin, f"{api}/features", {"key": FEATURE, "name": "API calls", "type": "limit"})
        for key, kind in EXTRA_FEATURES:
            _post(admin, f"{api}/features", {"key": key, "name": key, "type": kind})
        pool = {"key": "credits", "name": "Credits", "costs": {CREDIT_FEATURE: 1}}
        _post(admin, f"{api}/credit-pools", pool)
        plan = {"key": "free", "name": "Free", "is_default": True, "features": plan_grants()}
        _post(admin, f"{api}/plans", plan)
        _post(admin, f"{api}/tenants", {"key": TENANT})
        _patch(admin, f"{api}/tenants/{TENANT}", {"overrides": OVERRIDES})
        for index in range(MANY_TENANTS):
            _post(admin, f"{api}/tenants", {"key": tenant_key(index)})
            grant = {"pool": "credits", "amount": CREDIT_GRANT, "reason": "bench"}
            _post(admin, f"{api}/tenants/{tenant_key(index)}/credit-grants", grant)
    fixture = Fixture(project["token"], TENANT, FEATURE, MANY_TENANTS)
    _try_client_calls(base_url, fixture)
    return fixture


def _try_client_calls(base_url: str, fixture: Fixture) -> None:
    # Also takes the one-off "first check" write out of the measured run.
    headers = {"Authorization": f"Bearer {fixture.project_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as client:
        answer = _post(client, "/v1/check", fixture.check_body(), expect=200)
        if answer.get("allowed") is not True:
            raise SeedFailed(f"/v1/check does not allow the seeded tenant: {answer}")
        refused = _post(client, "/v1/check", fixture.refused_check_body(), expect=200)
        if refused.get("reason") != "limit_reached":
            raise SeedFailed(f"/v1/check does not refuse what the bench asks it to: {refused}")
        usage = {**fixture.check_body(), "idempotency_key": "bench-seed", "enforce": True}
        _post(client, "/v1/usage", usage, expect=201)
        found = client.get(f"/v1/tenants/{fixture.tenant}/entitlements")
        features = found.json().get("features", []) if found.status_code == 200 else []
        if len(features) != 1 + len(EXTRA_FEATURES):
            raise SeedFailed(f"entitlements answered {found.status_code}: {found.text[:300]}")


def _post(client: httpx.Client, path: str, body: dict[str, Any], expect: int = 201) -> Any:
    return _call(client, "POST", path, body, expect)


def _patch(client: httpx.Client, path: str, body: dict[str, Any]) -> Any:
    return _call(client, "PATCH", path, body, 200)


def _call(client: httpx.Client, method: str, path: str, body: dict[str, Any], expect: int) -> Any:
    try:
        response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise SeedFailed(f"{method} {path} got no answer ({type(exc).__name__}: {exc})") from None
    if response.status_code != expect:
        raise SeedFailed(
            f"{method} {path} answered {response.status_code} (expected {expect}): {response.text}"
        )
    return response.json()
