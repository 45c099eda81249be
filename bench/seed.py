"""What the benchmark needs in a fresh database, created through the admin HTTP API.

One project, one `limit` feature, a default plan whose limit is so high that enforced usage never
answers 402, and one tenant. Each client call is tried once before the load, so a broken set-up
fails here with the server's own answer instead of as a wall of errors in wrk's counts.
"""

from dataclasses import dataclass
from typing import Any

import httpx

PROJECT = "bench"
FEATURE = "api.calls"
TENANT = "acme"
HUGE_LIMIT = 2_000_000_000  # far above any run; grants are 32-bit (limit <= 2**31 - 1)


SEEDED_USAGE = 1  # the one usage event `_try_client_calls` records


class SeedFailed(Exception):
    """An admin or client call did not answer as the API documents."""


@dataclass(frozen=True)
class Fixture:
    project_token: str
    tenant: str
    feature: str

    def check_body(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "feature": self.feature, "quantity": 1}


def seed(base_url: str, admin_token: str) -> Fixture:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as admin:
        project = _post(admin, "/admin/api/projects", {"key": PROJECT, "name": "Bench"})
        api = f"/admin/api/projects/{PROJECT}"
        _post(admin, f"{api}/features", {"key": FEATURE, "name": "API calls", "type": "limit"})
        grant = {"limit": HUGE_LIMIT, "reset": "month"}
        plan = {"key": "free", "name": "Free", "is_default": True, "features": {FEATURE: grant}}
        _post(admin, f"{api}/plans", plan)
        _post(admin, f"{api}/tenants", {"key": TENANT})
    fixture = Fixture(project_token=project["token"], tenant=TENANT, feature=FEATURE)
    _try_client_calls(base_url, fixture)
    return fixture


def counted_usage(base_url: str, fixture: Fixture) -> int:
    """What the server's counter says the tenant used this period (read with `/v1/check`)."""
    headers = {"Authorization": f"Bearer {fixture.project_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as client:
        used: int = _post(client, "/v1/check", fixture.check_body(), expect=200)["used"]
        return used


def _try_client_calls(base_url: str, fixture: Fixture) -> None:
    # Also takes the one-off "first check" write out of the measured run.
    headers = {"Authorization": f"Bearer {fixture.project_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as client:
        answer = _post(client, "/v1/check", fixture.check_body(), expect=200)
        if answer.get("allowed") is not True:
            raise SeedFailed(f"/v1/check does not allow the seeded tenant: {answer}")
        usage = {**fixture.check_body(), "idempotency_key": "bench-seed", "enforce": True}
        _post(client, "/v1/usage", usage, expect=201)


def _post(client: httpx.Client, path: str, body: dict[str, Any], expect: int = 201) -> Any:
    try:
        response = client.post(path, json=body)
    except httpx.HTTPError as exc:
        raise SeedFailed(f"POST {path} got no answer ({type(exc).__name__}: {exc})") from None
    if response.status_code != expect:
        raise SeedFailed(
            f"POST {path} answered {response.status_code} (expected {expect}): {response.text}"
        )
    return response.json()
