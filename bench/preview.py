"""A catalogue change previewed over 10,000 tenants: `PATCH …/plans/free?dry_run=true`.

The tenants are added straight into the bench database (10,000 admin calls would cost the run
half a minute and measure nothing): the preview reads every tenant of the project, its plan,
grants, overrides and this period's counters, before and inside the change, and compares them.
"""

import statistics
import time
from contextlib import closing

import httpx
import psycopg
import seed

TENANTS = 10_000
RUNS = 3
# Every tenant is on the free default plan: lowering one of its limits touches them all.
CHANGE = {"features": {**seed.plan_grants(), seed.REFUSED_FEATURE: {"limit": 10, "reset": "month"}}}


class PreviewFailed(Exception):
    """The preview did not answer as the API documents."""


def add_tenants(url: str, count: int = TENANTS, prefix: str = "x") -> None:
    """`count` more tenants of the bench project (keys `x00000`…, or another `prefix`), in one
    statement."""
    if url.startswith("sqlite:///"):
        import sqlite3

        series = (
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO tenants (project_id, key, status, created_at, updated_at) "
            "SELECT p.id, ? || printf('%05d', n.i), 'active', datetime('now'), datetime('now') "
            "FROM n, projects p WHERE p.key = ?"
        )
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as lite, lite:
            lite.execute(series, (count - 1, prefix, seed.PROJECT))
        return
    with psycopg.connect(url, connect_timeout=5) as conn:
        conn.execute(
            "INSERT INTO tenants (project_id, key, status, created_at, updated_at) "
            "SELECT p.id, %s || lpad(i::text, 5, '0'), 'active', now(), now() "
            "FROM generate_series(0, %s) AS i, projects p WHERE p.key = %s",
            (prefix, count - 1, seed.PROJECT),
        )


def measure(base_url: str, admin_token: str, count: int = TENANTS) -> float:
    """The median seconds of `RUNS` previews of lowering a limit of every tenant's plan."""
    path = f"/admin/api/projects/{seed.PROJECT}/plans/free?dry_run=true"
    headers = {"Authorization": f"Bearer {admin_token}"}
    seconds = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=120.0) as admin:
        for _ in range(RUNS):
            started = time.perf_counter()
            answer = admin.patch(path, json=CHANGE)
            seconds.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise PreviewFailed(
                    f"the preview answered {answer.status_code}: {answer.text[:300]}"
                )
            summary = answer.json()["summary"]
            if summary["tenants_checked"] < count or summary["limits_lowered"] < count:
                raise PreviewFailed(f"the preview did not see every tenant: {summary}")
    return statistics.median(seconds)
