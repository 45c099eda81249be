"""`billplane credits grant`: an operator's grant, seen by the server, audited, once per key."""

from fastapi.testclient import TestClient

from cli.conftest import ADMIN, CliProject, Run, admin_get, json_of, one_line_error


def _pool(server: TestClient, project: str) -> None:
    pool = {"key": "credits", "name": "Credits", "costs": {"listings.publish": 2}}
    made = server.post(f"/admin/api/projects/{project}/credit-pools", json=pool, headers=ADMIN)
    assert made.status_code == 201, made.text


def test_a_grant_made_by_the_cli_is_spent_through_the_server(
    project: CliProject, run: Run, server: TestClient
) -> None:
    _pool(server, project.key)
    args = ["credits", "grant", project.key, "acme", "7", "--reason", "Pilot customer"]
    granted = json_of(run(*args, "--idempotency-key", "pilot", "--json"))
    again = json_of(run(*args, "--idempotency-key", "pilot", "--json"))
    assert again == granted
    assert (granted["amount"], granted["reason"]) == (7, "Pilot customer")

    balances = server.get(
        "/v1/tenants/acme/balances", headers={"Authorization": f"Bearer {project.token}"}
    )
    (pool,) = balances.json()["pools"]
    assert pool["balance"] == 7
    assert [(e["kind"], e["amount"], e["reason"]) for e in pool["ledger"]] == [
        ("grant", 7, "Pilot customer")
    ]
    audit = admin_get(server, f"/admin/api/audit?project={project.key}")["data"]
    assert [(e["actor"], e["action"]) for e in audit if e["action"] == "credits.grant"] == [
        ("cli", "credits.grant")
    ]


def test_a_grant_without_a_reason_or_to_an_unknown_pool_is_refused(
    project: CliProject, run: Run
) -> None:
    unknown = run("credits", "grant", project.key, "acme", "5", "--reason", "x")
    assert "pool_not_found" in one_line_error(unknown, 1)
    missing = run("credits", "grant", project.key, "acme", "5")
    assert missing.exit_code == 2
