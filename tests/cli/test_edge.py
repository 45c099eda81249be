"""What every command shares: settings and database trouble in one sentence, the audit actor."""

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from billplane.cli import app as cli
from cli.conftest import CliProject, Run, admin_get, json_of, new_key, ok, one_line_error


def test_cli_actions_are_audited_as_cli_without_secrets(
    project: CliProject, run: Run, server: TestClient
) -> None:
    rotated = json_of(run("token", "rotate", project.token_id, "--json"))

    entries = admin_get(server, f"/admin/api/audit?project={project.key}")["data"]

    assert {e["actor"] for e in entries} == {"cli"}
    assert [e["action"] for e in reversed(entries)] == [
        "project.create",
        "token.create",
        "feature.create",
        "feature.create",
        "plan.create",
        "plan.create",
        "tenant.create",
        "token.rotate",
    ]
    trail = json.dumps(entries)
    assert project.token not in trail
    assert rotated["token"] not in trail


def test_malformed_database_url_scheme_is_one_sentence_and_exit_2() -> None:
    result = CliRunner().invoke(cli, ["project", "list"], env={"DATABASE_URL": "mysql://db/x"})

    message = one_line_error(result, 2)
    assert "DATABASE_URL" in message
    assert message.endswith(".")


def test_database_url_with_a_bad_port_is_one_sentence_and_exit_2() -> None:
    url = "postgresql://billing:hunter2@db.internal:notaport/billplane"

    result = CliRunner().invoke(cli, ["project", "list"], env={"DATABASE_URL": url})

    message = one_line_error(result, 2)
    assert "DATABASE_URL" in message
    assert "hunter2" not in result.stderr


def test_malformed_sqlite_url_is_one_sentence_and_exit_2() -> None:
    result = CliRunner().invoke(cli, ["project", "list"], env={"DATABASE_URL": "sqlite://relative"})

    message = one_line_error(result, 2)
    assert "DATABASE_URL" in message


def test_malformed_database_url_stops_db_upgrade_too() -> None:
    result = CliRunner().invoke(
        cli, ["db", "upgrade"], env={"DATABASE_URL": "postgresql://u@h:notaport/x"}
    )

    one_line_error(result, 2)


def test_unreachable_database_is_one_line_without_the_password() -> None:
    url = "postgresql://billing:hunter2@127.0.0.1:1/billplane"

    result = CliRunner().invoke(cli, ["project", "list"], env={"DATABASE_URL": url})

    message = one_line_error(result, 1)
    assert message.startswith("error (database): postgresql://127.0.0.1:1/billplane")
    assert "hunter2" not in result.stderr


def test_serve_refuses_a_malformed_database_url_in_one_sentence_without_the_password() -> None:
    import subprocess
    import sys
    from pathlib import Path

    billplane = Path(sys.executable).parent / "billplane"
    result = subprocess.run(
        [str(billplane), "serve"],
        env={"DATABASE_URL": "postgresql://u:hunter2secret@db:notaport/x", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "billplane cannot start: DATABASE_URL is not a valid database URL."
    )
    assert "hunter2secret" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("STRIPE_SECRET_KEY", "hello"),
        ("STRIPE_SECRET_KEY", "pk_test_51Hx9publishable"),  # the publishable key in its place
        ("STRIPE_SECRET_KEY", "sk_test_51Hx9 with a space"),
        ("STRIPE_WEBHOOK_SECRET", "sk_test_51Hx9secret"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_"),
        ("STRIPE_PUBLISHABLE_KEY", "sk_live_51Hx9secret"),
    ],
)
def test_a_stripe_key_of_the_wrong_kind_stops_the_start_in_one_sentence(
    setting: str, value: str
) -> None:
    result = CliRunner().invoke(cli, ["project", "list"], env={setting: value})

    message = one_line_error(result, 2)
    assert message.startswith(f"billplane cannot start: {setting} must be a Stripe key")
    assert f"'{value}'" not in message  # a key of the wrong kind may still be a secret


UNKNOWN = [
    (("project", "show", "nope"), "project_not_found", "No project 'nope'."),
    (("project", "update", "nope", "--name", "X"), "project_not_found", "No project 'nope'."),
    (("feature", "list", "nope"), "project_not_found", "No project 'nope'."),
    (("plan", "list", "nope"), "project_not_found", "No project 'nope'."),
    (("tenant", "list", "nope"), "project_not_found", "No project 'nope'."),
    (("token", "list", "nope"), "project_not_found", "No project 'nope'."),
    (("plan", "show", "{p}", "nope"), "plan_not_found", "No plan 'nope' in project '{p}'."),
    (("plan", "update", "{p}", "nope"), "plan_not_found", "No plan 'nope' in project '{p}'."),
    (("plan", "archive", "{p}", "nope"), "plan_not_found", "No plan 'nope' in project '{p}'."),
    (("plan", "restore", "{p}", "nope"), "plan_not_found", "No plan 'nope' in project '{p}'."),
    (("tenant", "show", "{p}", "nope"), "tenant_not_found", "No tenant 'nope' in project '{p}'."),
    (
        ("tenant", "update", "{p}", "nope", "--name", "X"),
        "tenant_not_found",
        "No tenant 'nope' in project '{p}'.",
    ),
    (("token", "revoke", "tok_nope"), "token_not_found", None),
]


@pytest.mark.parametrize(
    ("args", "code", "sentence"),
    UNKNOWN,
    ids=[" ".join(a[:2]) + f" {a[-1]}" for a, _, _ in UNKNOWN],
)
def test_an_unknown_key_is_one_sentence_and_exit_1_in_both_modes(
    run: Run, args: tuple[str, ...], code: str, sentence: str | None
) -> None:
    key = new_key()
    ok(run("project", "create", key))
    args = tuple(a.format(p=key) for a in args)

    for mode in ([], ["--json"]):
        message = one_line_error(run(*args, *mode), 1)

        assert message.startswith(f"error ({code}): ")
        if sentence is not None:
            assert message == f"error ({code}): {sentence.format(p=key)}"
