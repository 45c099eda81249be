"""`billplane worker` sends what the outbox holds, as a `serve` worker's sender would."""

from fastapi.testclient import TestClient

from app_receiver import receiving
from cli.conftest import ADMIN, CliProject, Run, ok


def test_the_worker_sends_what_a_cli_change_wrote_signed_for_the_app(
    run: Run, project: CliProject, server: TestClient
) -> None:
    with receiving() as receiver:
        created = server.post(
            f"/admin/api/projects/{project.key}/webhook-endpoints",
            json={"url": receiver.url, "events": ["tenant.entitlements.updated"]},
            headers=ADMIN,
        )
        assert created.status_code == 201, created.text
        ok(run("tenant", "update", project.key, "acme", "--override", "exports"))

        assert ok(run("worker", "--once")).strip() == "1 deliveries attempted"

        [received] = receiver.accepted()
        data = received.verified(created.json()["secret"])["data"]
        assert (data["tenant"], data["features"]["exports"]) == ("acme", True)
        assert ok(run("worker", "--once")).strip() == "0 deliveries attempted"
